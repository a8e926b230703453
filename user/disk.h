/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The disk probe: syscall, io_uring and block tracepoints; their numbers. */
#ifndef VMPROBE_USER_DISK_H
#define VMPROBE_USER_DISK_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"
#include "vmprobe/disk.h"

struct disk_bpf;

struct disk_probe {
	struct disk_bpf *skel;
	unsigned max_drives;
	struct drive_stats *stats; /* the mmapped per-drive array */
	struct blkdev_slot *dev_slots; /* the mmapped host block array (read-only) */
	size_t stats_len;
	struct slot_pool slots;
	bool source_on[DISK_SRC_MAX]; /* which AIO modes can be measured */
	bool host_block_on;
};

/*
 * Where tracefs is, mounted where the kernel expects it if it was not
 * (classic tracepoints need it; *mounted_now says so, if not NULL); NULL
 * if it cannot be.
 */
const char *tracefs_root(bool *mounted_now);

/*
 * Opens and loads the programs whose tracepoints this kernel has, attaches
 * them and logs which sources are active; 0 or -errno.
 */
int disk_probe_open(struct disk_probe *dp, unsigned max_drives, bool host_block);
void disk_probe_close(struct disk_probe *dp);

int disk_slot_alloc(struct disk_probe *dp);
void disk_slot_free(struct disk_probe *dp, unsigned slot);

/* Counts drives in aio=native mode: without any, block completions skip that path. */
void disk_native_drives(struct disk_probe *dp, int delta);

/* Marks a QEMU process: only these pay for more than a bit test. */
int disk_vm_add(struct disk_probe *dp, __u32 tgid);
void disk_vm_del(struct disk_probe *dp, __u32 tgid);

/* (tgid, fd) of an image, or (tgid, device) of a block-device image. */
int disk_fd_add(struct disk_probe *dp, __u32 tgid, __u32 fd, unsigned slot);
void disk_fd_del(struct disk_probe *dp, __u32 tgid, __u32 fd);
int disk_dev_add(struct disk_probe *dp, __u32 tgid, __u32 kdev, unsigned slot);
void disk_dev_del(struct disk_probe *dp, __u32 tgid, __u32 kdev);

/*
 * The image (filesystem kdev, inode) of a VM's aio=native drive, for
 * attribution at block completion; 0 or -errno.
 */
int disk_native_file_add(struct disk_probe *dp, __u32 tgid, __u32 kdev, __u64 ino, unsigned slot);
void disk_native_file_del(struct disk_probe *dp, __u32 tgid, __u32 kdev, __u64 ino);

/* A consistent-enough copy of one (slot, op): each counter read whole. */
void disk_read(const struct disk_probe *dp, unsigned slot, unsigned op,
	       struct drive_stats *out);

/* Calls fn for every (host device, op) seen; stops on non-zero. */
int disk_dev_foreach(const struct disk_probe *dp,
		     int (*fn)(const struct blkdev_key *k, const struct blkdev_stats *s, void *arg),
		     void *arg);

__u64 disk_source_count(const struct disk_probe *dp, unsigned src);
__u64 disk_error_count(const struct disk_probe *dp, unsigned err);

/* Kernel dev_t (major << 20 | minor) of a user-space one. */
__u32 disk_kdev(unsigned long long rdev);

extern const char *const disk_op_names[DISK_OP_MAX];
extern const char *const disk_src_names[DISK_SRC_MAX];

#endif

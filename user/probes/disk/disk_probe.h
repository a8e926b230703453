/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The disk probe: syscall, io_uring and block tracepoints (disk.c loads
 * them), per-VM drive state (vm.c), metric families (metrics.c).
 */
#ifndef VMPROBE_DISK_PROBE_H
#define VMPROBE_DISK_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/probe.h"
#include "core/qemu.h"
#include "core/image.h"
#include "core/storage.h"
#include "core/util.h"
#include "vmprobe/disk.h"

struct disk_bpf;
struct ring_buffer;
struct probe_pins;
struct vm_disk;

/* Which map an earlier serve's entry is in (pins.c). */
enum disk_adopt_map { ADOPT_FDS, ADOPT_DEVS, ADOPT_NATIVE };

/* An entry of disk_fds, disk_devs or native_files an earlier serve made, to be claimed. */
struct disk_adopt {
	struct native_file_key key; /* dev holds the fd (disk_fds) or the device (disk_devs) */
	__u32 slot;
	enum disk_adopt_map map;
	bool claimed;
};

/* A host block device's name (its uevent's DEVNAME), kept between scrapes. */
struct disk_dev_name {
	__u32 dev; /* + 1; 0: a free entry */
	char name[64];
};

struct disk_probe {
	struct disk_bpf *skel;
	struct drive_store store; /* its drives' counters: drive_stats and drive_born */
	struct blkdev_slot *dev_slots; /* the mmapped host block array (read-only) */
	bool source_on[DISK_SRC_MAX]; /* which AIO modes can be measured */
	bool host_block_on;
	struct ring_buffer *events; /* a VM's first request on an fd no drive has */
	/* One per program (object order); NULL: not attached now (see hooks_update). */
	struct bpf_link **links;
	size_t nr_links;
	unsigned nr_vms;      /* marked QEMU processes: the VM hooks run while > 0 */
	int native_drives;    /* aio=native drives: block completion runs while > 0 */
	int hooks_err[2];     /* last attach error of each kind of hook, said once */
	struct probe_pins *pins; /* serve's (core/pin.h), else NULL */
	/* While adopting an earlier serve's pins (pins.c): its entries, and the VMs marked since. */
	bool adopting;
	struct disk_adopt *adopt;
	size_t nr_adopt;
	__u64 *adopt_tgids;
	size_t nr_adopt_tgids, cap_adopt_tgids;
	bool tracefs_lost;    /* tracefs went and could not be mounted again: said once */
	/* Host block devices' names by device number, kept between scrapes (metrics.c). */
	struct disk_dev_name *dev_names; /* DISK_DEV_SLOTS of them; NULL: none read yet */
	double dev_names_at;             /* when they were last all dropped (now_seconds) */
};

/*
 * Where tracefs is, mounted where the kernel expects it if it was not
 * (classic tracepoints need it; *mounted_now says so, if not NULL); NULL
 * with errno set if it cannot be: EACCES when it is mounted but this
 * process may not look inside (not root, no CAP_DAC_READ_SEARCH).
 */
const char *tracefs_root(bool *mounted_now);

/*
 * Opens and loads the programs whose tracepoints this kernel has and logs
 * which sources are active; 0 or -errno. Hooks on the host's IO paths are
 * attached only while they have something to measure: the VM-only ones
 * while a VM is marked (disk_vm_mark), block completion while host block
 * latency is on or a VM has an aio=native drive. A host without VMs pays
 * nothing for the disk probe.
 */
int disk_probe_open(struct disk_probe *dp, unsigned max_drives, bool host_block,
		    struct probe_pins *pins);
/*
 * Sizes an opened skeleton's maps for max_drives drives and a pid_max of
 * the host (the VM tgid bitmap): what disk_probe_open() loads, and what
 * the memory model (tests/unit/test_memory.c) counts. 0 or -errno.
 */
int disk_maps_size(struct disk_bpf *skel, unsigned max_drives, long pid_max);
void disk_probe_close(struct disk_probe *dp);

/*
 * Counts drives in aio=native mode: without any (and without host block
 * latency), block completion is not hooked. 0, or -errno when its hook
 * does not attach (logged once).
 */
int disk_native_drives(struct disk_probe *dp, int delta);

/*
 * Marks a QEMU process: only these pay for more than a bit test. The first
 * one attaches the VM hooks: 0, or -errno when they do not attach (logged
 * once; the process is then not marked).
 */
int disk_vm_mark(struct disk_probe *dp, __u32 tgid);
void disk_vm_unmark(struct disk_probe *dp, __u32 tgid);

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

/* Calls fn for every (host device, op) seen; stops on non-zero. */
int disk_dev_foreach(const struct disk_probe *dp,
		     int (*fn)(const struct blkdev_key *k, const struct blkdev_stats *s, void *arg),
		     void *arg);

/*
 * Adds the requests the VM made on `fd` before a drive had it to `slot`,
 * and forgets them; 0, or -ENOENT if there were none.
 */
/* Only requests made on the file (kdev, ino) are added: others are dropped (-ESTALE). */
int disk_staged_merge(struct disk_probe *dp, __u32 tgid, __u32 fd, unsigned slot, __u32 kdev,
		      __u64 ino);
/*
 * Reads the ring of first requests on unknown fds: calls fn for each VM
 * (tgid) that made one. Its fd (for poll) is disk_events_fd().
 */
int disk_events_consume(struct disk_probe *dp, void (*fn)(__u32 tgid, void *arg), void *arg);
int disk_events_fd(const struct disk_probe *dp);

__u64 disk_source_count(const struct disk_probe *dp, unsigned src);
__u64 disk_error_count(const struct disk_probe *dp, unsigned err);

/*
 * Adopting what an earlier serve pinned (pins.c): its slots and map
 * entries are read at open and claimed drive by drive; after serve's
 * first scan, disk_adopted() releases what no VM claimed and attaches or
 * detaches the hooks as the VMs now want them.
 */
int disk_adopt_open(struct disk_probe *dp);
void disk_adopt_free(struct disk_probe *dp);
bool disk_adopting(const struct disk_probe *dp);
/*
 * The slot the earlier serve counted the VM's (tgid) drive in, found by
 * its image (snap: the VM's fds): claimed, its counters go on, and its
 * counted fds in fds (*nr_fds, at most DRIVE_MAX_FDS); or -ENOENT.
 */
int disk_drive_claim(struct disk_probe *dp, __u32 tgid, const struct vm_disk *disk,
		     const struct vm_snapshot *snap, int *fds, int *nr_fds);
/* A VM marked or unmarked while adopting: the tgid bits disk_adopted() keeps. */
void disk_adopt_tgid(struct disk_probe *dp, __u32 tgid, bool on);
/* Releases the entries and slots no VM claimed, and the bits of VMs gone. */
void disk_adopt_release(struct disk_probe *dp);
/* serve's first scan is done (disk.c): the above, then hooks as the VMs want them. */
void disk_adopted(struct disk_probe *dp);

/* Attaches every loaded hook and detaches them again: 0 or the first -errno (check). */
int disk_hooks_try(struct disk_probe *dp);

/* Kernel dev_t (major << 20 | minor) of a user-space one. */
__u32 disk_kdev(unsigned long long rdev);

extern const char *const disk_src_names[DISK_SRC_MAX];

#define DRIVE_MAX_FDS 8

/* One drive of a VM as the probe counts it (in its vm_disk). */
struct drive_state {
	int slot;
	/* The image registered for its completions (drive_image_add): the drive's, or where it moved. */
	struct file_id image;
	struct file_id backing[IMAGE_MAX_BACKING];
	int nr_backing;
	__u32 kdev;       /* kernel dev_t when the image is a block device, else 0 */
	bool native;      /* its image is registered for aio=native */
	bool hook_failed; /* block completion, which native needs, did not attach */
	int fds[DRIVE_MAX_FDS];
	int nr_fds;
	bool had_fds;     /* fds were found once: no need to look at every rescan */
	/*
	 * fds counted since the last sync: what the VM did on them before
	 * (disk_staged_merge) is added once requests in flight then are done.
	 */
	int merge_fds[DRIVE_MAX_FDS];
	struct file_id merge_files[DRIVE_MAX_FDS]; /* the file each was found on */
	int nr_merge;
	double merge_after; /* CLOCK_MONOTONIC seconds */
};

/* The probe's state of one VM (its drives' is in each vm_disk). */
struct disk_vm {
	bool marked;      /* its tgid bit is set */
	bool slot_warned; /* running out of drive slots was logged */
};

struct discovery;
struct expo_family;
struct expo;
struct strbuf;
struct vm;
struct vm_disk;

/* probe_ops of the VM table (vm.c). */
int disk_vm_add(struct probe *p, struct discovery *d, struct vm *vm);
bool disk_vm_pending(struct probe *p, const struct vm *vm);
void disk_vm_sync(struct probe *p, struct discovery *d, struct vm *vm,
		  const struct vm_snapshot *snap);
void disk_vm_del(struct probe *p, struct discovery *d, struct vm *vm);
const struct drive_store *disk_drive_store(struct probe *p, const struct vm_disk *disk,
					   unsigned *slot);

/* Metric families (metrics.c). */
const struct expo_family *disk_families(size_t *nr);
void disk_render(struct probe *p, struct discovery *d, struct expo *e);
void disk_render_self(struct probe *p, struct discovery *d, struct expo *e);

#endif

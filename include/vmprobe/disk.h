/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Disk probe: what bpf/disk.bpf.c and user/probes/disk/ agree on. */
#ifndef VMPROBE_DISK_H
#define VMPROBE_DISK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "vmprobe/hist.h"

/*
 * Log2 histograms (vmprobe/hist.h): latency up to 2^36 units (64 s), the
 * last slot beyond; request size in bytes up to 2^26 (64 MiB).
 */
#define DISK_LAT_SLOTS 38
#define DISK_SIZE_SLOTS 28

enum disk_op {
	DISK_OP_READ = 0,
	DISK_OP_WRITE,
	DISK_OP_FLUSH,
	DISK_OP_DISCARD,
	DISK_OP_MAX,
};

#define DISK_DEFAULT_MAX_DRIVES 512

/* An image fd of a VM: (QEMU's tgid, fd) -> drive slot. */
struct drive_fd_key {
	__u32 tgid;
	__u32 fd;
};
_Static_assert(sizeof(struct drive_fd_key) == 8, "drive_fd_key layout");

/*
 * Counters of one (drive slot, op). Shared by all CPUs: disk IO rates are
 * far below packet rates, so atomic adds keep the array CPU-count free.
 * Operations are the sum of the latency slots; a request that failed
 * (the host said an error) counts in `errors` alone.
 */
struct drive_stats {
	__u64 bytes;
	__u64 lat_sum_ns;
	__u64 errors;
	__u64 lat_slots[DISK_LAT_SLOTS];
	__u64 size_slots[DISK_SIZE_SLOTS];
};
_Static_assert(sizeof(struct drive_stats) == 8 * (3 + DISK_LAT_SLOTS + DISK_SIZE_SLOTS),
	       "drive_stats layout");

/*
 * A VM's requests on an fd no drive has yet, per operation, kept until
 * user space adds them to the drive the fd turns out to be (a drive
 * hot-plugged a moment ago). In-flight entries mark them SLOT_STAGED.
 */
struct staged_stats {
	struct drive_stats ops[DISK_OP_MAX];
	/*
	 * The disk probe's: the file the fd was on when these requests were
	 * made (kernel dev_t of its filesystem, inode), so that only requests
	 * on the drive's image are added to it; a request on another file
	 * under the same number starts the entry over. 0 in netdisk's.
	 */
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

#define SLOT_STAGED 0xffffffffu
#define DISK_STAGED_MAX 256

/*
 * The image of an aio=native drive, as the completing request's file
 * shows it: (QEMU's tgid, kernel dev_t of the filesystem, inode) -> drive
 * slot. With tgid 0: how many VMs' native drives use that inode.
 */
struct native_file_key {
	__u32 tgid;
	__u32 dev;
	__u64 ino;
};
_Static_assert(sizeof(struct native_file_key) == 16, "native_file_key layout");

/*
 * A bitmap of the native images' (dev, inode), by hash: the first test at
 * each AIO completion, an inlined array read where a hash lookup costs
 * ~70 ns (measured). A set bit only means "look it up".
 */
#define NATIVE_BITS_WORDS 1024

static inline __u32 native_inode_bit(__u32 dev, __u64 ino)
{
	return (__u32)(((ino ^ ((__u64)dev << 32)) * 0x9E3779B97F4A7C15ULL) >> (64 - 16));
}

/* A host block device and operation, as user space reports them. */
struct blkdev_key {
	__u32 dev; /* kernel dev_t: major << 20 | minor */
	__u32 op;
};

struct blkdev_stats {
	__u64 lat_sum_ns;
	__u64 lat_slots[DISK_LAT_SLOTS];
};

/* One (device, op) of the open-addressed host block array; key 0: free. */
#define DISK_DEV_SLOTS 1024

struct blkdev_slot {
	__u64 key; /* blkdev_slot_key() */
	struct blkdev_stats st;
};

static inline __u64 blkdev_slot_key(__u32 dev, __u32 op)
{
	return ((__u64)dev << 8 | op) + 1;
}

/* Which path saw a request; for the self-metrics. */
enum disk_src {
	DISK_SRC_SYSCALL = 0, /* aio=threads: worker thread syscalls */
	DISK_SRC_IO_URING,    /* aio=io_uring */
	DISK_SRC_NATIVE,      /* aio=native: block requests made in io_submit */
	DISK_SRC_MAX,
};

/* Per-CPU health counters, indexed by enum disk_err. */
enum disk_err {
	DISK_ERR_INFLIGHT_FULL = 0, /* an in-flight entry was taken over: one sample lost */
	DISK_ERR_FIXED_FILE,        /* io_uring request on a registered file: not attributed */
	DISK_ERR_NATIVE_AMBIGUOUS,  /* io_submit mixing drives on one host device */
	DISK_ERR_NO_TIMESTAMP,      /* host block: a request blk-mq did not time-stamp */
	DISK_ERR_CLOCK_SKEW,        /* measured, but ended before it started: latency 0 */
	DISK_ERR_MAX,
};

/*
 * fallocate(2) modes (linux/falloc.h) and what each is as a request of a
 * guest: QEMU discards with PUNCH_HOLE|KEEP_SIZE and writes zeroes with
 * ZERO_RANGE (or PUNCH_HOLE, then a plain fallocate of the same range);
 * WRITE_ZEROES (Linux 6.17) is a write of zeroes too. Both count as a
 * discard, as a block device's REQ_OP_DISCARD and REQ_OP_WRITE_ZEROES do.
 * Any other mode (0 or KEEP_SIZE alone: preallocation; COLLAPSE, INSERT,
 * UNSHARE) is no guest request and is not counted. One rule for the
 * syscall and io_uring paths: disk_falloc_op().
 */
#define DISK_FALLOC_PUNCH_HOLE 0x02
#define DISK_FALLOC_ZERO_RANGE 0x10
#define DISK_FALLOC_WRITE_ZEROES 0x80

/* The operation of an fallocate of `mode`, or -1: not counted. */
static inline int disk_falloc_op(__u64 mode)
{
	return mode & (DISK_FALLOC_PUNCH_HOLE | DISK_FALLOC_ZERO_RANGE | DISK_FALLOC_WRITE_ZEROES) ?
		       DISK_OP_DISCARD : -1;
}

static inline __u32 drive_stats_index(__u32 slot, __u32 op)
{
	return slot * DISK_OP_MAX + op;
}

#endif

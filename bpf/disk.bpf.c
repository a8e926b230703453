// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Disk IO of VMs, per drive: every read, write, flush and discard QEMU
 * issues to the host, from issue to completion, for each AIO mode:
 *  - aio=threads: the worker threads' syscalls (enter -> exit);
 *  - aio=io_uring: io_uring_submit_req -> io_uring_complete;
 *  - aio=native: QEMU reaps Linux AIO completions from the user-space
 *    ring, so no syscall shows them; the block requests made inside the
 *    QEMU thread's io_submit are followed to block_rq_complete instead.
 * And host block device latency (issue -> complete) for all IO.
 * User space maps (QEMU tgid, image fd) to drive slots; nothing per event
 * leaves the kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "vmprobe/disk.h"
#include "hist.bpf.h"

const volatile __u32 max_drives = DISK_DEFAULT_MAX_DRIVES;

#define MAX_INFLIGHT 16384
#define MAX_IOCBS 32 /* iocbs read per io_submit; QEMU submits at most 128 */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct drive_fd_key);
	__type(value, __u32);
} disk_fds SEC(".maps");

/* (tgid, kernel dev_t) of drives whose image is a block device. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct drive_fd_key);
	__type(value, __u32);
} disk_devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, DISK_DEFAULT_MAX_DRIVES * DISK_OP_MAX);
	__type(key, __u32);
	__type(value, struct drive_stats);
} drive_stats SEC(".maps");

struct inflight {
	__u32 slot;
	__u32 op;
	__u64 start_ns;
	__u64 bytes; /* known at issue (discard); else taken at completion */
};

/* aio=threads: by thread id, between syscall enter and exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u32);
	__type(value, struct inflight);
} sys_inflight SEC(".maps");

/* aio=io_uring: by request. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, struct inflight);
} uring_inflight SEC(".maps");

/* aio=native: the drive a thread's current io_submit is for (-1: mixed). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __s32);
} native_submit SEC(".maps");

/*
 * aio=native: by the bio that made a request; LRU because a bio merged
 * into an earlier request never completes as the head of its own.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, struct inflight);
} native_inflight SEC(".maps");

/* Host block latency: issue time by request, stats by (device, op). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, __u64);
} rq_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct blkdev_key);
	__type(value, struct blkdev_stats);
} dev_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DISK_SRC_MAX);
	__type(key, __u32);
	__type(value, __u64);
} disk_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DISK_ERR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} disk_errors SEC(".maps");

static __always_inline void bump(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		*v += 1;
}

static __always_inline void record(__u32 slot, __u32 op, __u64 bytes, __u64 lat_ns, __u32 src)
{
	struct drive_stats *st;
	__u32 idx;

	if (slot >= max_drives || op >= DISK_OP_MAX)
		return;
	idx = drive_stats_index(slot, op);
	st = bpf_map_lookup_elem(&drive_stats, &idx);
	if (!st)
		return;
	__sync_fetch_and_add(&st->bytes, bytes);
	__sync_fetch_and_add(&st->lat_sum_ns, lat_ns);
	__sync_fetch_and_add(&st->lat_slots[hist_slot(lat_ns, DISK_LAT_SLOTS)], 1);
	__sync_fetch_and_add(&st->size_slots[hist_slot(bytes, DISK_SIZE_SLOTS)], 1);
	bump(&disk_sources, src);
}

static __always_inline __u32 *fd_slot(__u32 tgid, __u64 fd)
{
	struct drive_fd_key key = {};

	key.tgid = tgid;
	key.fd = (__u32)fd;
	return bpf_map_lookup_elem(&disk_fds, &key);
}

/* ---- aio=threads ---- */

static __always_inline int sys_enter(__u64 fd, __u32 op, __u64 bytes)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight in = {};
	__u32 tid = (__u32)id, *slot;

	slot = fd_slot(id >> 32, fd);
	if (!slot)
		return 0;
	in.slot = *slot;
	in.op = op;
	in.bytes = bytes;
	in.start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&sys_inflight, &tid, &in, BPF_ANY))
		bump(&disk_errors, DISK_ERR_INFLIGHT_FULL);
	return 0;
}

static __always_inline int sys_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *in = bpf_map_lookup_elem(&sys_inflight, &tid);
	__u64 bytes;

	if (!in)
		return 0;
	bytes = in->bytes;
	if (in->op == DISK_OP_READ || in->op == DISK_OP_WRITE)
		bytes = ret > 0 ? ret : 0;
	record(in->slot, in->op, bytes, bpf_ktime_get_ns() - in->start_ns, DISK_SRC_SYSCALL);
	bpf_map_delete_elem(&sys_inflight, &tid);
	return 0;
}

#define SYSCALL_PAIR(name, op)                                                   \
	SEC("tracepoint/syscalls/sys_enter_" #name)                              \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)                  \
	{                                                                        \
		return sys_enter(ctx->args[0], op, 0);                           \
	}                                                                        \
	SEC("tracepoint/syscalls/sys_exit_" #name)                               \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                    \
	{                                                                        \
		return sys_exit(ctx->ret);                                       \
	}

SYSCALL_PAIR(pread64, DISK_OP_READ)
SYSCALL_PAIR(preadv, DISK_OP_READ)
SYSCALL_PAIR(preadv2, DISK_OP_READ)
SYSCALL_PAIR(pwrite64, DISK_OP_WRITE)
SYSCALL_PAIR(pwritev, DISK_OP_WRITE)
SYSCALL_PAIR(pwritev2, DISK_OP_WRITE)
SYSCALL_PAIR(fdatasync, DISK_OP_FLUSH)
SYSCALL_PAIR(fsync, DISK_OP_FLUSH)

#define FALLOC_FL_PUNCH_HOLE 0x02
#define FALLOC_FL_ZERO_RANGE 0x10

/* fallocate(fd, mode, offset, len): punch hole / zero range is a discard. */
SEC("tracepoint/syscalls/sys_enter_fallocate")
int enter_fallocate(struct trace_event_raw_sys_enter *ctx)
{
	if (!(ctx->args[1] & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		return 0;
	return sys_enter(ctx->args[0], DISK_OP_DISCARD, ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_fallocate")
int exit_fallocate(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx->ret);
}

/* ---- aio=io_uring ---- */

static __always_inline int uring_op(__u8 opcode)
{
	switch (opcode) {
	case 1:  /* IORING_OP_READV */
	case 4:  /* IORING_OP_READ_FIXED */
	case 22: /* IORING_OP_READ */
		return DISK_OP_READ;
	case 2:  /* IORING_OP_WRITEV */
	case 5:  /* IORING_OP_WRITE_FIXED */
	case 23: /* IORING_OP_WRITE */
		return DISK_OP_WRITE;
	case 3: /* IORING_OP_FSYNC */
		return DISK_OP_FLUSH;
	case 17: /* IORING_OP_FALLOCATE */
		return DISK_OP_DISCARD;
	}
	return -1;
}

SEC("tracepoint/io_uring/io_uring_submit_req")
int uring_submit(struct trace_event_raw_io_uring_submit_req *ctx)
{
	struct io_kiocb *req = ctx->req;
	__u64 key = (__u64)req;
	struct inflight in = {};
	int op = uring_op(ctx->opcode);
	__u32 *slot;
	int fd;

	if (op < 0)
		return 0;
	fd = BPF_CORE_READ(req, cqe.fd);
	slot = fd_slot(bpf_get_current_pid_tgid() >> 32, fd);
	if (!slot)
		return 0;
	/* A registered file's fd is an index into the ring's table. */
	if (BPF_CORE_READ(req, flags) & (1ULL << REQ_F_FIXED_FILE_BIT)) {
		bump(&disk_errors, DISK_ERR_FIXED_FILE);
		return 0;
	}
	in.slot = *slot;
	in.op = op;
	in.start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&uring_inflight, &key, &in, BPF_ANY))
		bump(&disk_errors, DISK_ERR_INFLIGHT_FULL);
	return 0;
}

SEC("tracepoint/io_uring/io_uring_complete")
int uring_complete(struct trace_event_raw_io_uring_complete *ctx)
{
	__u64 key = (__u64)ctx->req;
	struct inflight *in = bpf_map_lookup_elem(&uring_inflight, &key);
	__u64 bytes = 0;

	if (!in)
		return 0;
	if ((in->op == DISK_OP_READ || in->op == DISK_OP_WRITE) && ctx->res > 0)
		bytes = ctx->res;
	record(in->slot, in->op, bytes, bpf_ktime_get_ns() - in->start_ns, DISK_SRC_IO_URING);
	bpf_map_delete_elem(&uring_inflight, &key);
	return 0;
}

/* ---- aio=native ---- */

/* io_submit(ctx, nr, iocbpp): which drive the batch is for. */
SEC("tracepoint/syscalls/sys_enter_io_submit")
int enter_io_submit(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct iocb **iocbpp = (struct iocb **)ctx->args[2];
	__u32 tid = (__u32)id, nr = (__u32)ctx->args[1];
	__s32 drive = -2; /* none yet */

	for (int i = 0; i < MAX_IOCBS; i++) {
		struct iocb *iocb;
		__u32 fd, *slot;

		if (i >= nr)
			break;
		if (bpf_probe_read_user(&iocb, sizeof(iocb), &iocbpp[i]) ||
		    bpf_probe_read_user(&fd, sizeof(fd), &iocb->aio_fildes))
			break;
		slot = fd_slot(id >> 32, fd);
		if (!slot)
			continue;
		if (drive == -2)
			drive = *slot;
		else if (drive != (__s32)*slot)
			drive = -1;
	}
	if (drive != -2)
		bpf_map_update_elem(&native_submit, &tid, &drive, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_io_submit")
int exit_io_submit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&native_submit, &tid);
	return 0;
}

static __always_inline __u32 rq_dev(struct request *rq)
{
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);

	return ((__u32)BPF_CORE_READ(disk, major) << 20) | (__u32)BPF_CORE_READ(disk, first_minor);
}

/* A new request for a bio, made in the submitting task. */
SEC("tp_btf/block_getrq")
int BPF_PROG(native_getrq, struct bio *bio)
{
	__u64 id = bpf_get_current_pid_tgid(), key = (__u64)bio;
	__u32 tid = (__u32)id, *slot;
	struct drive_fd_key dkey = {};
	struct inflight in = {};
	__s32 *drive;

	drive = bpf_map_lookup_elem(&native_submit, &tid);
	if (!drive)
		return 0;
	/* An image that is a block device names its drive exactly. */
	dkey.tgid = id >> 32;
	dkey.fd = BPF_CORE_READ(bio, bi_bdev, bd_dev);
	slot = bpf_map_lookup_elem(&disk_devs, &dkey);
	if (slot) {
		in.slot = *slot;
	} else if (*drive >= 0) {
		in.slot = *drive;
	} else {
		bump(&disk_errors, DISK_ERR_NATIVE_AMBIGUOUS);
		return 0;
	}
	in.start_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&native_inflight, &key, &in, BPF_ANY);
	return 0;
}

static __always_inline int blk_op(__u32 cmd_flags)
{
	switch (cmd_flags & 0xff) /* REQ_OP_MASK */ {
	case REQ_OP_READ:
		return DISK_OP_READ;
	case REQ_OP_WRITE:
		return DISK_OP_WRITE;
	case REQ_OP_FLUSH:
		return DISK_OP_FLUSH;
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		return DISK_OP_DISCARD;
	}
	return -1;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(host_rq_issue, struct request *rq)
{
	__u64 key = (__u64)rq, now = bpf_ktime_get_ns();

	if (bpf_map_update_elem(&rq_start, &key, &now, BPF_ANY))
		bump(&disk_errors, DISK_ERR_INFLIGHT_FULL);
	return 0;
}

static __always_inline void host_complete(struct request *rq, int op, __u64 now)
{
	__u64 key = (__u64)rq, *start = bpf_map_lookup_elem(&rq_start, &key);
	struct blkdev_key dkey = {};
	struct blkdev_stats *st, zero = {};
	__u64 lat;

	if (!start)
		return;
	lat = now - *start;
	bpf_map_delete_elem(&rq_start, &key);
	if (op < 0)
		return;
	dkey.dev = rq_dev(rq);
	dkey.op = op;
	st = bpf_map_lookup_elem(&dev_stats, &dkey);
	if (!st) {
		bpf_map_update_elem(&dev_stats, &dkey, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&dev_stats, &dkey);
		if (!st)
			return;
	}
	__sync_fetch_and_add(&st->lat_sum_ns, lat);
	__sync_fetch_and_add(&st->lat_slots[hist_slot(lat, DISK_LAT_SLOTS)], 1);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	int op = blk_op(BPF_CORE_READ(rq, cmd_flags));
	__u64 now = bpf_ktime_get_ns(), key;
	struct inflight *in;

	host_complete(rq, op, now);

	key = (__u64)BPF_CORE_READ(rq, bio);
	if (!key || op < 0)
		return 0;
	in = bpf_map_lookup_elem(&native_inflight, &key);
	if (!in)
		return 0;
	record(in->slot, op, op == DISK_OP_FLUSH ? 0 : nr_bytes, now - in->start_ns,
	       DISK_SRC_NATIVE);
	bpf_map_delete_elem(&native_inflight, &key);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

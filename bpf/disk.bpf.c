// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Disk IO of VMs, per drive: every read, write, flush and discard QEMU
 * issues to the host, from issue to completion, for each AIO mode:
 *  - aio=threads: the worker threads' syscalls (enter -> exit);
 *  - aio=io_uring: io_uring_submit_req -> io_uring_complete;
 *  - aio=native: QEMU reaps Linux AIO completions from the user-space
 *    ring, so no syscall shows them; each block request is traced back
 *    from block_rq_complete to the process that submitted it (below), or,
 *    where the kernel does not allow that, the requests made inside the
 *    QEMU thread's io_submit are followed to block_rq_complete.
 * And host block device latency (issue -> complete) for all IO, from the
 * request's own issue stamp at completion.
 * User space maps (QEMU tgid, image fd) to drive slots; nothing per event
 * leaves the kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "maps.bpf.h"
#include "vmprobe/disk.h"
#include "arch.bpf.h"
#include "drive.bpf.h"

const volatile __u32 max_drives = DISK_DEFAULT_MAX_DRIVES;

#define MAX_IOCBS 32 /* iocbs read per io_submit; QEMU submits at most 128 */

VMPROBE_MAP(disk_fds, BPF_MAP_TYPE_HASH, struct drive_fd_key, __u32, 4096);

/* (tgid, kernel dev_t) of drives whose image is a block device. */
VMPROBE_MAP(disk_devs, BPF_MAP_TYPE_HASH, struct drive_fd_key, __u32, 1024);

VMPROBE_MMAP_ARRAY(drive_stats, struct drive_stats, DISK_DEFAULT_MAX_DRIVES * DISK_OP_MAX);

/*
 * When each drive slot's counting began (CLOCK_REALTIME ns, 0: unknown),
 * kept by user space and read by no program: pinned with the counters, so
 * that an adopted drive's _created is the one it had.
 */
VMPROBE_MMAP_ARRAY(drive_born, __u64, DISK_DEFAULT_MAX_DRIVES);

/*
 * In-flight requests live in direct-mapped arrays indexed by a hash of the
 * request's identity (thread id, io_uring request, bio, block request):
 * an array lookup costs a few instructions where a hash map update costs
 * hundreds of ns, and this runs for every block request on the host. The
 * entry keeps the identity to verify at completion; a collision between
 * two requests in flight at once overwrites the older one, which is then
 * counted as lost (DISK_ERR_INFLIGHT_FULL).
 */
#define DM_BITS 14
#define DM_SIZE (1 << DM_BITS)

struct inflight {
	__u64 key;
	__u64 start_ns;
	__u64 bytes; /* known at issue (discard); else taken at completion */
	__u32 slot;  /* SLOT_STAGED: an fd of a VM that no drive has yet */
	__u32 op;
	struct drive_fd_key staged; /* SLOT_STAGED: which */
	__u32 epoch; /* hooks_epoch when it started */
	__u32 failed; /* aio=native: a part completed so far failed */
};

/*
 * The hooks are attached only while there is something to measure (user
 * space, disk.c); each attach starts a new epoch, so that an entry left
 * from before a detach never completes a request seen since.
 */
volatile __u32 hooks_epoch;

#define DM_ARRAY(name)                                                            \
	struct {                                                                  \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                 \
		__uint(max_entries, DM_SIZE);                                     \
		__type(key, __u32);                                               \
		__type(value, struct inflight);                                   \
	} name SEC(".maps")

DM_ARRAY(sys_inflight);    /* aio=threads: by thread, syscall enter -> exit */
DM_ARRAY(uring_inflight);  /* aio=io_uring: by request */
DM_ARRAY(native_inflight); /* aio=native: by the bio that made a request */

/*
 * aio=native: the drive a thread's last io_submit was for (-1: mixed).
 * Valid only while that thread is inside io_submit (checked at use), so
 * no exit hook is needed; LRU lets entries of dead threads age out.
 */
VMPROBE_MAP(native_submit, BPF_MAP_TYPE_LRU_HASH, __u32, __s32, 4096);

/*
 * QEMU tgids, one bit each: the first test of every VM-only program, so
 * that IO of other processes costs an array read. Sized from pid_max.
 */
const volatile __u32 tgid_words = 65536;

VMPROBE_MAP(vm_tgids, BPF_MAP_TYPE_ARRAY, __u32, __u64, 65536);

/* Host block stats, open addressing on (device, op): no hash map update. */
VMPROBE_MMAP_ARRAY(dev_stats, struct blkdev_slot, DISK_DEV_SLOTS);

/*
 * IO of a VM on an fd no drive has yet (a drive hot-plugged a moment ago:
 * QEMU opened its image, the guest may already read it): counted here by
 * (tgid, fd), and user space told at the first request, so that when it
 * learns the fd is a drive's it adds these to the drive's slot. Nothing
 * before a drive is known is lost. LRU: fds that never become a drive's
 * age out.
 */
VMPROBE_MAP(disk_staged, BPF_MAP_TYPE_LRU_HASH, struct drive_fd_key, struct staged_stats,
	    DISK_STAGED_MAX);

VMPROBE_RINGBUF(disk_events, 4096);

VMPROBE_MAP(disk_sources, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, DISK_SRC_MAX);

VMPROBE_MAP(disk_errors, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, DISK_ERR_MAX);

static __always_inline void bump(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		*v += 1;
}

/* One request done: counted, or, if the host failed it, an error alone. */
static __always_inline void stats_add(struct drive_stats *st, __u64 bytes, __u64 lat_ns,
				      __u32 src, bool failed)
{
	if (failed)
		drive_stats_error(st);
	else if (drive_stats_add(st, bytes, lat_ns))
		bump(&disk_errors, DISK_ERR_CLOCK_SKEW);
	bump(&disk_sources, src);
}

static __always_inline void record(__u32 slot, __u32 op, __u64 bytes, __u64 lat_ns, __u32 src,
				   bool failed)
{
	struct drive_stats *st;
	__u32 idx;

	if (slot >= max_drives || op >= DISK_OP_MAX)
		return;
	idx = drive_stats_index(slot, op);
	st = bpf_map_lookup_elem(&drive_stats, &idx);
	if (st)
		stats_add(st, bytes, lat_ns, src, failed);
}

/* A completed request of the syscall or io_uring paths: its drive's, or staged. */
static __always_inline void record_in(const struct inflight *in, __u64 bytes, __u64 lat_ns,
				      __u32 src, bool failed)
{
	struct staged_stats *ss;

	if (in->slot != SLOT_STAGED) {
		record(in->slot, in->op, bytes, lat_ns, src, failed);
		return;
	}
	ss = bpf_map_lookup_elem(&disk_staged, &in->staged);
	if (ss && in->op < DISK_OP_MAX)
		stats_add(&ss->ops[in->op], bytes, lat_ns, src, failed);
}

static __always_inline __u32 dm_index(__u64 key)
{
	return (__u32)((key * 0x9E3779B97F4A7C15ULL) >> (64 - DM_BITS));
}

/* The entry for `key`, claimed for a new request (an older one is lost). */
static __always_inline struct inflight *dm_start(void *map, __u64 key)
{
	__u32 idx = dm_index(key);
	struct inflight *e = bpf_map_lookup_elem(map, &idx);

	if (!e)
		return NULL;
	if (e->key && e->epoch == hooks_epoch)
		bump(&disk_errors, DISK_ERR_INFLIGHT_FULL);
	e->key = key;
	e->epoch = hooks_epoch;
	e->start_ns = bpf_ktime_get_ns();
	e->bytes = 0;
	e->failed = 0;
	return e;
}

/* The entry of a completing request, or NULL if it was never started. */
static __always_inline struct inflight *dm_find(void *map, __u64 key)
{
	__u32 idx = dm_index(key);
	struct inflight *e = bpf_map_lookup_elem(map, &idx);

	return e && e->key == key && e->epoch == hooks_epoch ? e : NULL;
}

static __always_inline bool is_vm(__u32 tgid)
{
	__u32 word = tgid / 64;
	__u64 *bits;

	if (word >= tgid_words)
		return false;
	bits = bpf_map_lookup_elem(&vm_tgids, &word);
	return bits && (*bits & (1ULL << (tgid % 64)));
}

static __always_inline __u32 *fd_slot(__u32 tgid, __u64 fd)
{
	struct drive_fd_key key = {};

	key.tgid = tgid;
	key.fd = (__u32)fd;
	return bpf_map_lookup_elem(&disk_fds, &key);
}

/* The (kernel dev_t, inode) of the file behind the current task's fd; zeros if none. */
static __always_inline void fd_file_id(__u64 fd, __u32 *dev, __u64 *ino)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	struct file *file = NULL;

	*dev = 0;
	*ino = 0;
	if (fd >= BPF_CORE_READ(task, files, fdt, max_fds) ||
	    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return;
	*ino = BPF_CORE_READ(file, f_inode, i_ino);
	*dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
}

/*
 * The slot for a request of VM `tgid` on `fd`: its drive's, or, when no
 * drive has the fd yet, SLOT_STAGED with the staging entry made (user
 * space is told of a new one).
 */
static __always_inline __u32 slot_or_stage(__u32 tgid, __u64 fd, struct drive_fd_key *staged)
{
	static const struct staged_stats zero;
	__u32 *slot = fd_slot(tgid, fd);
	struct staged_stats *ss;
	__u64 ino;
	__u32 dev;

	if (slot)
		return *slot;
	staged->tgid = tgid;
	staged->fd = (__u32)fd;
	/*
	 * The file behind the number now: requests on another file (a
	 * library the loader read through the same number before QEMU opened
	 * the image there) must never be added to the drive.
	 */
	fd_file_id(fd, &dev, &ino);
	ss = bpf_map_lookup_elem(&disk_staged, staged);
	if (ss && ss->dev == dev && ss->ino == ino)
		return SLOT_STAGED;
	if (bpf_map_update_elem(&disk_staged, staged, &zero, BPF_ANY))
		return SLOT_STAGED;
	ss = bpf_map_lookup_elem(&disk_staged, staged);
	if (ss) {
		ss->dev = dev;
		ss->ino = ino;
	}
	bpf_ringbuf_output(&disk_events, staged, sizeof(*staged), 0);
	return SLOT_STAGED;
}

/* ---- aio=threads ---- */

static __always_inline int sys_enter(__u64 id, __u64 fd, __u32 op, __u64 bytes)
{
	struct drive_fd_key staged = {};
	__u32 slot = slot_or_stage(id >> 32, fd, &staged);
	struct inflight *in;

	in = dm_start(&sys_inflight, id);
	if (!in)
		return 0;
	in->slot = slot;
	in->staged = staged;
	in->op = op;
	in->bytes = bytes;
	return 0;
}

static int native_submit_enter(__u64 id, struct iocb **iocbpp, __u32 nr);

/*
 * Classic tracepoints, one per syscall, rather than the raw sys_enter and
 * sys_exit: those run for every syscall of every process, these only for
 * the IO syscalls, so a busy non-VM process pays far less (measured: the
 * raw pair cost fio more than the classic io_submit pair). A process that
 * is not a VM then costs one bitmap test, plus the tracepoint's own cost,
 * which no program can avoid (bench/syscall.sh measures it beside an empty
 * program's): paid only while a VM runs, the hooks being attached only
 * then (user/probes/disk/disk.c).
 */
static __always_inline int sys_enter_vm(__u64 fd, __u32 op, __u64 bytes)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!is_vm(id >> 32))
		return 0;
	return sys_enter(id, fd, op, bytes);
}

/* A negative return is the host failing the request: an error, not an operation. */
static __always_inline int sys_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid(), bytes;
	struct inflight *in;

	if (!is_vm(id >> 32))
		return 0;
#ifdef VMPROBE_TEST_UPGRADE_VARIANT
	{
		/* Test only (Makefile's TEST_UPGRADE_VARIANT): other instructions, the same maps. */
		volatile __u64 test_upgrade_variant = id;

		(void)test_upgrade_variant;
	}
#endif
	in = dm_find(&sys_inflight, id);
	if (!in)
		return 0;
	bytes = in->bytes;
	if (in->op == DISK_OP_READ || in->op == DISK_OP_WRITE)
		bytes = ret > 0 ? ret : 0;
	record_in(in, bytes, bpf_ktime_get_ns() - in->start_ns, DISK_SRC_SYSCALL, ret < 0);
	in->key = 0;
	return 0;
}

#define SYSCALL_PAIR(name, op)                                                   \
	SEC("tracepoint/syscalls/sys_enter_" #name)                              \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)                  \
	{                                                                        \
		return sys_enter_vm(ctx->args[0], op, 0);                        \
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

/* fallocate(fd, mode, offset, len): a discard or not, by mode (disk_falloc_op). */
SEC("tracepoint/syscalls/sys_enter_fallocate")
int enter_fallocate(struct trace_event_raw_sys_enter *ctx)
{
	int op = disk_falloc_op(ctx->args[1]);

	if (op < 0)
		return 0;
	return sys_enter_vm(ctx->args[0], op, ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_fallocate")
int exit_fallocate(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx->ret);
}

/* io_submit(ctx, nr, iocbpp): aio=native's batch; no exit hook needed. */
SEC("tracepoint/syscalls/sys_enter_io_submit")
int enter_io_submit(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!is_vm(id >> 32))
		return 0;
	return native_submit_enter(id, (struct iocb **)ctx->args[2], (__u32)ctx->args[1]);
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
	}
	return -1;
}

#define IORING_OP_FALLOCATE 17

/*
 * An IORING_OP_FALLOCATE's arguments, as its prep stored them in the
 * request's command area (struct io_sync; "io_uring: move to separate
 * directory", 6.0, made that the io_kiocb's `cmd`) ahead of this
 * tracepoint; NULL where this kernel's layout differs (no mode: a
 * request of no kind).
 */
static __always_inline struct io_sync *uring_sync(struct io_kiocb *req)
{
	if (!bpf_core_field_exists(req->cmd) || !bpf_core_type_exists(struct io_sync))
		return NULL;
	return (void *)req + bpf_core_field_offset(req->cmd);
}

static __always_inline int uring_submit_one(struct io_kiocb *req, __u8 opcode)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	int op = uring_op(opcode);
	struct drive_fd_key staged = {};
	struct io_sync *sync = NULL;
	struct inflight *in;
	__u32 slot;
	int fd;

	if (opcode == IORING_OP_FALLOCATE && is_vm(tgid)) {
		sync = uring_sync(req);
		op = sync ? disk_falloc_op(BPF_CORE_READ(sync, mode)) : -1;
	}
	if (op < 0 || !is_vm(tgid))
		return 0;
	fd = BPF_CORE_READ(req, cqe.fd);
	/* A registered file's fd is an index into the ring's table. */
	if (BPF_CORE_READ(req, flags) & (1ULL << REQ_F_FIXED_FILE_BIT)) {
		if (fd_slot(tgid, fd))
			bump(&disk_errors, DISK_ERR_FIXED_FILE);
		return 0;
	}
	slot = slot_or_stage(tgid, fd, &staged);
	in = dm_start(&uring_inflight, (__u64)req);
	if (!in)
		return 0;
	in->slot = slot;
	in->staged = staged;
	in->op = op;
	if (sync)
		in->bytes = BPF_CORE_READ(sync, len);
	return 0;
}

SEC("tracepoint/io_uring/io_uring_submit_req")
int uring_submit(struct trace_event_raw_io_uring_submit_req *ctx)
{
	return uring_submit_one(ctx->req, ctx->opcode);
}

/* The same tracepoint before Linux 6.4 (Debian 12's 6.1), named for the SQE. */
struct trace_event_raw_io_uring_submit_sqe {
	struct trace_entry ent;
	void *ctx;
	void *req;
	__u64 user_data;
	__u8 opcode;
} __attribute__((preserve_access_index));

SEC("tracepoint/io_uring/io_uring_submit_sqe")
int uring_submit_sqe(struct trace_event_raw_io_uring_submit_sqe *ctx)
{
	return uring_submit_one(ctx->req, ctx->opcode);
}

/*
 * Completions may run in any task (io-wq, task work): keyed by request. A
 * negative result (the CQE's res) is an error, -EAGAIN included: QEMU
 * submits the request again, which is a request of its own.
 */
SEC("tracepoint/io_uring/io_uring_complete")
int uring_complete(struct trace_event_raw_io_uring_complete *ctx)
{
	struct inflight *in = dm_find(&uring_inflight, (__u64)ctx->req);
	__u64 bytes = 0;

	if (!in)
		return 0;
	if ((in->op == DISK_OP_READ || in->op == DISK_OP_WRITE) && ctx->res > 0)
		bytes = ctx->res;
	else if (in->op == DISK_OP_DISCARD)
		bytes = in->bytes;
	record_in(in, bytes, bpf_ktime_get_ns() - in->start_ns, DISK_SRC_IO_URING, ctx->res < 0);
	in->key = 0;
	return 0;
}

/* ---- aio=native ---- */

/* io_submit(ctx, nr, iocbpp) of a VM: which drive the batch is for. */
static __noinline int native_submit_enter(__u64 id, struct iocb **iocbpp, __u32 nr)
{
	__u32 tid = (__u32)id;
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


/* Is the current task inside io_submit(2)? Its saved syscall number says. */
static __always_inline bool in_io_submit(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	return SYSCALL_NR(regs) == NR_IO_SUBMIT;
}

/* Native-mode requests are looked for only while a VM has such a drive. */
volatile __u32 native_drives;

/* A native request's identity: device and first sector, as biolatency keys. */
static __always_inline __u64 sector_key(__u32 dev, __u64 sector)
{
	return 1ULL << 63 | (((__u64)dev << 40) ^ sector);
}

/*
 * A block request completed in part (blk_update_request with fewer bytes
 * than it has): the rest completes later from the sector after, where
 * its entry moves with the bytes done so far. Counted once, when done.
 */
static __noinline int native_partial(struct inflight *in, __u32 dev, __u64 sector, __u32 nr_bytes,
				     bool failed)
{
	__u64 start = in->start_ns, bytes = in->bytes + nr_bytes;
	__u32 slot = in->slot, was_failed = in->failed;
	struct inflight *next;

	in->key = 0;
	next = dm_start(&native_inflight, sector_key(dev, sector + (nr_bytes >> 9)));
	if (!next)
		return 0;
	next->start_ns = start;
	next->bytes = bytes;
	next->slot = slot;
	next->failed = was_failed || failed;
	return 0;
}

/* A new request for a bio, made in the submitting task. */
SEC("raw_tp/block_getrq")
int BPF_PROG(native_getrq, struct bio *bio)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, *slot, drive_slot, dev;
	struct drive_fd_key dkey = {};
	struct inflight *in;
	__s32 *drive;

	if (!is_vm(id >> 32))
		return 0;
	drive = bpf_map_lookup_elem(&native_submit, &tid);
	if (!drive || !in_io_submit())
		return 0;
	dev = BPF_CORE_READ(bio, bi_bdev, bd_dev);
	/* An image that is a block device names its drive exactly. */
	dkey.tgid = id >> 32;
	dkey.fd = dev;
	slot = bpf_map_lookup_elem(&disk_devs, &dkey);
	if (slot) {
		drive_slot = *slot;
	} else if (*drive >= 0) {
		drive_slot = *drive;
	} else {
		bump(&disk_errors, DISK_ERR_NATIVE_AMBIGUOUS);
		return 0;
	}
	/*
	 * Keyed by the whole disk, as block_rq_complete sees it: a partition's
	 * bio already carries whole-disk sectors but its own bd_dev.
	 */
	{
		struct gendisk *disk = BPF_CORE_READ(bio, bi_bdev, bd_disk);
		__u32 disk_dev = ((__u32)BPF_CORE_READ(disk, major) << 20) |
				 (__u32)BPF_CORE_READ(disk, first_minor);

		in = dm_start(&native_inflight,
			      sector_key(disk_dev, BPF_CORE_READ(bio, bi_iter.bi_sector)));
	}
	if (in)
		in->slot = drive_slot;
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

/* Host block latency of every request (disk.host_block_latency). */
const volatile bool host_block = false;

/*
 * When a request was issued, from blk-mq's own stamps, so that host block
 * latency needs no block_rq_issue hook and no in-flight table: each hook
 * hit on the IO path costs every process's IO (measured on fio, bench/
 * disk.sh). io_start_time_ns is stamped at issue when the queue keeps
 * stats (QUEUE_FLAG_STATS: wbt, iolatency, iocost); start_time_ns at
 * allocation whenever the request needs a time stamp (iostats on, or an
 * I/O scheduler; blk_mq_need_time_stamp()), the start /proc/diskstats
 * accounts from. Without a scheduler, allocation is issue. Since 6.9
 * ("block: add plug based timestamp caching") both
 * may be the time of the first request of the submitter's plug. 0: the
 * request has no stamp.
 */
static __always_inline __u64 rq_start_ns(struct request *rq)
{
	__u64 t = 0;

	if (bpf_core_field_exists(rq->io_start_time_ns))
		t = rq->io_start_time_ns;
	if (!t && bpf_core_field_exists(rq->start_time_ns))
		t = rq->start_time_ns;
	return t;
}

/* The (device, op) slot, claimed on first use; linear probing. */
static __always_inline struct blkdev_slot *dev_slot(__u32 dev, __u32 op)
{
	__u64 key = blkdev_slot_key(dev, op);
	__u32 idx = dm_index(key) & (DISK_DEV_SLOTS - 1);

	for (int i = 0; i < 4; i++) {
		__u32 at = (idx + i) & (DISK_DEV_SLOTS - 1);
		struct blkdev_slot *e = bpf_map_lookup_elem(&dev_stats, &at);

		if (!e)
			return NULL;
		if (e->key == key)
			return e;
		if (e->key == 0 && __sync_val_compare_and_swap(&e->key, 0, key) == 0)
			return e;
		if (e->key == key)
			return e;
	}
	return NULL;
}

/*
 * aio=native from the completion alone. At block_rq_complete the request's
 * first bio still says who made it: a direct-IO bio's end_io names its
 * container (struct blkdev_dio for a block device, struct iomap_dio for a
 * file on xfs/ext4/btrfs...), whose iocb is the submitter's kiocb; a kiocb
 * fs/aio.c submitted completes through aio_complete_rw and sits in a
 * struct aio_kiocb with its AIO context. That context's ring is mapped in
 * exactly one mm, the submitter's, whose owner's tgid says whether a VM
 * made the request: exact, with no io_submit or block_getrq hook, so other
 * processes' IO pays no hook for it. The kernel addresses come from
 * /proc/kallsyms via user space; 0 where this kernel has no such function.
 */
const volatile __u64 ksym_blkdev_dio_async = 0; /* blkdev_bio_end_io_async (5.16+): bio inside blkdev_dio */
const volatile __u64 ksym_blkdev_dio = 0;       /* blkdev_bio_end_io: bi_private is the blkdev_dio */
const volatile __u64 ksym_iomap_dio = 0;        /* iomap_dio_bio_end_io: bi_private is the iomap_dio */
const volatile __u64 ksym_aio_complete_rw = 0;  /* ki_complete of a kiocb from io_submit(2) */
const volatile __u64 ksym_bio_chain_endio = 0;  /* a piece split off a bio: bi_private is that bio */

/* Image inodes of native drives: (tgid, dev, ino) -> slot, (0, dev, ino) -> users. */
VMPROBE_MAP(native_files, BPF_MAP_TYPE_HASH, struct native_file_key, __u32, 4096);

/*
 * The walk reads typed pointers (bpf_rdonly_cast, 6.2: "bpf: Add a kfunc
 * for generic type cast"): plain loads, where a bpf_probe_read
 * per step cost ~40 ns each, measured, on every AIO completion on the host.
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define TYPED(type, p) ((type *)bpf_rdonly_cast((void *)(p), bpf_core_type_id_kernel(type)))

VMPROBE_MAP(native_inode_bits, BPF_MAP_TYPE_ARRAY, __u32, __u64, NATIVE_BITS_WORDS);

static __always_inline bool maybe_native_inode(__u32 dev, __u64 ino)
{
	__u32 bit = native_inode_bit(dev, ino), word = bit / 64;
	__u64 *w = bpf_map_lookup_elem(&native_inode_bits, &word);

	return w && (*w & (1ULL << (bit % 64)));
}

/*
 * The kiocb a direct-IO bio was made for, or NULL; *size: the bytes of the
 * whole request where its dio says them (a block device's: fixed before
 * its bios are submitted), else 0. A piece the block layer split off to
 * fit the device's limits (bio_split_to_limits) ends in bio_chain_endio
 * and points to the bio it came from.
 */
static __always_inline struct kiocb *dio_kiocb(struct bio *bio, __u64 *size)
{
	__u64 end_io = (__u64)bio->bi_end_io;
	struct blkdev_dio *bd;

	*size = 0;
	if (end_io && end_io == ksym_bio_chain_endio) {
		bio = TYPED(struct bio, bio->bi_private);
		end_io = (__u64)bio->bi_end_io;
	}
	if (!end_io)
		return NULL;
	/* Without bio_chain_endio's address, split-off pieces are not known: no size to wait for. */
	if (end_io == ksym_blkdev_dio_async && bpf_core_type_exists(struct blkdev_dio)) {
		bd = TYPED(struct blkdev_dio,
			   (__u64)bio - bpf_core_field_offset(struct blkdev_dio, bio));
		*size = ksym_bio_chain_endio ? bd->size : 0;
		return bd->iocb;
	}
	if (end_io == ksym_blkdev_dio && bpf_core_type_exists(struct blkdev_dio)) {
		bd = TYPED(struct blkdev_dio, bio->bi_private);
		*size = ksym_bio_chain_endio ? bd->size : 0;
		return bd->iocb;
	}
	if (end_io == ksym_iomap_dio && bpf_core_type_exists(struct iomap_dio))
		return TYPED(struct iomap_dio, bio->bi_private)->iocb;
	return NULL;
}

/* The tgid whose mm maps the ring of an io_submit kiocb's AIO context. */
static __always_inline __u32 aio_submitter(struct kiocb *iocb)
{
	struct aio_kiocb *req;
	struct rb_node *node;
	struct vm_area_struct *vma;
	struct task_struct *owner;
	struct file *ring;

	req = TYPED(struct aio_kiocb, (__u64)iocb - bpf_core_field_offset(struct aio_kiocb, rw));
	ring = req->ki_ctx->aio_ring_file;
	if (!ring)
		return 0;
	node = ring->f_mapping->i_mmap.rb_root.rb_node;
	if (!node)
		return 0;
	vma = TYPED(struct vm_area_struct,
		    (__u64)node - bpf_core_field_offset(struct vm_area_struct, shared.rb));
	owner = vma->vm_mm->owner;
	return owner ? owner->tgid : 0;
}

/*
 * A request of io_submit(2) in pieces: block requests a bio was split
 * into, or a block request completed in parts (blk_update_request with
 * fewer bytes than it has). Counted once, when its last byte is done:
 * its full size, latency from the earliest piece's start to then, failed
 * if any piece failed. Keyed by the kiocb; its position and size tell a
 * reused kiocb from a request whose pieces were not all seen (the hook
 * attached meanwhile), and the epoch one from before a detach.
 */
struct native_req {
	__u64 start_ns;
	__u64 done; /* bytes */
	__u64 size;
	__s64 pos;
	__u32 slot;
	__u32 failed;
	__u32 epoch;
};

VMPROBE_MAP(native_reqs, BPF_MAP_TYPE_LRU_HASH, __u64, struct native_req, 1024);

/* One piece of a request, as native_bio hands it to native_piece. */
struct native_piece_arg {
	__u64 kiocb; /* its address, as a number: native_reqs' key */
	__u64 now;
	int op;
	struct native_req req; /* the piece: its bytes in req.done */
};

/*
 * Counts a piece of an io_submit request. A global function, so that the
 * verifier checks it once: as a static one it was checked again for each
 * bio of native_complete's loop, record() within it, which made loading
 * the disk probe take 1.1 s here (now 0.02 s). Its argument is memory:
 * the kiocb's address crosses as a number in it (a pointer may not cross
 * as a scalar argument).
 */
__noinline int native_piece(struct native_piece_arg *a)
{
	struct native_req *r, *p;
	__u64 done, n, key;

	if (!a)
		return 0;
	p = &a->req;
	key = a->kiocb;
	n = p->done;
	if (n >= p->size) {
		record(p->slot, a->op, p->size, a->now - p->start_ns, DISK_SRC_NATIVE, p->failed);
		return 0;
	}
	r = bpf_map_lookup_elem(&native_reqs, &key);
	if (!r || r->pos != p->pos || r->size != p->size || r->epoch != p->epoch) {
		/* A piece completing at once on another CPU may make it first: then add to that. */
		if (!bpf_map_update_elem(&native_reqs, &key, p, r ? BPF_ANY : BPF_NOEXIST))
			return 0;
		r = bpf_map_lookup_elem(&native_reqs, &key);
		if (!r)
			return 0;
	}
	if (p->start_ns < r->start_ns)
		r->start_ns = p->start_ns;
	if (p->failed)
		r->failed = 1;
	done = __sync_add_and_fetch(&r->done, n);
	/* Exactly one piece's bytes cross the size: that one counts the request. */
	if (done < r->size || done - n >= r->size)
		return 0;
	record(r->slot, a->op, r->size, a->now - r->start_ns, DISK_SRC_NATIVE, r->failed);
	bpf_map_delete_elem(&native_reqs, &key);
	return 0;
}

/* What a completion says of each of its bios. */
struct native_done {
	__u64 start_ns; /* the block request's issue */
	__u64 now;
	int op;
	bool failed;
};

/*
 * `n` bytes of `bio` done: a VM's aio=native request, or a piece of one?
 * A function of its own: inlined into the loop over a request's bios, its
 * branches multiplied past the verifier's limit.
 */
static __noinline void native_bio(struct bio *bio, __u64 n, const struct native_done *c)
{
	struct native_file_key key = {};
	struct native_piece_arg a = {};
	struct kiocb *iocb;
	struct inode *inode;
	__u64 size;
	__u32 *slot;

	iocb = dio_kiocb(bio, &size);
	if (!iocb || (__u64)iocb->ki_complete != ksym_aio_complete_rw)
		return;
	inode = iocb->ki_filp->f_inode;
	key.dev = inode->i_sb->s_dev;
	key.ino = inode->i_ino;
	/* Only then the longer walk to the submitter: is it a VM's image at all? */
	if (!maybe_native_inode(key.dev, key.ino) || !bpf_map_lookup_elem(&native_files, &key))
		return;
	key.tgid = aio_submitter(iocb);
	if (!key.tgid || !is_vm(key.tgid))
		return;
	slot = bpf_map_lookup_elem(&native_files, &key);
	if (!slot)
		return;
	/*
	 * A file's dio may have bytes no block request carries (holes read
	 * as zeroes): its size is not waited for, each block request counts.
	 */
	a.kiocb = (__u64)iocb;
	a.now = c->now;
	a.op = c->op;
	a.req.start_ns = c->start_ns;
	a.req.done = n;
	a.req.size = size ? size : n;
	a.req.pos = iocb->ki_pos;
	a.req.slot = *slot;
	a.req.failed = c->failed;
	a.req.epoch = hooks_epoch;
	native_piece(&a);
}

/* Bios of one request a completion may end: merged requests of several kiocbs. */
#define NATIVE_MAX_BIOS 8

/*
 * The bios of the request that `nr_bytes` ends, in order, as
 * blk_update_request ends them: each VM request among them is counted.
 */
static __always_inline void native_complete(struct request *rq, int op, __u32 nr_bytes, __u64 now,
					    bool failed)
{
	struct native_done c = { .now = now, .op = op, .failed = failed };
	struct bio *bio = rq->bio;
	__u64 left = nr_bytes, n;

	if (!bio || op == DISK_OP_FLUSH)
		return;
	c.start_ns = rq_start_ns(rq);
	if (!c.start_ns) {
		bump(&disk_errors, DISK_ERR_NO_TIMESTAMP);
		return;
	}
	/* Stamped on another CPU whose clock is ahead: counted, latency 0 (drive_stats_add). */
#pragma clang loop unroll(disable)
	for (int i = 0; i < NATIVE_MAX_BIOS && bio && left; i++) {
		n = bio->bi_iter.bi_size;
		if (n > left)
			n = left;
		native_bio(bio, n, &c);
		left -= n;
		bio = bio->bi_next;
	}
}

/*
 * Every completed block request: host block latency, and aio=native's
 * requests, found either by the walk from the request (native_complete)
 * or as started by block_getrq. Two programs, one loaded (user space
 * chooses): the walk's kfunc must not appear where it does not exist.
 */
static __always_inline int rq_done(struct request *rq, __u32 nr_bytes, bool failed, bool walk)
{
	struct blkdev_slot *ds;
	struct inflight *in;
	struct gendisk *disk;
	__u64 now, start, lat;
	__u32 dev;
	int op;

	if (!host_block && !native_drives)
		return 0;
	now = bpf_ktime_get_ns();
	op = blk_op(rq->cmd_flags);
	disk = rq->q->disk;
	dev = disk ? ((__u32)disk->major << 20) | (__u32)disk->first_minor : 0;
	if (host_block && op >= 0) {
		start = rq_start_ns(rq);
		if (!start) {
			bump(&disk_errors, DISK_ERR_NO_TIMESTAMP);
		} else {
			lat = now - start;
			if (unskew_ns(&lat))
				bump(&disk_errors, DISK_ERR_CLOCK_SKEW);
			ds = dev_slot(dev, op);
			if (ds) {
				__sync_fetch_and_add(&ds->st.lat_sum_ns, lat);
				__sync_fetch_and_add(&ds->st.lat_slots[time_slot(lat, DISK_LAT_SLOTS)], 1);
			}
		}
	}
	if (!native_drives || op < 0)
		return 0;
	if (walk) {
		native_complete(rq, op, nr_bytes, now, failed);
		return 0;
	}
	in = dm_find(&native_inflight, sector_key(dev, rq->__sector));
	if (!in)
		return 0;
	if (op != DISK_OP_FLUSH && nr_bytes < rq->__data_len)
		return native_partial(in, dev, rq->__sector, nr_bytes, failed);
	record(in->slot, op, op == DISK_OP_FLUSH ? 0 : in->bytes + nr_bytes, now - in->start_ns,
	       DISK_SRC_NATIVE, failed || in->failed);
	in->key = 0;
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	return rq_done(rq, nr_bytes, error != 0, false);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(rq_complete_walk, struct request *rq, int error, unsigned int nr_bytes)
{
	return rq_done(rq, nr_bytes, error != 0, true);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

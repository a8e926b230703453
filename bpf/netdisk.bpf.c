// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Network disks of VMs, per drive: the requests QEMU's rbd and iSCSI
 * drivers hand to librbd and libiscsi, from submission to completion,
 * seen by uprobes on the libraries' exported functions. User space
 * attaches them to each QEMU process alone (a uprobe with a pid puts its
 * breakpoints in that process only): other processes using the same
 * libraries never hit one.
 *  - librbd: rbd_aio_{readv,writev,discard,write_zeroes,flush}(image, ..., c)
 *    submit; QEMU's completion callback calls rbd_aio_get_return_value(c),
 *    then rbd_aio_release(c). The result, negative for an error, is read
 *    where rbd_aio_get_return_value reads it (learned from its code).
 *    Each hook is a trap per request (the cost that matters, see
 *    bench/netdisk.sh): release is not hooked, and user space forgets the
 *    entry of a submit that failed (released without completing) when it
 *    is a day old.
 *  - libiscsi: every iscsi_*_task builder goes through
 *    iscsi_scsi_command_async(iscsi, lun, task, ...); QEMU frees the task
 *    with scsi_free_scsi_task(task) once its callback ran, the task's
 *    status not GOOD for a failed command.
 * A session (rbd image handle, iSCSI context) user space has not matched
 * to a drive yet counts into a staging entry, and its first request is
 * told to user space, which adds what was staged to the drive it finds.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "maps.bpf.h"
#include "vmprobe/netdisk.h"
#include "drive.bpf.h"

const volatile __u32 max_drives = NETDISK_DEFAULT_MAX_DRIVES;

VMPROBE_MMAP_ARRAY(netdisk_stats, struct drive_stats, NETDISK_DEFAULT_MAX_DRIVES * DISK_OP_MAX);

/* Each slot's birth, user space's alone, as disk.bpf.c's drive_born: adopted with the counters. */
VMPROBE_MMAP_ARRAY(netdisk_born, __u64, NETDISK_DEFAULT_MAX_DRIVES);

/* Sessions user space matched to a drive: -> slot. */
VMPROBE_MAP(netdisk_sessions, BPF_MAP_TYPE_HASH, struct netdisk_session, __u32,
	    NETDISK_SESSIONS_MAX);

/* Requests of sessions not matched yet, until user space adds them to their drive. */
VMPROBE_MAP(netdisk_staged, BPF_MAP_TYPE_LRU_HASH, struct netdisk_session, struct staged_stats,
	    256);

/*
 * A hash, not an LRU: a full table refuses a request (counted, said) rather
 * than evict one in flight unseen. User space forgets the entries of
 * requests that never complete (netdisk_inflight_sweep).
 */
VMPROBE_MAP(netdisk_inflight, BPF_MAP_TYPE_HASH, struct netdisk_req, struct netdisk_inflight,
	    NETDISK_INFLIGHT_MAX);

/* iSCSI: the block size of a session, from its reads and writes, for UNMAP's blocks. */
VMPROBE_MAP(netdisk_blksize, BPF_MAP_TYPE_LRU_HASH, struct netdisk_session, __u32,
	    NETDISK_SESSIONS_MAX);

VMPROBE_RINGBUF(netdisk_events, 4096);

/* Sessions whose first request found the ring full: told again at their next request. */
VMPROBE_MAP(netdisk_untold, BPF_MAP_TYPE_LRU_HASH, struct netdisk_session, __u32, 256);

/* Slot -> the drive it counts: user space's, for the next serve (vmprobe/netdisk.h). */
VMPROBE_MAP(netdisk_owners, BPF_MAP_TYPE_HASH, __u32, struct netdisk_slot_owner,
	    NETDISK_DEFAULT_MAX_DRIVES);

VMPROBE_MAP(netdisk_errors, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, NETDISK_ERR_MAX);

static __always_inline void bump(__u32 err)
{
	__u64 *v = bpf_map_lookup_elem(&netdisk_errors, &err);

	if (v)
		*v += 1;
}

/*
 * Tells user space of a session to match. A full ring: told again at the
 * session's next request, and user space, told by the count, walks the
 * staging map at its next read of the ring.
 */
static __always_inline void announce(const struct netdisk_session *s, __u32 lun)
{
	struct netdisk_event ev = { .sess = *s, .lun = lun };

	if (bpf_ringbuf_output(&netdisk_events, &ev, sizeof(ev), 0)) {
		bump(NETDISK_ERR_EVENT_LOST);
		bpf_map_update_elem(&netdisk_untold, s, &lun, BPF_ANY);
	}
}

/* The session's slot, or SLOT_STAGED with its staging entry made (user space told). */
static __always_inline __u32 session_slot(struct netdisk_session *s, __u32 lun)
{
	static const struct staged_stats zero;
	__u32 *slot = bpf_map_lookup_elem(&netdisk_sessions, s);

	if (slot)
		return *slot;
	if (!bpf_map_lookup_elem(&netdisk_staged, s)) {
		if (!bpf_map_update_elem(&netdisk_staged, s, &zero, BPF_NOEXIST))
			announce(s, lun);
	} else if (bpf_map_lookup_elem(&netdisk_untold, s)) {
		bpf_map_delete_elem(&netdisk_untold, s);
		announce(s, lun);
	}
	return SLOT_STAGED;
}

static __always_inline int submit(__u32 kind, __u64 handle, __u64 req_ptr, __u32 op,
				  __u64 bytes, __u32 lun)
{
	struct netdisk_req req = {};
	struct netdisk_inflight in = {};

	req.tgid = bpf_get_current_pid_tgid() >> 32;
	req.ptr = req_ptr;
	in.sess.tgid = req.tgid;
	in.sess.kind = kind;
	in.sess.handle = handle;
	in.op = op;
	in.bytes = bytes;
	in.slot = session_slot(&in.sess, lun);
	in.start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&netdisk_inflight, &req, &in, BPF_ANY))
		bump(NETDISK_ERR_INFLIGHT_FULL);
	return 0;
}

/* The request ends: its counters (an error's alone if it failed), then it is forgotten. */
static __always_inline int complete(__u64 req_ptr, bool failed)
{
	struct netdisk_req req = {};
	struct netdisk_inflight *in;
	struct drive_stats *st = NULL;
	struct staged_stats *ss;
	__u32 idx, op, slot;

	req.tgid = bpf_get_current_pid_tgid() >> 32;
	req.ptr = req_ptr;
	in = bpf_map_lookup_elem(&netdisk_inflight, &req);
	if (!in)
		return 0;
	/* Copies the verifier can bound: the entry's memory may change under us. */
	op = in->op & (DISK_OP_MAX - 1);
	slot = in->slot;
	if (slot == SLOT_STAGED) {
		ss = bpf_map_lookup_elem(&netdisk_staged, &in->sess);
		if (ss) {
			st = &ss->ops[op];
		} else {
			/* Staged before its session was matched, done after the merge: its drive's. */
			__u32 *matched = bpf_map_lookup_elem(&netdisk_sessions, &in->sess);

			slot = matched ? *matched : SLOT_STAGED;
		}
	}
	if (slot != SLOT_STAGED && slot < max_drives) {
		idx = drive_stats_index(slot, op);
		st = bpf_map_lookup_elem(&netdisk_stats, &idx);
	}
	if (st && failed)
		drive_stats_error(st);
	else if (st)
		drive_stats_add(st, in->bytes, bpf_ktime_get_ns() - in->start_ns);
	bpf_map_delete_elem(&netdisk_inflight, &req);
	return 0;
}

/* ---- librbd ---- */

struct iovec___user {
	void *iov_base;
	__u64 iov_len;
};

/*
 * QEMU hands librbd the guest request's own vector: a segment per guest
 * page or run of pages, up to IOV_MAX (a 1 MiB write of scattered pages
 * is 256). Read IOV_CHUNK at a time: a helper call per chunk, not per iov.
 */
#define RBD_MAX_IOV 1024
#define IOV_CHUNK 16

/*
 * Bytes of a vectored request: the sum of its iovs (QEMU's qiov->size).
 * Whole chunks in one read each, the rest one iov at a time (never a read
 * past the vector's end: the memory after it may be unmapped).
 */
static __always_inline __u64 iov_bytes(const struct iovec___user *iov, int iovcnt)
{
	struct iovec___user buf[IOV_CHUNK];
	__u64 bytes = 0, len;
	int c;

	for (c = 0; c < RBD_MAX_IOV / IOV_CHUNK; c++) {
		if (iovcnt - c * IOV_CHUNK < IOV_CHUNK)
			break;
		if (bpf_probe_read_user(buf, sizeof(buf), &iov[c * IOV_CHUNK]))
			return bytes;
		for (int i = 0; i < IOV_CHUNK; i++)
			bytes += buf[i].iov_len;
	}
	for (int i = 0; i < IOV_CHUNK - 1; i++) {
		if (c * IOV_CHUNK + i >= iovcnt ||
		    bpf_probe_read_user(&len, sizeof(len), &iov[c * IOV_CHUNK + i].iov_len))
			break;
		bytes += len;
	}
	return bytes;
}

SEC("uprobe")
int BPF_KPROBE(rbd_readv, void *image, const struct iovec___user *iov, int iovcnt, __u64 off,
	       void *c)
{
	return submit(NETDISK_RBD, (__u64)image, (__u64)c, DISK_OP_READ, iov_bytes(iov, iovcnt), 0);
}

SEC("uprobe")
int BPF_KPROBE(rbd_writev, void *image, const struct iovec___user *iov, int iovcnt, __u64 off,
	       void *c)
{
	return submit(NETDISK_RBD, (__u64)image, (__u64)c, DISK_OP_WRITE, iov_bytes(iov, iovcnt), 0);
}

SEC("uprobe")
int BPF_KPROBE(rbd_discard, void *image, __u64 off, __u64 len, void *c)
{
	return submit(NETDISK_RBD, (__u64)image, (__u64)c, DISK_OP_DISCARD, len, 0);
}

/* Write zeroes is a discard, as fallocate's zero range is for local images. */
SEC("uprobe")
int BPF_KPROBE(rbd_write_zeroes, void *image, __u64 off, __u64 len, void *c)
{
	return submit(NETDISK_RBD, (__u64)image, (__u64)c, DISK_OP_DISCARD, len, 0);
}

SEC("uprobe")
int BPF_KPROBE(rbd_flush, void *image, void *c)
{
	return submit(NETDISK_RBD, (__u64)image, (__u64)c, DISK_OP_FLUSH, 0, 0);
}

/*
 * Whether the completion's result is an error (negative), read where the
 * attach cookie says rbd_aio_get_return_value(c) reads it (vmprobe/netdisk.h);
 * with no cookie, or memory that cannot be read, it is not told.
 */
static __always_inline bool rbd_failed(__u64 c, __u64 cookie)
{
	__u32 derefs = (cookie >> NETDISK_RVAL_DEREFS_SHIFT) & 3;
	__u64 p = c;

	if (!(cookie & NETDISK_RVAL_KNOWN))
		return false;
	for (__u32 i = 0; i < NETDISK_RVAL_LOADS; i++) {
		__u64 at = p + ((cookie >> (16 * i)) & 0xffff);

		if (i == derefs) {
			__s64 wide;
			__s32 narrow;

			if (cookie & NETDISK_RVAL_WIDE)
				return !bpf_probe_read_user(&wide, sizeof(wide), (void *)at) &&
				       wide < 0;
			return !bpf_probe_read_user(&narrow, sizeof(narrow), (void *)at) &&
			       narrow < 0;
		}
		if (bpf_probe_read_user(&p, sizeof(p), (void *)at))
			return false;
	}
	return false;
}

/* QEMU's completion callback, in librbd's thread: the request is done, its result set. */
SEC("uprobe")
int BPF_KPROBE(rbd_done, void *c)
{
	return complete((__u64)c, rbd_failed((__u64)c, bpf_get_attach_cookie(ctx)));
}

/* A session's handle is freed: it may be the next session's. */
static __always_inline struct netdisk_session session_forget(__u32 kind, __u64 handle)
{
	struct netdisk_session s = { .tgid = bpf_get_current_pid_tgid() >> 32,
				     .kind = kind, .handle = handle };

	bpf_map_delete_elem(&netdisk_sessions, &s);
	bpf_map_delete_elem(&netdisk_staged, &s);
	bpf_map_delete_elem(&netdisk_untold, &s);
	return s;
}

/* The image is closed. */
SEC("uprobe")
int BPF_KPROBE(rbd_close, void *image)
{
	session_forget(NETDISK_RBD, (__u64)image);
	return 0;
}

/* ---- libiscsi ---- */

static __always_inline __u32 be32(const __u8 *b)
{
	return (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3];
}

/* Blocks of a WRITE SAME: CDB bytes 7-8 (10) or 10-13 (16). */
static __always_inline __u32 write_same_blocks(const __u8 *cdb)
{
	return cdb[0] == SCSI_WRITE_SAME10 ? (__u32)cdb[7] << 8 | cdb[8] : be32(&cdb[10]);
}

/* Blocks of a READ or WRITE: CDB bytes 7-8 (10), 6-9 (12) or 10-13 (16). */
static __always_inline __u32 rw_blocks(const __u8 *cdb)
{
	switch (cdb[0]) {
	case SCSI_READ10:
	case SCSI_WRITE10:
		return (__u32)cdb[7] << 8 | cdb[8];
	case SCSI_READ12:
	case SCSI_WRITE12:
		return be32(&cdb[6]);
	}
	return be32(&cdb[10]);
}

/* Bytes an UNMAP names: its first block descriptor's count, in blocks of the session. */
static __always_inline __u64 unmap_bytes(const void *task, struct netdisk_session *s)
{
	__u8 desc[4];
	void *iov, *buf;
	__u32 *bs = bpf_map_lookup_elem(&netdisk_blksize, s);

	if (bpf_probe_read_user(&iov, sizeof(iov), task + SCSI_TASK_IOV_OUT) || !iov ||
	    bpf_probe_read_user(&buf, sizeof(buf), iov) || !buf ||
	    bpf_probe_read_user(desc, sizeof(desc), buf + 16))
		return 0;
	return (__u64)be32(desc) * (bs ? *bs : 512);
}

/* The operation and bytes of a SCSI command; -1 for commands that are not the guest's IO. */
static __always_inline int scsi_op(const __u8 *cdb, __u32 xferlen, const void *task,
				   struct netdisk_session *s, __u64 *bytes)
{
	__u32 blocks;

	switch (cdb[0]) {
	case SCSI_READ10:
	case SCSI_READ12:
	case SCSI_READ16:
	case SCSI_WRITE10:
	case SCSI_WRITE12:
	case SCSI_WRITE16:
		*bytes = xferlen;
		blocks = rw_blocks(cdb);
		if (blocks && xferlen) {
			__u32 bs = xferlen / blocks;

			bpf_map_update_elem(&netdisk_blksize, s, &bs, BPF_ANY);
		}
		return cdb[0] == SCSI_READ10 || cdb[0] == SCSI_READ12 || cdb[0] == SCSI_READ16
			       ? DISK_OP_READ : DISK_OP_WRITE;
	case SCSI_SYNC_CACHE10:
	case SCSI_SYNC_CACHE16:
		*bytes = 0;
		return DISK_OP_FLUSH;
	case SCSI_UNMAP:
		*bytes = unmap_bytes(task, s);
		return DISK_OP_DISCARD;
	case SCSI_WRITE_SAME10:
	case SCSI_WRITE_SAME16:
		/* QEMU's write-zeroes: one block of data for that many blocks. */
		*bytes = (__u64)write_same_blocks(cdb) * xferlen;
		return DISK_OP_DISCARD;
	}
	return -1;
}

SEC("uprobe")
int BPF_KPROBE(iscsi_submit, void *iscsi, int lun, void *task)
{
	struct netdisk_session s = {};
	__u8 cdb[16];
	__u32 xferlen;
	__u64 bytes = 0;
	int op;

	if (bpf_probe_read_user(cdb, sizeof(cdb), task + SCSI_TASK_CDB) ||
	    bpf_probe_read_user(&xferlen, sizeof(xferlen), task + SCSI_TASK_EXPXFERLEN))
		return 0;
	s.tgid = bpf_get_current_pid_tgid() >> 32;
	s.kind = NETDISK_ISCSI;
	s.handle = (__u64)iscsi;
	/* TEST UNIT READY, INQUIRY, READ CAPACITY...: QEMU's own, not the guest's IO. */
	op = scsi_op(cdb, xferlen, task, &s, &bytes);
	if (op < 0)
		return 0;
	/* A task sent again after a reconnect keeps its first start. */
	{
		struct netdisk_req req = { .tgid = s.tgid, .ptr = (__u64)task };

		if (bpf_map_lookup_elem(&netdisk_inflight, &req))
			return 0;
	}
	return submit(NETDISK_ISCSI, (__u64)iscsi, (__u64)task, op, bytes, lun);
}

/* QEMU frees the task once its callback ran: its SCSI status is the target's answer. */
SEC("uprobe")
int BPF_KPROBE(iscsi_done, void *task)
{
	__s32 status = 0;

	bpf_probe_read_user(&status, sizeof(status), task + SCSI_TASK_STATUS);
	return complete((__u64)task, status != 0);
}

SEC("uprobe")
int BPF_KPROBE(iscsi_destroy, void *iscsi)
{
	struct netdisk_session s = session_forget(NETDISK_ISCSI, (__u64)iscsi);

	bpf_map_delete_elem(&netdisk_blksize, &s);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Network disks through QEMU's client libraries, librbd (Ceph RBD) and
 * libiscsi: what bpf/netdisk.bpf.c and user/probes/netdisk/ agree on.
 * A drive is a session of the library in one QEMU process: an rbd image
 * handle, or an iSCSI context (one per drive).
 */
#ifndef VMPROBE_NETDISK_H
#define VMPROBE_NETDISK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "vmprobe/disk.h"

enum netdisk_kind {
	NETDISK_RBD = 0,   /* handle: rbd_image_t (librbd's ImageCtx) */
	NETDISK_ISCSI = 1, /* handle: struct iscsi_context * */
	NETDISK_KIND_MAX,
};

/* A library session of a VM: which drive it is, user space says. */
struct netdisk_session {
	__u32 tgid;
	__u32 kind;
	__u64 handle;
};
_Static_assert(sizeof(struct netdisk_session) == 16, "netdisk_session layout");

/* A request in flight: by (tgid, rbd completion or iSCSI task). */
struct netdisk_req {
	__u32 tgid;
	__u32 pad;
	__u64 ptr;
};
_Static_assert(sizeof(struct netdisk_req) == 16, "netdisk_req layout");

struct netdisk_inflight {
	__u64 start_ns;
	__u64 bytes;
	struct netdisk_session sess;
	__u32 op;
	__u32 slot; /* SLOT_STAGED: the session has no drive yet */
};
_Static_assert(sizeof(struct netdisk_inflight) == 40, "netdisk_inflight layout");

/* The first request of a session no drive has yet: user space finds its drive. */
struct netdisk_event {
	struct netdisk_session sess;
	__u32 lun; /* iSCSI: the request's LUN */
	__u32 pad;
};
_Static_assert(sizeof(struct netdisk_event) == 24, "netdisk_event layout");

/*
 * Which drive of which VM a slot counts: kept by user space alone (the
 * programs never touch it) so that the next serve, adopting the pinned
 * maps and links, gives each drive its slot back. The label is the
 * drive's `drive` label, NUL-terminated.
 */
#define NETDISK_LABEL_MAX 128
struct netdisk_slot_owner {
	__u32 tgid;
	__u32 pad;
	__u64 start_time; /* the process's, from /proc/PID/stat: a reused pid is not the VM */
	char label[NETDISK_LABEL_MAX];
};
_Static_assert(sizeof(struct netdisk_slot_owner) == 144, "netdisk_slot_owner layout");

/*
 * rbd_done's attach cookie: how rbd_aio_get_return_value(c) reaches the
 * request's result (user/probes/netdisk/rval.c). From p = c, DEREFS times
 * p = *(u64 *)(p + offset i), then the result at p + the next offset: 8
 * bytes, or 4 sign-extended. Offsets are 16 bits each, the first lowest.
 * 0: not learned, a failed rbd request cannot be told from a done one.
 */
#define NETDISK_RVAL_KNOWN (1ULL << 63)
#define NETDISK_RVAL_WIDE (1ULL << 62)
#define NETDISK_RVAL_DEREFS_SHIFT 48
#define NETDISK_RVAL_LOADS 3 /* offsets in the cookie: up to two pointers, then the result */

/* Operations index arrays masked by DISK_OP_MAX - 1 in BPF: a power of two. */
_Static_assert(DISK_OP_MAX == 4, "DISK_OP_MAX is a power of two");

#define NETDISK_DEFAULT_MAX_DRIVES 256
#define NETDISK_SESSIONS_MAX 1024
#define NETDISK_INFLIGHT_MAX 16384

/* Health counters, per CPU. */
enum netdisk_err {
	NETDISK_ERR_INFLIGHT_FULL = 0, /* a request not tracked (table full): not measured */
	NETDISK_ERR_EVENT_LOST,        /* a session's first request not told: the ring was full */
	NETDISK_ERR_FORGOTTEN,         /* user space's: in flight a day, forgotten, not measured */
	NETDISK_ERR_MAX,
};

/* SCSI opcodes QEMU's iSCSI driver sends for the guest's requests. */
#define SCSI_READ10 0x28
#define SCSI_READ12 0xa8
#define SCSI_READ16 0x88
#define SCSI_WRITE10 0x2a
#define SCSI_WRITE12 0xaa
#define SCSI_WRITE16 0x8a
#define SCSI_SYNC_CACHE10 0x35
#define SCSI_SYNC_CACHE16 0x91
#define SCSI_UNMAP 0x42
#define SCSI_WRITE_SAME10 0x41
#define SCSI_WRITE_SAME16 0x93

/*
 * libiscsi's struct scsi_task (iscsi/scsi-lowlevel.h), the fields read:
 * stable since libiscsi 1.x on LP64.
 */
#define SCSI_TASK_STATUS 0
#define SCSI_TASK_EXPXFERLEN 12
#define SCSI_TASK_CDB 16
#define SCSI_TASK_IOV_OUT 144 /* struct scsi_iovector iovector_out: iov first */

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The network-disk probe: uprobes on librbd and libiscsi in each QEMU
 * process (netdisk.c loads the programs, vm.c attaches them per VM and
 * claims the VM's rbd and iSCSI drives, session.c tells which drive a
 * library session is, pins.c adopts what an earlier serve pinned),
 * counted per drive like local drives.
 */
#ifndef VMPROBE_NETDISK_PROBE_H
#define VMPROBE_NETDISK_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/probe.h"
#include "core/storage.h"
#include "core/util.h"
#include "vmprobe/netdisk.h"

struct bpf_link;
struct bpf_program;
struct netdisk_bpf;
struct probe_pins;
struct ring_buffer;
struct discovery;
struct vm;
struct vm_disk;

/* A session whose first request came, waiting to be matched to a drive. */
struct netdisk_pending {
	struct netdisk_event ev;
	bool warned; /* no drive matched it: said once */
};

#define NETDISK_MAX_PENDING 256
/*
 * A request in flight this long is taken never to complete (a submit that
 * failed, released without completing; a task QEMU dropped): its entry is
 * forgotten and counted as not measured. QEMU sets no timeout of its own
 * by default (an outage keeps requests waiting): a day, not minutes.
 */
#define NETDISK_FORGET_NS (86400ULL * 1000000000ULL)
#define NETDISK_SWEEP_SECONDS 60
#define NETDISK_SWEEP_MIN_SECONDS 5 /* between sweeps a refused request asks for */
/* netdisk_event.lun of a session re-announced from the staging map: its LUN is not known. */
#define NETDISK_LUN_ANY 0xffffffffu

/* A drive slot an earlier serve left, until its drive claims it (pins.c). */
struct netdisk_adopt {
	__u32 slot;
	bool claimed;
	struct netdisk_slot_owner owner;
};

struct netdisk_probe {
	struct netdisk_bpf *skel;
	struct probe_pins *pins; /* serve's (core/pin.h), else NULL */
	struct drive_store store; /* its drives' counters: netdisk_stats and netdisk_born */
	struct ring_buffer *events;
	struct netdisk_pending pending[NETDISK_MAX_PENDING];
	int nr_pending;
	/* first requests not kept (pending full): announced again by a later request */
	__u64 events_dropped;
	/* NETDISK_ERR_EVENT_LOST seen: first requests the ring had no room for */
	__u64 events_lost;
	double last_sweep; /* now_seconds() of the last sweep of the in-flight table */
	__u64 full_seen;   /* NETDISK_ERR_INFLIGHT_FULL at the last sweep */
	/* While adopting an earlier serve's pins: its slots, and how many of its links were taken. */
	struct netdisk_adopt *adopt;
	size_t nr_adopt;
	unsigned links_adopted;
};

/* The library each kind of session is in, and the functions hooked there. */
struct netdisk_lib {
	const char *soname_prefix; /* as /proc/PID/maps names it: "librbd.so" */
	const char *const *paths;  /* where to look when QEMU has not loaded it yet */
	const char *backend;       /* the drives it serves: vm_drive.backend */
};
extern const struct netdisk_lib netdisk_libs[NETDISK_KIND_MAX];

#define NETDISK_MAX_SESSIONS 4

/* A drive as the probe counts it (in its vm_disk). */
struct netdisk_drive {
	int slot;
	bool errors; /* its failed requests are told apart (vmprobe_disk_errors_total) */
	struct netdisk_session sessions[NETDISK_MAX_SESSIONS];
	int nr_sessions;
	/* sessions matched since the last sync: their staged requests are added after a grace */
	struct netdisk_session merge[NETDISK_MAX_SESSIONS];
	int nr_merge;
	double merge_after;
};

#define NETDISK_MAX_LINKS 8

/* The probe's state of one VM: its uprobes, per library. */
struct netdisk_vm {
	struct bpf_link *links[NETDISK_KIND_MAX][NETDISK_MAX_LINKS];
	int nr_links[NETDISK_KIND_MAX];
	int attach_err[NETDISK_KIND_MAX]; /* of the last try, 0 when attached or not tried */
	bool unmatched[NETDISK_KIND_MAX]; /* a session no drive could be found for */
	bool slot_warned;                 /* running out of drive slots was logged */
	__u64 rval; /* librbd's: where a request's result is (rval.h), 0 if not learned */
};

/* netdisk.c: the programs and maps. */
/*
 * With serve's pins, its maps are pinned (top and hist read them), and an
 * earlier persistent serve's are adopted: pins.c gives them back to the VMs.
 */
int netdisk_probe_open(struct netdisk_probe *np, unsigned max_drives, struct probe_pins *pins);
/*
 * Sizes an opened skeleton's maps for max_drives drives: what
 * netdisk_probe_open() loads, and what the memory model
 * (tests/unit/test_memory.c) counts. 0 or -errno.
 */
int netdisk_maps_size(struct netdisk_bpf *skel, unsigned max_drives);
void netdisk_probe_close(struct netdisk_probe *np);
/* A session of a drive: counted into slot from now on; 0 or -errno. */
int netdisk_session_set(struct netdisk_probe *np, const struct netdisk_session *s, unsigned slot);
void netdisk_session_del(struct netdisk_probe *np, const struct netdisk_session *s);
/* Adds what the session did before it was matched to slot; 0 or -ENOENT. */
int netdisk_staged_merge(struct netdisk_probe *np, const struct netdisk_session *s, unsigned slot);
/* Queues a first request for matching (not twice, nor one of a matched session). */
void netdisk_pending_push(struct netdisk_probe *np, const struct netdisk_event *ev);
/* Whether the library still has the session: matched (in the map) or staged. */
bool netdisk_session_live(const struct netdisk_probe *np, const struct netdisk_session *s);
bool netdisk_staged_live(const struct netdisk_probe *np, const struct netdisk_session *s);
/*
 * Reads the ring of first requests of unknown sessions into np->pending
 * (under the discovery lock: syncs read it); the QEMU pids to sync in
 * pids, their number returned.
 */
int netdisk_events_consume(struct netdisk_probe *np, pid_t *pids, int max);
/* Queues every session the staging map holds, as its first request would (pending_push). */
void netdisk_staged_announce(struct netdisk_probe *np);
int netdisk_events_fd(const struct netdisk_probe *np);
__u64 netdisk_error_count(const struct netdisk_probe *np, unsigned err);
/*
 * Forgets in-flight entries: those of process tgid (it exited), or with
 * tgid 0 those of processes no longer in proc_root and those older than
 * NETDISK_FORGET_NS (counted: NETDISK_ERR_FORGOTTEN). The number forgotten.
 */
int netdisk_inflight_sweep(struct netdisk_probe *np, __u32 tgid, const char *proc_root);
void netdisk_forgotten_add(struct netdisk_probe *np, __u64 n);
/* The program for a hooked function of a library, by index; NULL past the last. */
struct bpf_program *netdisk_prog(const struct netdisk_probe *np, unsigned kind, int i,
				 const char **func, bool *optional);

/* pins.c: adopting an earlier serve's pins, and keeping ours for the next. */
/* Reads the slots an earlier serve left (pins adopting); 0 or -errno. */
int netdisk_adopt_open(struct netdisk_probe *np);
void netdisk_adopt_free(struct netdisk_probe *np);
/* The slot an earlier serve counted the VM's drive in, now claimed, or -ENOENT. */
int netdisk_slot_claim(struct netdisk_probe *np, const struct vm *vm, const char *label);
/* The sessions of the VM the BPF side counts into slot: how many put in out. */
int netdisk_slot_sessions(const struct netdisk_probe *np, const struct vm *vm, unsigned slot,
			  struct netdisk_session *out, int max);
/* Records (or forgets) which drive a slot counts, for the next serve. */
void netdisk_owner_set(struct netdisk_probe *np, unsigned slot, const struct vm *vm,
		       const char *label);
void netdisk_owner_del(struct netdisk_probe *np, unsigned slot);
/*
 * A hook of the VM's QEMU: the earlier serve's link pinned for it (our
 * program swapped in if the programs changed), else one attached now to
 * the library at `path` with `cookie` and pinned with persist. NULL with
 * errno set.
 */
struct bpf_link *netdisk_link_get(struct netdisk_probe *np, const struct vm *vm,
				  struct bpf_program *prog, const char *func, const char *path,
				  __u64 cookie, bool *adopted);
/* probe_ops.adopted: releases the slots and links no VM claimed. */
void netdisk_adopted(struct probe *p, struct discovery *d);

/* session.c: which drive of the VM a session is; its index in vm->disks, or -1. */
int netdisk_session_drive(const struct vm *vm, const struct netdisk_event *ev);

/* vm.c: probe_ops of the VM table. */
int netdisk_vm_add(struct probe *p, struct discovery *d, struct vm *vm);
bool netdisk_vm_pending(struct probe *p, const struct vm *vm);
void netdisk_vm_sync(struct probe *p, struct discovery *d, struct vm *vm,
		     const struct vm_snapshot *snap);
void netdisk_vm_del(struct probe *p, struct discovery *d, struct vm *vm);
const struct drive_store *netdisk_drive_store(struct probe *p, const struct vm_disk *disk,
					      unsigned *slot);
bool netdisk_drive_errors(const struct probe *p, const struct vm_disk *disk);

#endif

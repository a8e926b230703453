/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The vCPU probe: how long each VM's vCPU threads waited for a host CPU
 * (bpf/vcpu.bpf.c on the scheduler's tracepoints). probe.c loads it and
 * renders its families; vm.c finds each VM's vCPU threads and marks them;
 * pins.c keeps its links and slots across serve's restarts (persist).
 */
#ifndef VMPROBE_VCPU_PROBE_H
#define VMPROBE_VCPU_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/probe.h"
#include "core/util.h"
#include "vmprobe/vcpu.h"

struct vcpu_bpf;
struct probe_pins;

/* A slot an earlier serve left in use (pins.c): vcpu_probe.adopt[slot]. */
enum vcpu_adopt { VCPU_ADOPT_NONE, VCPU_ADOPT_LEFT, VCPU_ADOPT_CLAIMED };

struct vcpu_probe {
	struct vcpu_bpf *skel;
	unsigned max_vms;
	struct vcpu_stats *stats; /* the mmapped per-VM array */
	size_t stats_len;
	__u64 *born; /* the mmapped vcpu_born array: the slots' birth (slot_pool) */
	struct slot_pool slots;
	int threads_fd; /* the task storage map */
	struct probe_pins *pins; /* serve's (core/pin.h), else NULL */
	/* While adopting an earlier serve's pins: per slot, an enum vcpu_adopt; else NULL. */
	unsigned char *adopt;
	bool no_sched_info; /* the kernel keeps no run-queue waits (CONFIG_SCHED_INFO off) */
};

/* Why a VM's vCPUs are not measured: the `reason` of vmprobe_vcpu_info. */
enum vcpu_unmeasured {
	VCPU_MEASURED,
	VCPU_PENDING,    /* no vCPU thread found yet, for its first 10 s */
	VCPU_UNNAMED,    /* QEMU names no thread "CPU N/...": -name ...,debug-threads=on is missing */
	VCPU_NO_SLOT,    /* more VMs than max_vms */
	VCPU_NO_PIDFD,   /* the kernel gives no pidfd of a thread (PIDFD_THREAD: Linux 6.9) */
	VCPU_MARK_FAILED, /* the threads' task storage could not be set (the log says why) */
	VCPU_NO_SCHED_INFO, /* task_struct has no sched_info: a kernel without CONFIG_SCHED_INFO */
	VCPU_REASON_MAX
};
extern const char *const vcpu_reason_names[VCPU_REASON_MAX]; /* the label */
extern const char *const vcpu_reason_texts[VCPU_REASON_MAX]; /* the log, check */

/* The probe's state of one VM. */
struct vcpu_vm {
	int slot;           /* in vcpu_stats, -1 before its first vCPU thread */
	pid_t *tids;        /* the vCPU threads marked */
	size_t nr_tids, cap_tids;
	enum vcpu_unmeasured why;
	bool warned;        /* `why` was logged */
};

/* vm.c: probe_ops of the VM table. */
int vcpu_vm_add(struct probe *p, struct discovery *d, struct vm *vm);
bool vcpu_vm_pending(struct probe *p, const struct vm *vm);
void vcpu_vm_sync(struct probe *p, struct discovery *d, struct vm *vm,
		  const struct vm_snapshot *snap);
void vcpu_vm_del(struct probe *p, struct discovery *d, struct vm *vm);
/* The slot the thread's mark carries (an earlier serve's, while adopting), or -1. */
int vcpu_mark_slot(const struct vcpu_probe *vp, pid_t tid);

/*
 * pins.c. The program's link: an earlier serve's adopted (moved to
 * ours if its programs differ), else attached (pinned with persist); 0 or
 * -errno. Ended by vcpu_links_end (left attached when leaving with persist).
 */
int vcpu_links_attach(struct vcpu_probe *vp);
void vcpu_links_end(struct vcpu_probe *vp);
/* While adopting: the slots the earlier serve left in use (born), taken until claimed. */
int vcpu_adopt_open(struct vcpu_probe *vp);
/*
 * While adopting: the slot an earlier serve counted the VM in, found in
 * the marks its vCPU threads `tids` still carry; -ENOENT if none.
 */
int vcpu_slot_claim(struct vcpu_probe *vp, const pid_t *tids, int n);
/* After serve's first scan: the slots no VM claimed (VMs gone meanwhile) are freed. */
void vcpu_adopted(struct probe *p, struct discovery *d);

#endif

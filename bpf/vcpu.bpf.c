// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vCPU run-queue waits: from the moment a VM's vCPU thread becomes
 * runnable (woken, or preempted while still runnable) to the moment it
 * runs, added to its VM's histogram. Each is read, when the run it ended
 * ends, from the scheduler's own accounting of the thread (what
 * /proc/PID/task/TID/schedstat reports), so that no wait is missed: one
 * program, on sched_switch. The threads carry a task storage entry that
 * user space set; every other task on the host costs it one load of
 * task->bpf_storage (NULL) per context switch, no map lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "hist.bpf.h"
#include "maps.bpf.h"
#include "vmprobe/vcpu.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 max_vms = 1;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vcpu_thread);
} vcpu_threads SEC(".maps");

VMPROBE_MMAP_ARRAY(vcpu_stats, struct vcpu_stats, 1);
/* Each slot's birth, user space's alone, as disk.bpf.c's drive_born: adopted with the counters. */
VMPROBE_MMAP_ARRAY(vcpu_born, __u64, 1);

/*
 * NULL for every task user space did not mark. A task with no BPF task
 * storage at all (every task of the host but the marked ones, unless
 * another tool uses task storage) is told by one load, without the
 * helper's call and lock; flags 0: the helper never creates an entry.
 */
static __always_inline struct vcpu_thread *vcpu_of(struct task_struct *t)
{
	if (!t->bpf_storage)
		return NULL;
	return bpf_task_storage_get(&vcpu_threads, t, 0, 0);
}

/* The counters of the thread's VM, NULL past max_vms. */
static __always_inline struct vcpu_stats *stats_of(const struct vcpu_thread *v)
{
	__u32 slot = v->slot;

	return slot < max_vms ? bpf_map_lookup_elem(&vcpu_stats, &slot) : NULL;
}

/*
 * The waits that ended since the thread's last switch-out, as the kernel
 * counted them (kernel/sched/stats.h, CONFIG_SCHED_INFO): at each
 * switch-in that ends a wait, sched_info_arrive adds it to the thread's
 * run_delay and counts one in pcount (a part spent queued on another CPU
 * before a migration is added to run_delay too). Read at the switch-out,
 * these are final for the run that ends: one wait between two
 * switch-outs (the thread ran once). The first switch-out after user
 * space marked the thread only sets the baseline.
 */
static __always_inline void waits_ended(struct vcpu_thread *v, struct task_struct *t,
					struct vcpu_stats *st)
{
	__u64 count, delay, n, wait;

	if (!bpf_core_field_exists(t->sched_info))
		return;
	count = BPF_CORE_READ(t, sched_info.pcount);
	delay = BPF_CORE_READ(t, sched_info.run_delay);
	n = count - v->pcount;
	wait = delay - v->run_delay_ns;
	v->pcount = count;
	v->run_delay_ns = delay;
	if (!v->synced) {
		v->synced = 1;
		return;
	}
	if (!n || !st)
		return;
	__sync_fetch_and_add(&st->wait_sum_ns, wait);
	/* n > 1 only if switch-outs went unseen: each wait its share. */
	__sync_fetch_and_add(&st->wait_slots[time_slot(wait / n, VCPU_WAIT_SLOTS)], n);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(vcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct vcpu_thread *v = vcpu_of(prev);
	struct vcpu_stats *st;

	if (!v)
		return 0;
	st = stats_of(v);
	/* Preempted, or its sleep undone (a signal came): it stays runnable. */
	if (st && (preempt || prev_state == 0))
		__sync_fetch_and_add(&st->preempted, 1);
	waits_ended(v, prev, st);
	return 0;
}

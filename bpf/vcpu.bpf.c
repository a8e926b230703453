// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vCPU run-queue waits: from the moment a VM's vCPU thread becomes
 * runnable (woken, or preempted while still runnable) to the moment it
 * runs, added to its VM's histogram, each read at the switch that ends it
 * from the scheduler's own accounting (what /proc/PID/task/TID/schedstat
 * reports), so that no wait is missed: one program, on sched_switch. The
 * threads carry a task storage entry that user space set; every other
 * task on the host costs it two loads of task->bpf_storage (NULL) per
 * context switch, no map lookup.
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

/* This CPU's run queue: its clock is the one the scheduler times waits with. */
extern struct rq runqueues __ksym;

/*
 * The wait `next` ends now, as the kernel times it (kernel/sched/stats.h,
 * CONFIG_SCHED_INFO): sched_info_arrive, which runs right after this
 * tracepoint under the same run-queue lock and clock, adds
 * rq clock - last_queued to the thread's run_delay and counts one in
 * pcount, if last_queued is set; false if it is not (no wait ends).
 * Since the thread's last switch-in, run_delay may also have grown by a
 * part of this wait spent queued on another CPU (sched_info_dequeue, as
 * the thread migrated): added too.
 */
static __always_inline bool wait_ending(struct vcpu_thread *v, struct task_struct *next,
					__u64 *wait)
{
	struct rq *rq = bpf_this_cpu_ptr(&runqueues);
	__u64 queued, delay, here;

	if (!bpf_core_field_exists(next->sched_info))
		return false;
	queued = BPF_CORE_READ(next, sched_info.last_queued);
	if (!queued)
		return false;
	delay = BPF_CORE_READ(next, sched_info.run_delay);
	here = BPF_CORE_READ(rq, clock) - queued;
	/* The first switch-in since user space marked the thread: this run queue's part only. */
	*wait = v->synced && delay >= v->run_delay_ns ? here + delay - v->run_delay_ns : here;
	v->run_delay_ns = delay + here;
	v->synced = 1;
	return true;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(vcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct vcpu_thread *v;
	struct vcpu_stats *st;
	__u64 wait;

	v = vcpu_of(prev);
	/* Preempted, or its sleep undone (a signal came): it stays runnable. */
	if (v && (preempt || prev_state == 0)) {
		st = stats_of(v);
		if (st)
			__sync_fetch_and_add(&st->preempted, 1);
	}
	v = vcpu_of(next);
	if (!v)
		return 0;
	st = stats_of(v);
	if (!wait_ending(v, next, &wait) || !st)
		return 0;
	__sync_fetch_and_add(&st->wait_sum_ns, wait);
	__sync_fetch_and_add(&st->wait_slots[time_slot(wait, VCPU_WAIT_SLOTS)], 1);
	return 0;
}

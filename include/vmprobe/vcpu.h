/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The vCPU probe's maps, shared by bpf/vcpu.bpf.c and user/probes/vcpu/:
 * how long each VM's vCPU threads were runnable on the host but not
 * running (waiting for a host CPU: the host-side "steal").
 */
#ifndef VMPROBE_VCPU_H
#define VMPROBE_VCPU_H

#include "vmprobe/hist.h"

/* Slots of the wait histogram, in TIME_SLOT_UNITS: up to 2^(37-30) = 128 s. */
#define VCPU_WAIT_SLOTS 38

/* One VM's waits: vcpu_stats[slot], an mmapped array added to atomically. */
struct vcpu_stats {
	__u64 wait_sum_ns;   /* sum of the waits */
	__u64 preempted;     /* waits that began with the vCPU thread preempted */
	__u64 wait_slots[VCPU_WAIT_SLOTS];
};
_Static_assert(sizeof(struct vcpu_stats) == 8 * (2 + VCPU_WAIT_SLOTS), "vcpu_stats layout");

/*
 * A vCPU thread's entry in the task storage map vcpu_threads (user space
 * sets it through a pidfd of the thread, zero but the slot): its VM's
 * slot, and the kernel's pcount and run_delay of the thread as of its
 * last switch-out the probe saw (synced: one was seen).
 */
struct vcpu_thread {
	__u32 slot;
	__u32 synced;       /* pcount and run_delay_ns read once (BPF's) */
	__u64 pcount;       /* the thread's sched_info at its last switch-out */
	__u64 run_delay_ns;
};
_Static_assert(sizeof(struct vcpu_thread) == 24, "vcpu_thread layout");

#endif

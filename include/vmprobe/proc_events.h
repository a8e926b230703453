/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Process events for discovery: what bpf/proc_events.bpf.c and user/core/proc_events.c agree on. */
#ifndef VMPROBE_PROC_EVENTS_H
#define VMPROBE_PROC_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum proc_event_kind {
	PROC_EV_EXEC = 1, /* a QEMU process started, or a watched one runs another program */
	PROC_EV_EXIT,     /* the last thread of a watched process exited */
};

/*
 * Processes whose exit wakes user space at once (VMs): 4096 take 320 KiB
 * (a preallocated hash); the exits of more are found by rescans.
 */
#define PROC_MAX_WATCHED 4096

/* One event in the ring buffer. */
struct vmprobe_proc_event {
	__u64 ns;   /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 tgid; /* in the initial pid namespace, as the host's /proc names it */
	__u32 kind; /* enum proc_event_kind */
};
_Static_assert(sizeof(struct vmprobe_proc_event) == 16, "vmprobe_proc_event layout");

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Discovery driven by process events: a QEMU process is looked at a few
 * times soon after it execs, while QEMU opens its drives and taps, and
 * dropped when it exits (bpf/proc_events.bpf.c).
 * Without the hooks, discovery finds everything by its rescans alone.
 */
#ifndef VMPROBE_CORE_PROC_EVENTS_H
#define VMPROBE_CORE_PROC_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct discovery;
struct proc_events_bpf;
struct ring_buffer;

/* A process that execed as QEMU, looked at at fixed delays after its exec. */
struct proc_rescan {
	pid_t pid;
	double exec_at; /* now_seconds() clock */
	unsigned step;  /* the next delay */
};

struct proc_events {
	struct proc_events_bpf *skel;
	struct ring_buffer *events;
	struct discovery *d;
	struct proc_rescan *rescans;
	size_t nr_rescans, cap_rescans;
	unsigned table_gen; /* of the VM table last handed to the kernel's watch list */
	bool watching, full_warned, lost_warned;
};

/*
 * Loads and attaches the hooks for discovery d (NULL: only to see that
 * they work, as check does); 0, or -errno after a warning: then discovery
 * finds VMs by its rescans alone.
 */
int proc_events_open(struct proc_events *pe, struct discovery *d);
void proc_events_close(struct proc_events *pe);
/* Readable when events wait. */
int proc_events_fd(const struct proc_events *pe);
/* Reads what waits: an exec plans the looks at the process, an exit drops the VM. */
void proc_events_read(struct proc_events *pe);
/* Runs the rescans due now; milliseconds until the next one, -1 if none is planned. */
int proc_events_rescan(struct proc_events *pe);
/* Hands the VM table to the kernel's watch list (whose exits wake vmprobe), if it changed. */
void proc_events_watch(struct proc_events *pe);

#endif

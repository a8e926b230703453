// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Discovery driven by process events: loads bpf/proc_events.bpf.c, reads
 * its exec and exit events into the VM table, plans the rescans of a new
 * QEMU process, and keeps the kernel's list of watched VMs.
 */
#include "core/proc_events.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "core/bpfmap.h"
#include "core/caps.h"
#include "core/discovery.h"
#include "core/util.h"
#include "proc_events.skel.h"
#include "vmprobe/proc_events.h"

/*
 * After its exec, QEMU opens its drives and taps within tens to hundreds
 * of ms (60-190 ms measured here under TCG): it is looked at this long
 * after the exec, at most 50 ms apart over the first 300 ms. A look is a
 * few reads of its /proc entry. Not at once: the dynamic loader runs
 * first (3 ms for QEMU here), and the disk probe would count its reads of
 * libraries for a drive whose image later opens under the same fd number.
 * Later changes are found by the rescans, link events and the disk probe.
 */
static const unsigned rescan_ms[] = { 10,  20,  35,  50,  75,  100, 125, 150,  200,
				      250, 300, 400, 500, 750, 1000, 1500, 2000 };

static void rescan_cancel(struct proc_events *pe, pid_t pid)
{
	for (size_t i = 0; i < pe->nr_rescans; i++)
		if (pe->rescans[i].pid == pid)
			pe->rescans[i--] = pe->rescans[--pe->nr_rescans];
}

static void rescan_plan(struct proc_events *pe, pid_t pid, double exec_at)
{
	rescan_cancel(pe, pid);
	if (array_reserve((void **)&pe->rescans, pe->nr_rescans, &pe->cap_rescans,
			  sizeof(*pe->rescans)))
		return; /* the rescans find it later */
	pe->rescans[pe->nr_rescans++] = (struct proc_rescan){ .pid = pid, .exec_at = exec_at };
}

static int event_seen(void *ctx, void *data, size_t size)
{
	const struct vmprobe_proc_event *e = data;
	struct proc_events *pe = ctx;

	if (size < sizeof(*e))
		return 0;
	/* Either way the VM known under that pid, if any, is no more. */
	discovery_forget(pe->d, (pid_t)e->tgid, e->ns);
	if (e->kind == PROC_EV_EXIT) {
		pe->d->exit_events++;
		rescan_cancel(pe, (pid_t)e->tgid);
		return 0;
	}
	pe->d->exec_events++;
	rescan_plan(pe, (pid_t)e->tgid, e->ns / 1e9);
	return 0;
}

int proc_events_open(struct proc_events *pe, struct discovery *d)
{
	const char *step = "open";
	int err;

	memset(pe, 0, sizeof(*pe));
	pe->d = d;
	pe->skel = proc_events_bpf__open();
	err = pe->skel ? 0 : -errno;
	if (!err) {
		step = "load";
		err = proc_events_bpf__load(pe->skel);
	}
	if (!err) {
		step = "attach";
		err = proc_events_bpf__attach(pe->skel);
	}
	if (!err) {
		step = "ring buffer";
		pe->events = ring_buffer__new(bpf_map__fd(pe->skel->maps.proc_events), event_seen,
					      pe, NULL);
		err = pe->events ? 0 : -errno;
	}
	if (err) {
		char hint[CAPS_HINT_MAX];

		/* The load and the attach (of its tp_btf programs) take the same capabilities. */
		log_warn("no process exec/exit events (%s of the sched_process_exec/exit hooks: "
			 "%s): VMs are found by rescans of /proc only%s", step, strerror(-err),
			 pe->skel ? caps_hint(hint, sizeof(hint), -err, caps_to_load(pe->skel->obj),
					      true) : "");
		proc_events_close(pe);
		return err;
	}
	if (d) /* vmprobe check opens them with no table */
		d->events_map_bytes = bpf_object_memlock(pe->skel->obj, NULL);
	return 0;
}

void proc_events_close(struct proc_events *pe)
{
	ring_buffer__free(pe->events);
	proc_events_bpf__destroy(pe->skel);
	free(pe->rescans);
	memset(pe, 0, sizeof(*pe));
}

int proc_events_fd(const struct proc_events *pe)
{
	return ring_buffer__epoll_fd(pe->events);
}

void proc_events_read(struct proc_events *pe)
{
	ring_buffer__consume(pe->events);
	if (pe->skel->bss->lost && !pe->lost_warned) {
		log_warn("process events lost (the ring buffer was full): the VMs they were "
			 "about are found or dropped by the next rescan");
		pe->lost_warned = true;
	}
}

int proc_events_rescan(struct proc_events *pe)
{
	double now = now_seconds(), next = INFINITY;
	size_t i = 0;

	while (i < pe->nr_rescans) {
		struct proc_rescan *r = &pe->rescans[i];
		double due = r->exec_at + rescan_ms[r->step] / 1e3;

		if (due <= now) {
			if (!discovery_scan_pid(pe->d, r->pid) || ++r->step == ARRAY_SIZE(rescan_ms)) {
				*r = pe->rescans[--pe->nr_rescans];
				continue;
			}
			due = r->exec_at + rescan_ms[r->step] / 1e3;
		}
		if (due < next)
			next = due;
		i++;
	}
	return isinf(next) ? -1 : next <= now ? 0 : (int)ceil((next - now) * 1e3);
}

void proc_events_watch(struct proc_events *pe)
{
	int fd = bpf_map__fd(pe->skel->maps.watched);
	struct discovery *d = pe->d;
	__u8 one = 1;

	if (pe->watching && pe->table_gen == d->table_gen)
		return;
	pthread_mutex_lock(&d->lock);
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		__u32 tgid = (__u32)vm->pid;

		if (bpf_map_update_elem(fd, &tgid, &one, BPF_ANY) && !pe->full_warned) {
			log_warn("cannot watch VM %s (pid %d) for its exit (%s): it is dropped at "
				 "the next rescan", vm->name, (int)vm->pid, strerror(errno));
			pe->full_warned = true;
		}
	}
	pe->table_gen = d->table_gen;
	pe->watching = true;
	pthread_mutex_unlock(&d->lock);
}

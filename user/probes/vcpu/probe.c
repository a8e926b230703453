// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The vCPU probe's entry in the VM table's seam (core/probe.h): loading
 * bpf/vcpu.bpf.c, and its families per VM.
 */
#include "probes/vcpu/vcpu_probe.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/bpfmap.h"
#include "core/caps.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/pin.h"
#include "vcpu.skel.h"

static bool vcpu_wanted(const struct config *cfg, enum probe_mode mode)
{
	return mode == PROBE_SERVE && cfg->vcpu_enabled;
}

/* Whether the kernel keeps its tasks' run-queue waits (struct sched_info), said once if not. */
static bool sched_info_kept(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool kept = btf_has_member(vmlinux, "task_struct", "sched_info");

	btf__free(vmlinux);
	if (!kept)
		log_warn("vCPU waits are not measured: this kernel keeps no run-queue waits of its "
			 "tasks (task_struct has no sched_info: built without CONFIG_SCHED_INFO)");
	return kept;
}

static int vcpu_load(struct vcpu_probe *vp, unsigned max_vms, struct probe_pins *pins)
{
	struct vcpu_bpf *skel = vcpu_bpf__open();
	int err;

	if (!skel)
		return -errno;
	vp->skel = skel;
	vp->pins = pins;
	vp->max_vms = max_vms;
	vp->no_sched_info = !sched_info_kept();
	skel->rodata->max_vms = max_vms;
	err = bpf_map__set_max_entries(skel->maps.vcpu_stats, max_vms) ?:
	      bpf_map__set_max_entries(skel->maps.vcpu_born, max_vms);
	/* The threads' marks are pinned with the counters: both are adopted together. */
	if (!err)
		pins_prepare(pins, "vcpu", skel->obj, vcpu_bpf__elf_bytes);
	if (!err) {
		caps_load_note(skel->obj);
		err = vcpu_bpf__load(skel);
	}
	if (err)
		return err;
	pins_commit(pins);
	vp->threads_fd = bpf_map__fd(skel->maps.vcpu_threads);
	vp->stats_len = (size_t)max_vms * sizeof(struct vcpu_stats);
	err = bpf_array_mmap(bpf_map__fd(skel->maps.vcpu_stats), vp->stats_len, &vp->stats) ?:
	      bpf_array_mmap(bpf_map__fd(skel->maps.vcpu_born), max_vms * sizeof(*vp->born),
			     &vp->born);
	if (!err)
		err = slot_pool_init(&vp->slots, max_vms, vp->born);
	if (!err)
		err = vcpu_adopt_open(vp);
	if (!err)
		err = vcpu_links_attach(vp);
	if (!err)
		log_info("vCPU waits: the sched_switch tracepoint, for vCPU threads");
	return err;
}

static void vcpu_unload(struct vcpu_probe *vp)
{
	vcpu_links_end(vp);
	if (vp->stats)
		munmap(vp->stats, vp->stats_len);
	if (vp->born)
		munmap(vp->born, vp->max_vms * sizeof(*vp->born));
	slot_pool_fini(&vp->slots);
	free(vp->adopt);
	vcpu_bpf__destroy(vp->skel);
	memset(vp, 0, sizeof(*vp));
}

static int vcpu_open(struct probe *p, const struct config *cfg, enum probe_mode mode)
{
	int err = vcpu_load(p->priv, cfg->max_vms, p->pins);

	if (err)
		vcpu_unload(p->priv);
	return err;
}

static void vcpu_close(struct probe *p)
{
	vcpu_unload(p->priv);
}

enum { F_WAIT, F_PREEMPTED, F_THREADS, F_INFO, F_MAX };

static const struct expo_family fams[F_MAX] = {
	[F_WAIT] = { "vmprobe_vcpu_wait_seconds", EXPO_HISTOGRAM, "seconds", "name,namespace",
		     "Time the VM's vCPU threads waited for a host CPU, each wait from the moment a "
		     "vCPU thread was runnable (woken, or switched out still runnable) until it "
		     "ran: the host's share of a slow guest (steal)." },
	[F_PREEMPTED] = { "vmprobe_vcpu_preemptions_total", EXPO_COUNTER, "", "name,namespace",
			  "Times a vCPU thread of the VM was switched out while still runnable "
			  "(preempted by another task, or yielding): the waits host contention "
			  "starts." },
	[F_THREADS] = { "vmprobe_vcpu_threads", EXPO_GAUGE, "", "name,namespace",
			"vCPU threads of the VM being measured." },
	[F_INFO] = { "vmprobe_vcpu_info", EXPO_GAUGE, "", "name,namespace,measured,reason",
		     "Whether the VM's vCPU threads are measured, always 1; reason, when they are "
		     "not (all): pending (none found yet, the VM's first 10 s), threads_unnamed "
		     "(QEMU without -name ...,debug-threads=on), no_slot (max_vms), "
		     "no_thread_pidfd (Linux before 6.9), mark_failed (the log says why), "
		     "no_sched_info (a kernel without CONFIG_SCHED_INFO)." },
};

static const struct expo_family *vcpu_families(size_t *nr)
{
	*nr = F_MAX;
	return fams;
}

/* The VM's measured threads, 0 when none is (no series then). */
static size_t vm_threads(const struct probe *p, const struct vm *vm)
{
	const struct vcpu_vm *vv = vm->priv[p->id];

	return vv && vv->slot >= 0 ? vv->nr_tids : 0;
}

/* The VM's labels, its slot's _created set for the sample written next. */
static const char *vm_series(const struct probe *p, const struct vm *vm, struct strbuf *lb,
			     struct expo *e)
{
	const struct vcpu_probe *vp = p->priv;

	expo_created(e, slot_pool_born(&vp->slots, ((const struct vcpu_vm *)vm->priv[p->id])->slot));
	vm_labels(lb, vm, NULL, 0);
	return lb->buf;
}

/* Each VM's counters, copied once per scrape (in the table's order); NULL if out of memory. */
static struct vcpu_stats *stats_collect(struct probe *p, struct discovery *d)
{
	struct vcpu_probe *vp = p->priv;
	struct vcpu_stats *out;
	size_t n = 0, i = 0;

	for (struct vm *vm = d->vms; vm; vm = vm->next)
		n++;
	out = calloc(n ? n : 1, sizeof(*out));
	for (struct vm *vm = d->vms; out && vm; vm = vm->next, i++)
		if (vm_threads(p, vm))
			out[i] = vp->stats[((const struct vcpu_vm *)vm->priv[p->id])->slot];
	return out;
}

static void vcpu_render(struct probe *p, struct discovery *d, struct expo *e)
{
	struct vcpu_stats *st = stats_collect(p, d);
	struct strbuf lb;
	struct vm *vm;
	size_t i;

	if (!st)
		return;
	sb_init(&lb);
	expo_family(e, &fams[F_WAIT]);
	for (vm = d->vms, i = 0; vm; vm = vm->next, i++)
		if (vm_threads(p, vm))
			expo_histogram(e, fams[F_WAIT].name, vm_series(p, vm, &lb, e),
				       st[i].wait_slots, VCPU_WAIT_SLOTS, &e->time_range,
				       st[i].wait_sum_ns);
	expo_family(e, &fams[F_PREEMPTED]);
	for (vm = d->vms, i = 0; vm; vm = vm->next, i++)
		if (vm_threads(p, vm))
			expo_u64(e, fams[F_PREEMPTED].name, vm_series(p, vm, &lb, e),
				 st[i].preempted);
	expo_family(e, &fams[F_THREADS]);
	for (vm = d->vms; vm; vm = vm->next)
		if (vm_threads(p, vm)) {
			vm_labels(&lb, vm, NULL, 0);
			expo_u64(e, fams[F_THREADS].name, lb.buf, vm_threads(p, vm));
		}
	expo_family(e, &fams[F_INFO]);
	for (vm = d->vms; vm; vm = vm->next) {
		const struct vcpu_vm *vv = vm->priv[p->id];

		if (vv) {
			struct expo_label l[] = {
				{ "measured", vv->why == VCPU_MEASURED ? "true" : "false" },
				{ "reason", vcpu_reason_names[vv->why] },
			};

			vm_labels(&lb, vm, l, ARRAY_SIZE(l));
			expo_u64(e, fams[F_INFO].name, lb.buf, 1);
		}
	}
	sb_free(&lb);
	free(st);
}

/* serve's state file: whether the VM's vCPUs are measured, for `vmprobe check`. */
static void vcpu_state(struct probe *p, const struct vm *vm, struct json_object *out)
{
	const struct vcpu_vm *vv = vm->priv[p->id];
	json_object *all, *t;

	if (!vv)
		return;
	all = json_object_new_array();
	t = json_object_new_object();
	json_object_object_add(t, "vcpu", json_object_new_string("threads"));
	json_object_object_add(t, "threads", json_object_new_int((int)vm_threads(p, vm)));
	json_object_object_add(t, "slot", json_object_new_int(vv->slot));
	json_object_object_add(t, "measured", json_object_new_boolean(vv->why == VCPU_MEASURED));
	json_object_object_add(t, "reason", json_object_new_string(vcpu_reason_texts[vv->why]));
	json_object_array_add(all, t);
	json_object_object_add(out, "vcpus", all);
}

static struct bpf_object *vcpu_object(struct probe *p)
{
	return ((struct vcpu_probe *)p->priv)->skel->obj;
}

const struct probe_ops vcpu_probe_ops = {
	.name = "vcpu",
	.title = "vCPU",
	.wanted = vcpu_wanted,
	.priv_size = sizeof(struct vcpu_probe),
	.open = vcpu_open,
	.close = vcpu_close,
	.vm_add = vcpu_vm_add,
	.vm_pending = vcpu_vm_pending,
	.vm_sync = vcpu_vm_sync,
	.vm_del = vcpu_vm_del,
	.families = vcpu_families,
	.render = vcpu_render,
	.adopted = vcpu_adopted,
	.object = vcpu_object,
	.state = vcpu_state,
};

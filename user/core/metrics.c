// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * /metrics: vmprobe's build and VM families, each probe's families
 * (probe_ops.render), then vmprobe's and the probes' own health.
 */
#include "core/metrics.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/bpfmap.h"
#include "core/fault.h"
#include "core/pin.h"
#include "core/process.h"
#include "version.h"
#include "core/storage.h"

enum {
	F_BUILD, F_VM_INFO, F_SCANS, F_SCAN_SECONDS, F_PROC_EVENTS, F_ATTACH_ERRORS, F_FAULTS,
	F_MAP_MEMORY, F_PINS, F_SCRAPE_SECONDS,
	F_MAX
};

static const struct expo_family fams[F_MAX] = {
	[F_BUILD] = { "vmprobe_build_info", EXPO_GAUGE, "", "version,revision,compiler,libbpf",
		      "vmprobe's version, the commit it was built from, the C compiler that "
		      "built it and the libbpf it runs with; always 1." },
	[F_VM_INFO] = { "vmprobe_vm_info", EXPO_GAUGE, "", "name,namespace,uuid,pid",
			"A discovered QEMU virtual machine; always 1." },
	[F_SCANS] = { "vmprobe_discovery_scans_total", EXPO_COUNTER, "", "",
		      "Scans of /proc for QEMU processes." },
	[F_SCAN_SECONDS] = { "vmprobe_discovery_scan_duration_seconds", EXPO_GAUGE, "seconds", "",
			     "Duration of the last discovery scan." },
	[F_PROC_EVENTS] = { "vmprobe_discovery_process_events_total", EXPO_COUNTER, "", "event",
			    "QEMU processes that execed (looked at soon after), VMs dropped as "
			    "they exit (discovery.process_events; none while rescans alone find VMs)." },
	[F_ATTACH_ERRORS] = { "vmprobe_attach_errors_total", EXPO_COUNTER, "", "",
			      "Failures to start counting a VM's tap, drive or sockets, or to "
			      "read its fds or enter its namespace (the log says which and why)." },
	[F_FAULTS] = { "vmprobe_faults_total", EXPO_COUNTER, "", "kind",
		       "Faults vmprobe met and rode out, each counted once with its log line: "
		       "map_full (no slot "
		       "left for a tap, drive or VM), tap_gone (a tap went while being attached), "
		       "vm_exited (a QEMU exited while being read), tracefs (not mounted at an "
		       "attach), btf (no kernel BTF), tcx_attach (a tap fell back to clsact), "
		       "bpffs (not mounted: no pins), map_memory (no memory for a probe's maps), "
		       "probe_load (a probe failed to load otherwise)." },
	[F_MAP_MEMORY] = { "vmprobe_bpf_map_memory_bytes", EXPO_GAUGE, "bytes", "probe",
			   "Kernel memory of each probe's BPF maps (and discovery's, for its "
			   "process events), as the kernel accounts it (memlock in the maps' "
			   "fdinfo); see the README's Memory section." },
	[F_PINS] = { "vmprobe_pins_info", EXPO_GAUGE, "", "probe,state,reason,previous_version",
		     "What serve did at its start with the programs and counters an earlier "
		     "serve left pinned for each probe, always 1 (the log says it too): state "
		     "adopted (its counters go on; reason programs_replaced when its BPF "
		     "programs differed from ours), removed (its counters start from zero; "
		     "reason layout: its maps are laid out otherwise, another version or other "
		     "map sizes; not_persisted, no_stamp, loaded_unpinned), new "
		     "(nothing was left) or unpinned (bpffs not usable); previous_version: the "
		     "vmprobe that left them." },
	[F_SCRAPE_SECONDS] = { "vmprobe_scrape_duration_seconds", EXPO_GAUGE, "seconds", "",
			       "Time vmprobe took to render this response." },
};

size_t vm_labels_add(struct strbuf *sb, const struct vm *vm, const struct expo_label *extra,
		     size_t n)
{
	struct expo_label l[] = { { "name", vm->name },
				  { "namespace", vm->ns[0] ? vm->ns : NULL } };
	size_t off = sb->len;

	expo_labels(sb, l, ARRAY_SIZE(l));
	if (n) {
		sb_putc(sb, ',');
		expo_labels(sb, extra, n);
	}
	sb_add(sb, "", 1);
	return off;
}

void vm_labels(struct strbuf *lb, const struct vm *vm, const struct expo_label *extra, size_t n)
{
	sb_reset(lb);
	vm_labels_add(lb, vm, extra, n);
}

void metrics_single_u64(struct expo *e, const struct expo_family *f, __u64 v)
{
	expo_family(e, f);
	expo_u64(e, f->name, "", v);
}

int metrics_families(int (*fn)(const struct family_list *l, void *arg), void *arg)
{
	struct family_list l = { "vmprobe", fams, F_MAX };
	int ret = fn(&l, arg);

	l.families = storage_families(&l.nr);
	ret = ret ? ret : fn(&l, arg);
	l.owner = "process";
	l.families = process_families(&l.nr);
	ret = ret ? ret : fn(&l, arg);
	for (size_t i = 0; !ret && i < probe_registry_len; i++) {
		l.owner = probe_registry[i]->name;
		l.families = probe_registry[i]->families(&l.nr);
		ret = fn(&l, arg);
	}
	return ret;
}

struct family_search {
	const char *name;
	const struct expo_family *found;
};

static int family_match(const struct family_list *l, void *arg)
{
	struct family_search *fs = arg;

	for (size_t i = 0; i < l->nr; i++)
		if (!strcmp(l->families[i].name, fs->name)) {
			fs->found = &l->families[i];
			return 1;
		}
	return 0;
}

const struct expo_family *metrics_family_find(const char *name)
{
	struct family_search fs = { name, NULL };

	metrics_families(family_match, &fs);
	return fs.found;
}

static bool family_off(const struct expo_family *f, const void *cfg)
{
	return config_family_off(cfg, f);
}

#ifdef __clang__
#define COMPILER "clang " __clang_version__
#else
#define COMPILER "gcc " __VERSION__
#endif

static void render_build(struct expo *e, struct strbuf *lb)
{
	char libbpf[32];

	snprintf(libbpf, sizeof(libbpf), "%u.%u", libbpf_major_version(), libbpf_minor_version());
	struct expo_label l[] = { { "version", VMPROBE_VERSION },
				  { "revision", VMPROBE_REVISION },
				  { "compiler", COMPILER },
				  { "libbpf", libbpf } };

	sb_reset(lb);
	expo_labels(lb, l, ARRAY_SIZE(l));
	expo_family(e, &fams[F_BUILD]);
	expo_u64(e, fams[F_BUILD].name, lb->buf, 1);
}

static void render_vm_info(struct discovery *d, struct expo *e, struct strbuf *lb)
{
	expo_family(e, &fams[F_VM_INFO]);
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		struct expo_label l[] = { { "uuid", vm->spec.uuid }, { "pid", vm->pid_str } };

		vm_labels(lb, vm, l, ARRAY_SIZE(l));
		expo_u64(e, fams[F_VM_INFO].name, lb->buf, 1);
	}
}

static void render_map_memory(struct probe_set *ps, struct expo *e, struct strbuf *lb)
{
	expo_family(e, &fams[F_MAP_MEMORY]);
	for (unsigned i = 0; i < ps->nr; i++) {
		struct probe *p = &ps->probes[i];
		struct expo_label l[] = { { "probe", p->ops->name } };

		sb_reset(lb);
		expo_labels(lb, l, ARRAY_SIZE(l));
		expo_u64(e, fams[F_MAP_MEMORY].name, lb->buf,
			 bpf_object_memlock(p->ops->object(p), &p->memlock_fixed));
	}
}

static void render_pins(struct probe_set *ps, struct expo *e, struct strbuf *lb)
{
	expo_family(e, &fams[F_PINS]);
	for (unsigned i = 0; i < ps->nr; i++) {
		const struct probe_pins *pp = ps->probes[i].pins;
		struct expo_label l[] = { { "probe", ps->probes[i].ops->name },
					  { "state", pp ? pp->state : NULL },
					  { "reason", pp ? pp->reason : NULL },
					  { "previous_version", pp ? pp->previous : NULL } };

		if (!pp || !pp->state)
			continue;
		sb_reset(lb);
		expo_labels(lb, l, ARRAY_SIZE(l));
		expo_u64(e, fams[F_PINS].name, lb->buf, 1);
	}
}

/* And discovery's own (the process exec/exit hooks), when it has them. */
static void render_events_memory(struct discovery *d, struct expo *e)
{
	if (d->events_map_bytes)
		expo_u64(e, fams[F_MAP_MEMORY].name, "probe=\"discovery\"", d->events_map_bytes);
}

static void render_self(struct discovery *d, struct expo *e, struct strbuf *lb)
{
	metrics_single_u64(e, &fams[F_SCANS], d->scans);
	expo_family(e, &fams[F_SCAN_SECONDS]);
	expo_double(e, fams[F_SCAN_SECONDS].name, "", d->last_scan_seconds);
	expo_family(e, &fams[F_PROC_EVENTS]);
	expo_u64(e, fams[F_PROC_EVENTS].name, "event=\"exec\"", d->exec_events);
	expo_u64(e, fams[F_PROC_EVENTS].name, "event=\"exit\"", d->exit_events);
	metrics_single_u64(e, &fams[F_ATTACH_ERRORS], d->attach_errors);
	expo_family(e, &fams[F_FAULTS]);
	for (int k = 0; k < FAULT_MAX; k++) {
		struct expo_label l[] = { { "kind", fault_names[k] } };

		sb_reset(lb);
		expo_labels(lb, l, 1);
		expo_u64(e, fams[F_FAULTS].name, lb->buf, fault_total(k));
	}
	render_map_memory(d->probes, e, lb);
	render_events_memory(d, e);
	render_pins(d->probes, e, lb);
}

int metrics_render(struct discovery *d, enum expo_format format, struct strbuf *sb,
		   const struct expo_sink *sink)
{
	struct probe_set *ps = d->probes;
	struct timespec t0, t1;
	struct strbuf lb;
	struct expo e;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	sb_reset(sb);
	sb_init(&lb);
	expo_begin(&e, format, sb, process_start_time());
	e.native = d->cfg->native_histograms;
	e.classic = d->cfg->classic_in_protobuf || !e.native;
	e.om_created = d->cfg->openmetrics_created;
	e.family_off = family_off;
	e.family_off_arg = d->cfg;
	e.time_range.min_slot = d->cfg->time_min_slot;
	e.time_range.max_slot = d->cfg->time_max_slot;
	e.sink = sink;
	render_build(&e, &lb);
	pthread_mutex_lock(&d->lock);
	render_vm_info(d, &e, &lb);
	coverage_render(d, &e);
	storage_render(d, &e);
	for (unsigned i = 0; i < ps->nr; i++)
		if (ps->probes[i].ops->render)
			ps->probes[i].ops->render(&ps->probes[i], d, &e);
	render_self(d, &e, &lb);
	for (unsigned i = 0; i < ps->nr; i++)
		if (ps->probes[i].ops->render_self)
			ps->probes[i].ops->render_self(&ps->probes[i], d, &e);
	pthread_mutex_unlock(&d->lock);
	process_render(&e);
	sb_free(&lb);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	expo_family(&e, &fams[F_SCRAPE_SECONDS]);
	expo_double(&e, fams[F_SCRAPE_SECONDS].name, "",
		    (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	err = expo_end(&e);
	return err ? err : sb->oom ? -ENOMEM : 0;
}

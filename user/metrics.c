// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "metrics.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expo.h"
#include "net.skel.h"

static const char *const dir_names[NET_DIR_MAX] = { [NET_DIR_RX] = "rx", [NET_DIR_TX] = "tx" };

struct net_row {
	char *labels; /* name, namespace, interface, direction */
	struct net_stats st;
};

static void render_vm_info(struct discovery *d, struct strbuf *sb, struct strbuf *lb)
{
	expo_family(sb, "vmprobe_vm_info", "gauge",
		    "A discovered QEMU virtual machine; always 1.");
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		struct expo_label l[] = {
			{ "name", vm->name },
			{ "namespace", vm->ns[0] ? vm->ns : NULL },
			{ "uuid", vm->spec.uuid },
			{ "pid", vm->pid_str },
		};

		sb_reset(lb);
		expo_labels(lb, l, ARRAY_SIZE(l));
		expo_u64(sb, "vmprobe_vm_info", lb->buf, 1);
	}
}

static size_t collect_net_rows(struct discovery *d, struct net_row **out)
{
	struct net_row *rows;
	struct strbuf lb;
	size_t n = 0, cap = 0;

	for (struct vm *vm = d->vms; vm; vm = vm->next)
		for (int i = 0; i < vm->nr_taps; i++)
			cap += vm->taps[i].slot >= 0 ? NET_DIR_MAX : 0;
	rows = calloc(cap ? cap : 1, sizeof(*rows));
	if (!rows)
		return 0;
	sb_init(&lb);
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		for (int i = 0; i < vm->nr_taps; i++) {
			struct tap_state *t = &vm->taps[i];

			if (t->slot < 0)
				continue;
			for (unsigned dir = 0; dir < NET_DIR_MAX; dir++) {
				struct expo_label l[] = {
					{ "name", vm->name },
					{ "namespace", vm->ns[0] ? vm->ns : NULL },
					{ "interface", t->ifname },
					{ "direction", dir_names[dir] },
				};

				sb_reset(&lb);
				expo_labels(&lb, l, ARRAY_SIZE(l));
				rows[n].labels = strdup(lb.buf ? lb.buf : "");
				net_read(d->np, t->slot, dir, &rows[n].st);
				n++;
			}
		}
	}
	sb_free(&lb);
	*out = rows;
	return n;
}

static void render_net(struct discovery *d, struct strbuf *sb)
{
	const struct hist_range size_range = {
		.min_slot = d->cfg->size_min_slot,
		.max_slot = d->cfg->size_max_slot,
		.per_unit = 1,
	};
	struct net_row *rows = NULL;
	size_t n = collect_net_rows(d, &rows), i;

	expo_family(sb, "vmprobe_network_packets_total", "counter",
		    "Frames seen on the VM's tap; direction is the guest's view (rx: to the guest).");
	for (i = 0; i < n; i++) {
		__u64 packets = 0;

		for (int s = 0; s < NET_SIZE_SLOTS; s++)
			packets += rows[i].st.size_slots[s];
		expo_u64(sb, "vmprobe_network_packets_total", rows[i].labels, packets);
	}
	expo_family(sb, "vmprobe_network_bytes_total", "counter",
		    "Frame bytes seen on the VM's tap, Ethernet header included.");
	for (i = 0; i < n; i++)
		expo_u64(sb, "vmprobe_network_bytes_total", rows[i].labels, rows[i].st.bytes);
	expo_family(sb, "vmprobe_network_packet_size_bytes", "histogram",
		    "Sizes of the frames seen on the VM's tap.");
	for (i = 0; i < n; i++)
		expo_histogram(sb, "vmprobe_network_packet_size_bytes", rows[i].labels,
			       rows[i].st.size_slots, NET_SIZE_SLOTS, &size_range, rows[i].st.bytes);
	for (i = 0; i < n; i++)
		free(rows[i].labels);
	free(rows);
}

static bool bpf_stats_enabled(void)
{
	char buf[8];

	return read_file("/proc/sys/kernel/bpf_stats_enabled", buf, sizeof(buf)) > 0 &&
	       buf[0] == '1';
}

static void render_self(struct discovery *d, struct strbuf *sb, struct strbuf *lb)
{
	unsigned attached = 0;

	expo_family(sb, "vmprobe_discovery_scans_total", "counter",
		    "Scans of /proc for QEMU processes.");
	expo_u64(sb, "vmprobe_discovery_scans_total", "", d->scans);
	expo_family(sb, "vmprobe_discovery_scan_duration_seconds", "gauge",
		    "Duration of the last discovery scan.");
	expo_double(sb, "vmprobe_discovery_scan_duration_seconds", "", d->last_scan_seconds);
	expo_family(sb, "vmprobe_attach_errors_total", "counter",
		    "Failures to start counting a tap (see the log for which and why).");
	expo_u64(sb, "vmprobe_attach_errors_total", "", d->attach_errors);
	if (!d->np)
		return;

	for (struct vm *vm = d->vms; vm; vm = vm->next)
		for (int i = 0; i < vm->nr_taps; i++)
			attached += vm->taps[i].slot >= 0;
	expo_family(sb, "vmprobe_network_interfaces", "gauge", "Taps being counted.");
	expo_u64(sb, "vmprobe_network_interfaces", "", attached);
	expo_family(sb, "vmprobe_network_interface_slots", "gauge",
		    "Taps that can be counted at once (network.max_interfaces).");
	expo_u64(sb, "vmprobe_network_interface_slots", "", d->np->max_ifaces);
	expo_family(sb, "vmprobe_network_unknown_interface_frames_total", "counter",
		    "Frames the TC programs saw on a device with no slot (should stay 0).");
	expo_u64(sb, "vmprobe_network_unknown_interface_frames_total", "",
		 net_unknown_frames(d->np));

	if (!bpf_stats_enabled())
		return;
	/* Only counted while kernel.bpf_stats_enabled=1. */
	struct bpf_program *progs[] = { d->np->skel->progs.vmprobe_tap_ingress,
					d->np->skel->progs.vmprobe_tap_egress };
	struct bpf_prog_info info[ARRAY_SIZE(progs)];

	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		__u32 len = sizeof(info[i]);

		memset(&info[i], 0, sizeof(info[i]));
		bpf_obj_get_info_by_fd(bpf_program__fd(progs[i]), &info[i], &len);
	}
	expo_family(sb, "vmprobe_bpf_program_runs_total", "counter",
		    "Runs of each vmprobe BPF program (kernel.bpf_stats_enabled=1).");
	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		struct expo_label l[] = { { "program", bpf_program__name(progs[i]) } };

		sb_reset(lb);
		expo_labels(lb, l, 1);
		expo_u64(sb, "vmprobe_bpf_program_runs_total", lb->buf, info[i].run_cnt);
	}
	expo_family(sb, "vmprobe_bpf_program_run_seconds_total", "counter",
		    "Time spent in each vmprobe BPF program (kernel.bpf_stats_enabled=1).");
	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		struct expo_label l[] = { { "program", bpf_program__name(progs[i]) } };

		sb_reset(lb);
		expo_labels(lb, l, 1);
		expo_double(sb, "vmprobe_bpf_program_run_seconds_total", lb->buf,
			    info[i].run_time_ns / 1e9);
	}
}

int metrics_render(struct discovery *d, struct strbuf *sb)
{
	struct timespec t0, t1;
	struct strbuf lb;
	char libbpf[32];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	sb_reset(sb);
	sb_init(&lb);
	snprintf(libbpf, sizeof(libbpf), "%u.%u", libbpf_major_version(), libbpf_minor_version());
	{
		struct expo_label l[] = { { "version", VMPROBE_VERSION }, { "libbpf", libbpf } };

		expo_labels(&lb, l, ARRAY_SIZE(l));
		expo_family(sb, "vmprobe_build_info", "gauge",
			    "vmprobe's version and the libbpf it runs with; always 1.");
		expo_u64(sb, "vmprobe_build_info", lb.buf, 1);
	}

	pthread_mutex_lock(&d->lock);
	render_vm_info(d, sb, &lb);
	if (d->np)
		render_net(d, sb);
	render_self(d, sb, &lb);
	pthread_mutex_unlock(&d->lock);
	sb_free(&lb);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	expo_family(sb, "vmprobe_scrape_duration_seconds", "gauge",
		    "Time vmprobe took to render this response.");
	expo_double(sb, "vmprobe_scrape_duration_seconds", "",
		    (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return sb->oom ? -ENOMEM : 0;
}

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
#include "disk.h"
#include "net.skel.h"

static const char *const dir_names[NET_DIR_MAX] = { [NET_DIR_RX] = "rx", [NET_DIR_TX] = "tx" };

struct net_row {
	char *labels; /* name, namespace, interface, direction */
	const struct vm *vm;
	const struct tap_state *tap;
	unsigned dir;
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
				rows[n].vm = vm;
				rows[n].tap = t;
				rows[n].dir = dir;
				net_read(d->np, t->slot, dir, &rows[n].st);
				n++;
			}
		}
	}
	sb_free(&lb);
	*out = rows;
	return n;
}

/* Every time histogram (disk latency, RTT): ns slots, exported ~1 us .. 17 s. */
static const struct hist_range lat_range = { .min_slot = 10, .max_slot = 34,
					      .per_unit = 1000000000ULL };

/* A TCP series of a row: the VM's labels, its interface, then `key`=`value`. */
static void tcp_labels(struct strbuf *lb, const struct net_row *r, const char *key,
		       const char *value)
{
	struct expo_label l[] = {
		{ "name", r->vm->name },
		{ "namespace", r->vm->ns[0] ? r->vm->ns : NULL },
		{ "interface", r->tap->ifname },
		{ key, value },
	};

	sb_reset(lb);
	expo_labels(lb, l, ARRAY_SIZE(l));
}

static void render_tcp(const struct net_row *rows, size_t n, struct strbuf *sb)
{
	static const char *const path_names[NET_DIR_MAX] = { [NET_PATH_NETWORK] = "network",
							     [NET_PATH_GUEST] = "guest" };
	static const char *const opener_names[NET_DIR_MAX] = { [NET_DIR_TX] = "guest",
							       [NET_DIR_RX] = "peer" };
	struct strbuf lb;
	size_t i;

	sb_init(&lb);
	expo_family(sb, "vmprobe_network_tcp_rtt_seconds", "histogram",
		    "Passive TCP round-trip time seen on the tap. path=network: a segment leaves "
		    "the guest until the peer's answer arrives; path=guest: a segment is delivered "
		    "to the guest until its answer leaves it.");
	for (i = 0; i < n; i++) {
		tcp_labels(&lb, &rows[i], "path", path_names[rows[i].dir]);
		expo_histogram(sb, "vmprobe_network_tcp_rtt_seconds", lb.buf, rows[i].st.rtt_slots,
			       NET_RTT_SLOTS, &lat_range, rows[i].st.rtt_sum_ns);
	}
	expo_family(sb, "vmprobe_network_tcp_retransmits_total", "counter",
		    "TCP segments seen on the tap carrying sequence space already seen (tx: sent "
		    "by the guest).");
	for (i = 0; i < n; i++)
		expo_u64(sb, "vmprobe_network_tcp_retransmits_total", rows[i].labels,
			 rows[i].st.tcp_retransmits);
	expo_family(sb, "vmprobe_network_tcp_resets_total", "counter",
		    "TCP segments with RST seen on the tap (tx: sent by the guest).");
	for (i = 0; i < n; i++)
		expo_u64(sb, "vmprobe_network_tcp_resets_total", rows[i].labels,
			 rows[i].st.tcp_resets);
	expo_family(sb, "vmprobe_network_tcp_connections_opened_total", "counter",
		    "TCP handshakes completed through the tap, by the side that sent the SYN.");
	for (i = 0; i < n; i++) {
		tcp_labels(&lb, &rows[i], "opened_by", opener_names[rows[i].dir]);
		expo_u64(sb, "vmprobe_network_tcp_connections_opened_total", lb.buf,
			 rows[i].st.tcp_opened);
	}
	sb_free(&lb);
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
	if (d->np->max_flows)
		render_tcp(rows, n, sb);
	for (i = 0; i < n; i++)
		free(rows[i].labels);
	free(rows);
}

struct drop_list {
	struct net_drop_key *keys;
	__u64 *counts;
	size_t n, cap;
};

static int collect_drop(const struct net_drop_key *k, __u64 count, void *arg)
{
	struct drop_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct net_drop_key *keys = realloc(l->keys, cap * sizeof(*keys));
		__u64 *counts = keys ? realloc(l->counts, cap * sizeof(*counts)) : NULL;

		if (keys)
			l->keys = keys;
		if (!counts)
			return -ENOMEM;
		l->counts = counts;
		l->cap = cap;
	}
	l->keys[l->n] = *k;
	l->counts[l->n++] = count;
	return 0;
}

/* Only series that have dropped something: a reason is not a fixed set. */
static void render_drops(struct discovery *d, struct strbuf *sb)
{
	struct drop_list l = {};
	struct strbuf lb;

	if (!d->np->drops_on)
		return;
	net_drops_foreach(d->np, collect_drop, &l);
	expo_family(sb, "vmprobe_network_drops_total", "counter",
		    "Frames the host dropped on the way to (rx) or from (tx) the VM, by kernel drop reason.");
	sb_init(&lb);
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		for (int i = 0; i < vm->nr_taps; i++) {
			struct tap_state *t = &vm->taps[i];

			for (size_t k = 0; t->slot >= 0 && k < l.n; k++) {
				char num[32];
				const char *reason;

				if (l.keys[k].slot != (__u32)t->slot || l.keys[k].dir >= NET_DIR_MAX)
					continue;
				reason = l.keys[k].reason < NET_DROP_REASONS
						 ? d->np->drop_reason[l.keys[k].reason] : "";
				if (!reason[0]) {
					/* A subsystem's own reason (6.8+): SUBSYS<<16 | n. */
					snprintf(num, sizeof(num), "subsys%u_%u", l.keys[k].reason >> 16,
						 l.keys[k].reason & 0xffff);
					reason = num;
				}
				{
					struct expo_label lab[] = {
						{ "name", vm->name },
						{ "namespace", vm->ns[0] ? vm->ns : NULL },
						{ "interface", t->ifname },
						{ "direction", dir_names[l.keys[k].dir] },
						{ "reason", reason },
					};

					sb_reset(&lb);
					expo_labels(&lb, lab, ARRAY_SIZE(lab));
				}
				expo_u64(sb, "vmprobe_network_drops_total", lb.buf, l.counts[k]);
			}
		}
	}
	sb_free(&lb);
	free(l.keys);
	free(l.counts);
}

/* QEMU's own TCP sockets on the host, per VM. */
static void render_host_tcp(struct discovery *d, struct strbuf *sb)
{
	struct host_row {
		char *labels; /* name, namespace */
		struct net_host_tcp t;
	} *rows;
	struct strbuf lb;
	size_t n = 0, i;
	struct vm *vm;

	if (!d->np->host_tcp_on)
		return;
	for (vm = d->vms; vm; vm = vm->next)
		n++;
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return;
	sb_init(&lb);
	for (vm = d->vms, i = 0; vm; vm = vm->next, i++) {
		struct expo_label l[] = { { "name", vm->name },
					  { "namespace", vm->ns[0] ? vm->ns : NULL } };

		sb_reset(&lb);
		expo_labels(&lb, l, ARRAY_SIZE(l));
		rows[i].labels = strdup(lb.buf ? lb.buf : "");
		net_host_read(d->np, (__u32)vm->pid, &rows[i].t);
	}
	sb_free(&lb);
	expo_family(sb, "vmprobe_host_tcp_srtt_seconds", "histogram",
		    "Smoothed RTT of the VM's QEMU TCP sockets on the host (migration, network "
		    "storage, VNC), one sample per segment received.");
	for (i = 0; i < n; i++)
		expo_histogram(sb, "vmprobe_host_tcp_srtt_seconds", rows[i].labels,
			       rows[i].t.srtt_slots, NET_RTT_SLOTS, &lat_range, rows[i].t.srtt_sum_ns);
	expo_family(sb, "vmprobe_host_tcp_retransmits_total", "counter",
		    "Segments the VM's QEMU TCP sockets on the host retransmitted.");
	for (i = 0; i < n; i++)
		expo_u64(sb, "vmprobe_host_tcp_retransmits_total", rows[i].labels,
			 rows[i].t.retransmits);
	for (i = 0; i < n; i++)
		free(rows[i].labels);
	free(rows);
}

static const struct hist_range req_size_range = { .min_slot = 9, .max_slot = 24,
						  .per_unit = 1 }; /* 512 B .. 16 MiB */

struct disk_row {
	char *labels; /* name, namespace, drive, operation */
	struct drive_stats st;
};

static size_t collect_disk_rows(struct discovery *d, struct disk_row **out)
{
	struct disk_row *rows;
	struct strbuf lb;
	size_t n = 0, cap = 0;

	for (struct vm *vm = d->vms; vm; vm = vm->next)
		for (int i = 0; i < vm->spec.nr_drives; i++)
			cap += vm->drives[i].slot >= 0 ? DISK_OP_MAX : 0;
	rows = calloc(cap ? cap : 1, sizeof(*rows));
	if (!rows)
		return 0;
	sb_init(&lb);
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		for (int i = 0; i < vm->spec.nr_drives; i++) {
			if (vm->drives[i].slot < 0)
				continue;
			for (unsigned op = 0; op < DISK_OP_MAX; op++) {
				struct expo_label l[] = {
					{ "name", vm->name },
					{ "namespace", vm->ns[0] ? vm->ns : NULL },
					{ "drive", vm->spec.drives[i].label },
					{ "operation", disk_op_names[op] },
				};

				sb_reset(&lb);
				expo_labels(&lb, l, ARRAY_SIZE(l));
				rows[n].labels = strdup(lb.buf ? lb.buf : "");
				disk_read(d->dp, vm->drives[i].slot, op, &rows[n].st);
				n++;
			}
		}
	}
	sb_free(&lb);
	*out = rows;
	return n;
}

struct dev_render {
	struct strbuf *sb;
	struct strbuf lb;
};

static int render_dev(const struct blkdev_key *k, const struct blkdev_stats *st, void *arg)
{
	struct dev_render *r = arg;
	char path[128], text[512], name[64], *p;

	snprintf(name, sizeof(name), "%u:%u", k->dev >> 20, k->dev & 0xfffff);
	snprintf(path, sizeof(path), "/sys/dev/block/%s/uevent", name);
	if (read_file(path, text, sizeof(text)) > 0 && (p = strstr(text, "DEVNAME=")))
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(p + 8, "\n"), p + 8);
	if (k->op >= DISK_OP_MAX)
		return 0;
	{
		struct expo_label l[] = { { "device", name }, { "operation", disk_op_names[k->op] } };

		sb_reset(&r->lb);
		expo_labels(&r->lb, l, ARRAY_SIZE(l));
	}
	expo_histogram(r->sb, "vmprobe_host_block_latency_seconds", r->lb.buf, st->lat_slots,
		       DISK_LAT_SLOTS, &lat_range, st->lat_sum_ns);
	return 0;
}

static void render_disk(struct discovery *d, struct strbuf *sb)
{
	struct disk_row *rows = NULL;
	size_t n = collect_disk_rows(d, &rows), i;
	struct dev_render r = { .sb = sb };

	expo_family(sb, "vmprobe_disk_operations_total", "counter",
		    "Requests QEMU issued to the host for the VM's drive.");
	for (i = 0; i < n; i++) {
		__u64 ops = 0;

		for (int s = 0; s < DISK_LAT_SLOTS; s++)
			ops += rows[i].st.lat_slots[s];
		expo_u64(sb, "vmprobe_disk_operations_total", rows[i].labels, ops);
	}
	expo_family(sb, "vmprobe_disk_bytes_total", "counter",
		    "Bytes of the requests QEMU issued for the VM's drive (as transferred).");
	for (i = 0; i < n; i++)
		expo_u64(sb, "vmprobe_disk_bytes_total", rows[i].labels, rows[i].st.bytes);
	expo_family(sb, "vmprobe_disk_latency_seconds", "histogram",
		    "Host-side latency of the VM drive's requests, issue to completion.");
	for (i = 0; i < n; i++)
		expo_histogram(sb, "vmprobe_disk_latency_seconds", rows[i].labels,
			       rows[i].st.lat_slots, DISK_LAT_SLOTS, &lat_range, rows[i].st.lat_sum_ns);
	expo_family(sb, "vmprobe_disk_request_size_bytes", "histogram",
		    "Sizes of the VM drive's requests.");
	for (i = 0; i < n; i++)
		expo_histogram(sb, "vmprobe_disk_request_size_bytes", rows[i].labels,
			       rows[i].st.size_slots, DISK_SIZE_SLOTS, &req_size_range,
			       rows[i].st.bytes);
	for (i = 0; i < n; i++)
		free(rows[i].labels);
	free(rows);

	if (!d->dp->host_block_on)
		return;
	expo_family(sb, "vmprobe_host_block_latency_seconds", "histogram",
		    "Host block device latency, issue to completion, all IO.");
	sb_init(&r.lb);
	disk_dev_foreach(d->dp, render_dev, &r);
	sb_free(&r.lb);
}

static void render_disk_self(struct discovery *d, struct strbuf *sb, struct strbuf *lb)
{
	static const char *const err_names[DISK_ERR_MAX] = {
		[DISK_ERR_INFLIGHT_FULL] = "inflight_full",
		[DISK_ERR_FIXED_FILE] = "io_uring_fixed_file",
		[DISK_ERR_NATIVE_AMBIGUOUS] = "native_mixed_drives",
		[DISK_ERR_NO_TIMESTAMP] = "host_block_no_timestamp",
	};

	expo_family(sb, "vmprobe_disk_source_enabled", "gauge",
		    "Whether this kernel lets vmprobe measure an AIO mode (1) or not (0).");
	for (unsigned s = 0; s < DISK_SRC_MAX; s++) {
		struct expo_label l[] = { { "source", disk_src_names[s] } };

		sb_reset(lb);
		expo_labels(lb, l, 1);
		expo_u64(sb, "vmprobe_disk_source_enabled", lb->buf, d->dp->source_on[s]);
	}
	expo_family(sb, "vmprobe_disk_source_requests_total", "counter",
		    "VM disk requests measured, by the AIO mode's source.");
	for (unsigned s = 0; s < DISK_SRC_MAX; s++) {
		struct expo_label l[] = { { "source", disk_src_names[s] } };

		sb_reset(lb);
		expo_labels(lb, l, 1);
		expo_u64(sb, "vmprobe_disk_source_requests_total", lb->buf,
			 disk_source_count(d->dp, s));
	}
	expo_family(sb, "vmprobe_disk_unmeasured_requests_total", "counter",
		    "VM disk requests vmprobe saw but could not measure, by reason.");
	for (unsigned e = 0; e < DISK_ERR_MAX; e++) {
		struct expo_label l[] = { { "reason", err_names[e] } };

		sb_reset(lb);
		expo_labels(lb, l, 1);
		expo_u64(sb, "vmprobe_disk_unmeasured_requests_total", lb->buf,
			 disk_error_count(d->dp, e));
	}
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
	expo_family(sb, "vmprobe_network_tc_hook_info", "gauge",
		    "How the TC programs hang from the taps (network.tc_hook): tcx links or "
		    "clsact filters; always 1.");
	expo_u64(sb, "vmprobe_network_tc_hook_info", d->np->tcx ? "hook=\"tcx\"" : "hook=\"clsact\"", 1);
	expo_family(sb, "vmprobe_network_unknown_interface_frames_total", "counter",
		    "Frames the TC programs saw on a device with no slot (should stay 0).");
	expo_u64(sb, "vmprobe_network_unknown_interface_frames_total", "",
		 net_unknown_frames(d->np));
	expo_family(sb, "vmprobe_network_unparsed_frames_total", "counter",
		    "IP frames on taps whose headers the TC programs could not read (truncated, "
		    "not in the linear part, IPv6 extension headers): not in the TCP metrics.");
	expo_u64(sb, "vmprobe_network_unparsed_frames_total", "",
		 net_counter(d->np, NET_ERR_NOT_PARSED));
	if (d->np->max_flows) {
		long live;
		__u64 evicted = net_flows_evicted(d->np, &live);

		expo_family(sb, "vmprobe_network_tcp_flows", "gauge",
			    "TCP connections in the flow table now.");
		expo_u64(sb, "vmprobe_network_tcp_flows", "", live > 0 ? (__u64)live : 0);
		expo_family(sb, "vmprobe_network_tcp_flow_slots", "gauge",
			    "TCP connections the flow table can hold (network.max_tcp_flows).");
		expo_u64(sb, "vmprobe_network_tcp_flow_slots", "", d->np->max_flows);
		expo_family(sb, "vmprobe_network_tcp_flows_created_total", "counter",
			    "TCP flow table entries made.");
		expo_u64(sb, "vmprobe_network_tcp_flows_created_total", "",
			 net_counter(d->np, NET_TCP_FLOWS_CREATED));
		expo_family(sb, "vmprobe_network_tcp_flows_midstream_total", "counter",
			    "TCP flows first seen without their handshake (older than vmprobe, "
			    "or evicted and seen again).");
		expo_u64(sb, "vmprobe_network_tcp_flows_midstream_total", "",
			 net_counter(d->np, NET_TCP_FLOWS_MIDSTREAM));
		expo_family(sb, "vmprobe_network_tcp_flows_evicted_total", "counter",
			    "TCP flows dropped from the full table while open (made, not closed, "
			    "no longer there); raise network.max_tcp_flows if it grows.");
		expo_u64(sb, "vmprobe_network_tcp_flows_evicted_total", "", evicted);
		expo_family(sb, "vmprobe_network_tcp_flow_failures_total", "counter",
			    "TCP flows that could not be added to the table.");
		expo_u64(sb, "vmprobe_network_tcp_flow_failures_total", "",
			 net_counter(d->np, NET_TCP_FLOWS_FAILED));
	}

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
	if (d->np) {
		render_net(d, sb);
		render_drops(d, sb);
		render_host_tcp(d, sb);
	}
	if (d->dp)
		render_disk(d, sb);
	render_self(d, sb, &lb);
	if (d->dp)
		render_disk_self(d, sb, &lb);
	pthread_mutex_unlock(&d->lock);
	sb_free(&lb);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	expo_family(sb, "vmprobe_scrape_duration_seconds", "gauge",
		    "Time vmprobe took to render this response.");
	expo_double(sb, "vmprobe_scrape_duration_seconds", "",
		    (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return sb->oom ? -ENOMEM : 0;
}

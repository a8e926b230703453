// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The network probe's metric families: per tap, per VM (host TCP), and its health. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/metrics.h"
#include "net.skel.h"
#include "probes/net/net_probe.h"

enum {
	F_PACKETS, F_BYTES, F_SIZE, F_RTT, F_RETRANS, F_RESETS, F_OPENED, F_DROPS,
	F_HOST_SRTT, F_HOST_RETRANS, F_IFACES, F_IFACE_SLOTS, F_HOOK, F_HOOK_IFACES, F_UNKNOWN,
	F_UNPARSED,
	F_FLOWS, F_FLOW_SLOTS, F_FLOWS_CREATED, F_FLOWS_MIDSTREAM, F_FLOWS_EVICTED,
	F_FLOW_FAILURES, F_PROG_RUNS, F_PROG_SECONDS, F_MAX
};

static const struct expo_family fams[F_MAX] = {
	[F_PACKETS] = { "vmprobe_network_packets_total", EXPO_COUNTER, "", "name,namespace,interface,direction",
			"Frames seen on the VM's tap: the count of "
			"vmprobe_network_packet_size_bytes, repeated.", .off_by_default = true },
	[F_BYTES] = { "vmprobe_network_bytes_total", EXPO_COUNTER, "bytes", "name,namespace,interface,direction",
		      "Frame bytes seen on the VM's tap: the sum of "
		      "vmprobe_network_packet_size_bytes, repeated.", .off_by_default = true },
	[F_SIZE] = { "vmprobe_network_packet_size_bytes", EXPO_HISTOGRAM, "bytes",
		     "name,namespace,interface,direction",
		     "Sizes of the frames seen on the VM's tap, Ethernet header included; "
		     "direction is the guest's view (rx: to the guest). Its count equals the tap's "
		     "own counters: tx = tap rx_packets, rx = tap tx_packets + tx_dropped; its sum "
		     "is their bytes; le 64 .. 65536 B, powers of two "
		     "(network.packet_size_buckets)." },
	[F_RTT] = { "vmprobe_network_tcp_rtt_seconds", EXPO_HISTOGRAM, "seconds",
		    "name,namespace,interface,path",
		    "Passive TCP round-trip time seen on the tap. path=network: a segment leaves "
		    "the guest until the peer's answer arrives; path=guest: a segment is delivered "
		    "to the guest until its answer leaves it. Handshakes give one sample per path, "
		    "then TCP timestamps or, without them, sequence/ack (Karn's rule)." },
	[F_RETRANS] = { "vmprobe_network_tcp_retransmits_total", EXPO_COUNTER, "",
			"name,namespace,interface,direction",
			"TCP segments seen on the tap carrying sequence space already seen (tx: sent "
			"by the guest); a gap filled within half the flow's RTT is reordering, not "
			"counted." },
	[F_RESETS] = { "vmprobe_network_tcp_resets_total", EXPO_COUNTER, "",
		       "name,namespace,interface,direction",
		       "TCP segments with RST seen on the tap (tx: sent by the guest)." },
	[F_OPENED] = { "vmprobe_network_tcp_connections_opened_total", EXPO_COUNTER, "",
		       "name,namespace,interface,opened_by",
		       "TCP handshakes completed through the tap, by the side that sent the SYN." },
	[F_DROPS] = { "vmprobe_network_drops_total", EXPO_COUNTER, "",
		      "name,namespace,interface,direction,reason",
		      "Frames the host dropped on the way to (rx) or from (tx) the VM, by the kernel's "
		      "drop reason (kfree_skb), e.g. FULL_RING (rx) when the guest does not drain its "
		      "queue; a series appears at its first drop." },
	[F_HOST_SRTT] = { "vmprobe_host_tcp_srtt_seconds", EXPO_HISTOGRAM, "seconds", "name,namespace",
			  "Smoothed RTT of the VM's QEMU TCP sockets on the host (migration, network "
			  "storage, VNC), one sample per segment received." },
	[F_HOST_RETRANS] = { "vmprobe_host_tcp_retransmits_total", EXPO_COUNTER, "", "name,namespace",
			     "Segments the VM's QEMU TCP sockets on the host retransmitted." },
	[F_IFACES] = { "vmprobe_network_interfaces", EXPO_GAUGE, "", "", "Taps being counted." },
	[F_IFACE_SLOTS] = { "vmprobe_network_interface_slots", EXPO_GAUGE, "", "",
			    "Taps that can be counted at once (network.max_interfaces)." },
	[F_HOOK] = { "vmprobe_network_tc_hook_info", EXPO_GAUGE, "", "hook",
		     "How the TC programs hang from the taps (network.tc_hook): tcx links or "
		     "clsact filters; always 1." },
	[F_HOOK_IFACES] = { "vmprobe_network_tc_hook_interfaces", EXPO_GAUGE, "", "hook",
			    "Taps being counted, by the hook their programs hang from: tcx, or "
			    "clsact (network.tc_hook, or a tap whose TCX attach failed: "
			    "vmprobe_faults_total{kind=\"tcx_attach\"})." },
	[F_UNKNOWN] = { "vmprobe_network_unknown_interface_frames_total", EXPO_COUNTER, "", "",
			"Frames the TC programs saw on a device with no slot (should stay 0)." },
	[F_UNPARSED] = { "vmprobe_network_unparsed_frames_total", EXPO_COUNTER, "", "",
			 "IP frames on taps whose headers the TC programs could not read (truncated, "
			 "not in the linear part, IPv6 extension headers): not in the TCP metrics." },
	[F_FLOWS] = { "vmprobe_network_tcp_flows", EXPO_GAUGE, "", "",
		      "TCP connections in the flow table now." },
	[F_FLOW_SLOTS] = { "vmprobe_network_tcp_flow_slots", EXPO_GAUGE, "", "",
			   "TCP connections the flow table can hold (network.max_tcp_flows)." },
	[F_FLOWS_CREATED] = { "vmprobe_network_tcp_flows_created_total", EXPO_COUNTER, "", "",
			      "TCP flow table entries made." },
	[F_FLOWS_MIDSTREAM] = { "vmprobe_network_tcp_flows_midstream_total", EXPO_COUNTER, "", "",
				"TCP flows first seen without their handshake (older than vmprobe, "
				"or evicted and seen again)." },
	[F_FLOWS_EVICTED] = { "vmprobe_network_tcp_flows_evicted_total", EXPO_COUNTER, "", "",
			      "TCP flows dropped from the full table while open (made, not closed, "
			      "no longer there); raise network.max_tcp_flows if it grows." },
	[F_FLOW_FAILURES] = { "vmprobe_network_tcp_flow_failures_total", EXPO_COUNTER, "", "",
			      "TCP flows that could not be added to the table." },
	[F_PROG_RUNS] = { "vmprobe_bpf_program_runs_total", EXPO_COUNTER, "", "program",
			  "Runs of each vmprobe BPF program (kernel.bpf_stats_enabled=1)." },
	[F_PROG_SECONDS] = { "vmprobe_bpf_program_run_seconds_total", EXPO_COUNTER, "seconds",
			     "program",
			     "Time spent in each vmprobe BPF program (kernel.bpf_stats_enabled=1)." },
};

const struct expo_family *net_families(size_t *nr)
{
	*nr = F_MAX;
	return fams;
}

static const char *const dir_names[NET_DIR_MAX] = { [NET_DIR_RX] = "rx", [NET_DIR_TX] = "tx" };

/* One (tap, direction) of a VM, read once per scrape. */
struct net_row {
	size_t labels; /* offset of name, namespace, interface, direction in the rows' labels */
	const struct vm *vm;
	const char *ifname; /* the interface label */
	unsigned dir;
	struct net_stats st;
	double created; /* when its tap began to be counted (epoch s), 0: unknown */
};

struct net_rows {
	struct net_row *rows;
	size_t n;
	struct strbuf labels; /* every row's, NUL-separated: one buffer, not one each */
};

/* The rows of every counted tap; false if out of memory. */
static bool rows_collect(struct probe *p, struct discovery *d, struct net_rows *out)
{
	struct net_probe *np = p->priv;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	for (struct vm *vm = d->vms; vm; vm = vm->next)
		for (int i = 0; i < vm->nr_ifaces; i++)
			cap += net_iface_slot(p, &vm->ifaces[i]) >= 0 ? NET_DIR_MAX : 0;
	out->rows = malloc((cap ? cap : 1) * sizeof(*out->rows));
	if (!out->rows)
		return false;
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		for (int i = 0; i < vm->nr_ifaces; i++) {
			int slot = net_iface_slot(p, &vm->ifaces[i]);

			for (unsigned dir = 0; slot >= 0 && dir < NET_DIR_MAX; dir++) {
				struct net_row *r = &out->rows[out->n++];
				struct expo_label l[] = { { "interface", vm->ifaces[i].label },
							  { "direction", dir_names[dir] } };

				r->labels = vm_labels_add(&out->labels, vm, l, ARRAY_SIZE(l));
				r->vm = vm;
				r->ifname = vm->ifaces[i].label;
				r->dir = dir;
				r->created = slot_pool_born(&np->slots, slot);
				net_read(np, slot, dir, &r->st);
			}
		}
	}
	return !out->labels.oom;
}

static void rows_free(struct net_rows *r)
{
	sb_free(&r->labels);
	free(r->rows);
}

/* Row i's labels, its tap's _created set for the sample written next. */
static const char *row_series(struct expo *e, const struct net_rows *rows, size_t i)
{
	expo_created(e, rows->rows[i].created);
	return rows->labels.buf + rows->rows[i].labels;
}

/* The same, with the row's VM and interface, then `key`=`value`, instead of its direction. */
static const char *row_relabel(struct expo *e, struct strbuf *lb, const struct net_row *r,
			       const char *key, const char *value)
{
	struct expo_label l[] = { { "interface", r->ifname }, { key, value } };

	expo_created(e, r->created);
	vm_labels(lb, r->vm, l, ARRAY_SIZE(l));
	return lb->buf;
}

static void render_tcp(const struct net_rows *rows, struct expo *e)
{
	static const char *const path_names[NET_DIR_MAX] = { [NET_PATH_NETWORK] = "network",
							     [NET_PATH_GUEST] = "guest" };
	static const char *const opener_names[NET_DIR_MAX] = { [NET_DIR_TX] = "guest",
							       [NET_DIR_RX] = "peer" };
	const struct net_row *r = rows->rows;
	struct strbuf lb;
	size_t i;

	sb_init(&lb);
	expo_family(e, &fams[F_RTT]);
	for (i = 0; i < rows->n; i++) {
		expo_histogram(e, fams[F_RTT].name,
			       row_relabel(e, &lb, &r[i], "path", path_names[r[i].dir]),
			       r[i].st.rtt_slots, NET_RTT_SLOTS, &e->time_range, r[i].st.rtt_sum_ns);
	}
	expo_family(e, &fams[F_RETRANS]);
	for (i = 0; i < rows->n; i++)
		expo_u64(e, fams[F_RETRANS].name, row_series(e, rows, i), r[i].st.tcp_retransmits);
	expo_family(e, &fams[F_RESETS]);
	for (i = 0; i < rows->n; i++)
		expo_u64(e, fams[F_RESETS].name, row_series(e, rows, i), r[i].st.tcp_resets);
	expo_family(e, &fams[F_OPENED]);
	for (i = 0; i < rows->n; i++) {
		expo_u64(e, fams[F_OPENED].name,
			 row_relabel(e, &lb, &r[i], "opened_by", opener_names[r[i].dir]),
			 r[i].st.tcp_opened);
	}
	sb_free(&lb);
}

static void render_taps(struct probe *p, struct discovery *d, struct expo *e)
{
	struct net_probe *np = p->priv;
	const struct hist_range size_range = {
		.min_slot = d->cfg->size_min_slot,
		.max_slot = d->cfg->size_max_slot,
		.per_unit = 1,
	};
	struct net_rows rows;
	const struct net_row *r;
	size_t i;

	if (!rows_collect(p, d, &rows)) {
		e->out->oom = true;
		goto out;
	}
	r = rows.rows;
	expo_family(e, &fams[F_PACKETS]);
	for (i = 0; i < rows.n; i++)
		expo_u64(e, fams[F_PACKETS].name, row_series(e, &rows, i),
			 expo_hist_count(r[i].st.size_slots, NET_SIZE_SLOTS));
	expo_family(e, &fams[F_BYTES]);
	for (i = 0; i < rows.n; i++)
		expo_u64(e, fams[F_BYTES].name, row_series(e, &rows, i), r[i].st.bytes);
	expo_family(e, &fams[F_SIZE]);
	for (i = 0; i < rows.n; i++)
		expo_histogram(e, fams[F_SIZE].name, row_series(e, &rows, i), r[i].st.size_slots,
			       NET_SIZE_SLOTS, &size_range, r[i].st.bytes);
	if (np->max_flows)
		render_tcp(&rows, e);
out:
	rows_free(&rows);
}

struct drop_list {
	struct drop_entry {
		struct net_drop_key key;
		__u64 count;
		size_t order; /* in the walk of the map */
	} *e;
	size_t n, cap;
};

static int collect_drop(const struct net_drop_key *k, __u64 count, void *arg)
{
	struct drop_list *l = arg;

	if (array_reserve((void **)&l->e, l->n, &l->cap, sizeof(*l->e)))
		return -ENOMEM;
	l->e[l->n] = (struct drop_entry){ *k, count, l->n };
	l->n++;
	return 0;
}

/* The kernel's name of a drop reason, or a subsystem's own (6.8+): SUBSYS<<16 | n. */
static const char *drop_reason(const struct net_probe *np, __u32 reason, char *buf, size_t size)
{
	if (reason < NET_DROP_REASONS && np->drop_reason[reason][0])
		return np->drop_reason[reason];
	snprintf(buf, size, "subsys%u_%u", reason >> 16, reason & 0xffff);
	return buf;
}

/* By slot, in the order the walk found them: binary search finds a tap's. */
static int drop_cmp(const void *a, const void *b)
{
	const struct drop_entry *x = a, *y = b;

	if (x->key.slot != y->key.slot)
		return x->key.slot < y->key.slot ? -1 : 1;
	return (x->order > y->order) - (x->order < y->order);
}

/* The first entry of `slot` in the sorted list, or l->n. */
static size_t drops_of_slot(const struct drop_list *l, __u32 slot)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->e[mid].key.slot < slot)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Only series that have dropped something: a reason is not a fixed set. */
static void render_drops(struct probe *p, struct discovery *d, struct expo *e)
{
	struct net_probe *np = p->priv;
	struct drop_list l = {};
	struct strbuf lb;

	if (!np->drops_on)
		return;
	if (net_drops_foreach(np, collect_drop, &l) == -ENOMEM)
		e->out->oom = true;
	qsort(l.e, l.n, sizeof(*l.e), drop_cmp);
	expo_family(e, &fams[F_DROPS]);
	sb_init(&lb);
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		for (int i = 0; i < vm->nr_ifaces; i++) {
			int slot = net_iface_slot(p, &vm->ifaces[i]);

			/* The tap's drops were forgotten when its slot was given (net_slot_alloc). */
			expo_created(e, slot_pool_born(&np->slots, slot));
			for (size_t k = slot >= 0 ? drops_of_slot(&l, (__u32)slot) : l.n;
			     k < l.n && l.e[k].key.slot == (__u32)slot; k++) {
				const struct net_drop_key *key = &l.e[k].key;
				char num[32];

				if (key->dir >= NET_DIR_MAX)
					continue;
				struct expo_label lab[] = {
					{ "interface", vm->ifaces[i].label },
					{ "direction", dir_names[key->dir] },
					{ "reason", drop_reason(np, key->reason, num, sizeof(num)) },
				};

				vm_labels(&lb, vm, lab, ARRAY_SIZE(lab));
				expo_u64(e, fams[F_DROPS].name, lb.buf, l.e[k].count);
			}
		}
	}
	sb_free(&lb);
	free(l.e);
}

/* A VM's host TCP counters, by QEMU's tgid. */
struct host_list {
	struct host_entry {
		__u32 tgid;
		struct net_host_tcp t;
	} *e;
	size_t n, cap;
};

static int collect_host(__u32 tgid, const struct net_host_tcp *t, void *arg)
{
	struct host_list *l = arg;

	if (array_reserve((void **)&l->e, l->n, &l->cap, sizeof(*l->e)))
		return -ENOMEM;
	l->e[l->n].tgid = tgid;
	l->e[l->n++].t = *t;
	return 0;
}

static int host_cmp(const void *a, const void *b)
{
	const struct host_entry *x = a, *y = b;

	return (x->tgid > y->tgid) - (x->tgid < y->tgid);
}

/* QEMU's own TCP sockets on the host, per VM, all read in one walk of their map. */
static void render_host_tcp(struct probe *p, struct discovery *d, struct expo *e)
{
	static const struct net_host_tcp none;
	struct net_probe *np = p->priv;
	struct host_list l = {};
	struct vm *vm;
	struct strbuf lb;
	const struct net_host_tcp **t;
	size_t n = 0, i;

	if (!np->host_tcp_on)
		return;
	for (vm = d->vms; vm; vm = vm->next)
		n++;
	t = malloc((n ? n : 1) * sizeof(*t));
	if (!t || net_host_foreach(np, collect_host, &l) == -ENOMEM) {
		e->out->oom = true;
		goto out;
	}
	qsort(l.e, l.n, sizeof(*l.e), host_cmp);
	sb_init(&lb);
	for (vm = d->vms, i = 0; vm; vm = vm->next, i++) {
		struct host_entry key = { .tgid = (__u32)vm->pid };
		const struct host_entry *h = l.n ? bsearch(&key, l.e, l.n, sizeof(*l.e), host_cmp) : NULL;

		/* None yet (net_host_vm_add failed, said then): all zero, no _created. */
		t[i] = h ? &h->t : &none;
	}
	expo_family(e, &fams[F_HOST_SRTT]);
	for (vm = d->vms, i = 0; vm; vm = vm->next, i++) {
		vm_labels(&lb, vm, NULL, 0);
		expo_created(e, (double)t[i]->born_ns / 1e9);
		expo_histogram(e, fams[F_HOST_SRTT].name, lb.buf, t[i]->srtt_slots, NET_RTT_SLOTS,
			       &e->time_range, t[i]->srtt_sum_ns);
	}
	expo_family(e, &fams[F_HOST_RETRANS]);
	for (vm = d->vms, i = 0; vm; vm = vm->next, i++) {
		vm_labels(&lb, vm, NULL, 0);
		expo_created(e, (double)t[i]->born_ns / 1e9);
		expo_u64(e, fams[F_HOST_RETRANS].name, lb.buf, t[i]->retransmits);
	}
	sb_free(&lb);
out:
	free(t);
	free(l.e);
}

void net_render(struct probe *p, struct discovery *d, struct expo *e)
{
	render_taps(p, d, e);
	render_drops(p, d, e);
	render_host_tcp(p, d, e);
}

static void render_flows(struct net_probe *np, struct expo *e)
{
	long live;
	__u64 evicted = net_flows_evicted(np, &live);

	/* Seen when read: said once, the family counts them all. */
	if (evicted && !np->flows_full_said) {
		np->flows_full_said = true;
		fault_count(FAULT_MAP_FULL);
		log_warn("the TCP flow table is full (network.max_tcp_flows: %u): open flows are "
			 "evicted, their RTT and retransmits no longer followed "
			 "(vmprobe_network_tcp_flows_evicted_total)", np->max_flows);
	}
	metrics_single_u64(e, &fams[F_FLOWS], live > 0 ? (__u64)live : 0);
	metrics_single_u64(e, &fams[F_FLOW_SLOTS], np->max_flows);
	metrics_single_u64(e, &fams[F_FLOWS_CREATED], net_counter(np, NET_TCP_FLOWS_CREATED));
	metrics_single_u64(e, &fams[F_FLOWS_MIDSTREAM], net_counter(np, NET_TCP_FLOWS_MIDSTREAM));
	metrics_single_u64(e, &fams[F_FLOWS_EVICTED], evicted);
	metrics_single_u64(e, &fams[F_FLOW_FAILURES], net_counter(np, NET_TCP_FLOWS_FAILED));
}

static bool bpf_stats_enabled(void)
{
	char buf[8];

	return read_file("/proc/sys/kernel/bpf_stats_enabled", buf, sizeof(buf)) > 0 &&
	       buf[0] == '1';
}

/* Run count and time of the TC programs, only counted while kernel.bpf_stats_enabled=1. */
static void render_prog_stats(struct net_probe *np, struct expo *e)
{
	struct bpf_program *progs[] = { np->skel->progs.vmprobe_tap_ingress,
					np->skel->progs.vmprobe_tap_egress };
	struct bpf_prog_info info[ARRAY_SIZE(progs)];
	struct strbuf lb;

	if (!bpf_stats_enabled())
		return;
	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		__u32 len = sizeof(info[i]);

		memset(&info[i], 0, sizeof(info[i]));
		bpf_obj_get_info_by_fd(bpf_program__fd(progs[i]), &info[i], &len);
	}
	sb_init(&lb);
	expo_family(e, &fams[F_PROG_RUNS]);
	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		struct expo_label l[] = { { "program", bpf_program__name(progs[i]) } };

		sb_reset(&lb);
		expo_labels(&lb, l, 1);
		expo_u64(e, fams[F_PROG_RUNS].name, lb.buf, info[i].run_cnt);
	}
	expo_family(e, &fams[F_PROG_SECONDS]);
	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		struct expo_label l[] = { { "program", bpf_program__name(progs[i]) } };

		sb_reset(&lb);
		expo_labels(&lb, l, 1);
		expo_double(e, fams[F_PROG_SECONDS].name, lb.buf, info[i].run_time_ns / 1e9);
	}
	sb_free(&lb);
}

void net_render_self(struct probe *p, struct discovery *d, struct expo *e)
{
	struct net_probe *np = p->priv;
	unsigned tcx = 0, clsact = 0;

	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		for (int i = 0; i < vm->nr_ifaces; i++) {
			const char *hook = net_iface_hook(p, &vm->ifaces[i]);

			tcx += hook && !strcmp(hook, "tcx");
			clsact += hook && !strcmp(hook, "clsact");
		}
	}
	metrics_single_u64(e, &fams[F_IFACES], tcx + clsact);
	metrics_single_u64(e, &fams[F_IFACE_SLOTS], np->max_ifaces);
	expo_family(e, &fams[F_HOOK]);
	expo_u64(e, fams[F_HOOK].name, np->tcx ? "hook=\"tcx\"" : "hook=\"clsact\"", 1);
	expo_family(e, &fams[F_HOOK_IFACES]);
	expo_u64(e, fams[F_HOOK_IFACES].name, "hook=\"tcx\"", tcx);
	expo_u64(e, fams[F_HOOK_IFACES].name, "hook=\"clsact\"", clsact);
	metrics_single_u64(e, &fams[F_UNKNOWN], net_unknown_frames(np));
	metrics_single_u64(e, &fams[F_UNPARSED], net_counter(np, NET_ERR_NOT_PARSED));
	if (np->max_flows)
		render_flows(np, e);
	render_prog_stats(np, e);
}

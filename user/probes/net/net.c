// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The network probe's programs and maps: choosing the hook, loading, slots, reads. */
#include "probes/net/net_probe.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "net.skel.h"
#include "core/bpfmap.h"
#include "core/caps.h"
#include "core/fault.h"
#include "core/netns.h"
#include "core/pin.h"
#include "core/util.h"

/*
 * Drops come from the kfree_skb tracepoint with its reason argument
 * (Linux 5.17, "net: skb: introduce kfree_skb_reason()"); without it the
 * drop counters are off. Reason names are read from the kernel's BTF.
 */
static void drops_choose(struct net_probe *np, struct net_bpf *skel, const struct btf *btf)
{
	const struct btf_type *t;
	int id;

	np->drops_on = btf && btf__find_by_name_kind(btf, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF) > 0;
	id = btf ? btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM) : -1;
	if (id <= 0)
		np->drops_on = false;
	if (np->drops_on) {
		const struct btf_enum *e;

		t = btf__type_by_id(btf, id);
		e = btf_enum(t);
		for (int i = 0; i < btf_vlen(t); i++, e++) {
			const char *name = btf__name_by_offset(btf, e->name_off);

			if (e->val < 0 || e->val >= NET_DROP_REASONS || !name)
				continue;
			if (!strncmp(name, "SKB_DROP_REASON_", 16))
				name += 16;
			snprintf(np->drop_reason[e->val], sizeof(np->drop_reason[0]), "%s", name);
		}
	} else {
		log_warn("no kfree_skb drop reasons in this kernel: vmprobe_network_drops_total is off");
	}
	bpf_program__set_autoload(skel->progs.net_kfree_skb, np->drops_on);
	/* Every drop on the host runs it: attached only while a tap is counted (net_drop_hook). */
	bpf_program__set_autoattach(skel->progs.net_kfree_skb, false);
	/* QEMU's own TCP sockets: the tcp tracepoints (4.16+, BTF-typed 5.5+). */
	np->host_tcp_on = btf && btf__find_by_name_kind(btf, "btf_trace_tcp_probe", BTF_KIND_TYPEDEF) > 0 &&
			  btf__find_by_name_kind(btf, "btf_trace_tcp_retransmit_skb", BTF_KIND_TYPEDEF) > 0;
	if (!np->host_tcp_on)
		log_warn("no tcp_probe/tcp_retransmit_skb tracepoints: QEMU's host TCP sockets are not measured");
	bpf_program__set_autoload(skel->progs.host_tcp_probe, np->host_tcp_on);
	bpf_program__set_autoload(skel->progs.host_tcp_retransmit, np->host_tcp_on);
	/* Attached by net_host_tcp_hooks() only while there are sockets to watch. */
	bpf_program__set_autoattach(skel->progs.host_tcp_probe, false);
	bpf_program__set_autoattach(skel->progs.host_tcp_retransmit, false);
}

/*
 * A TCX link is an fd, two per tap, beside a VM's network namespace fd:
 * 1024 single-tap VMs take about 3100, past the usual soft limit of 1024
 * open files. Nothing of vmprobe's uses select(): the soft limit goes up
 * to the hard one.
 */
static void nofile_reserve(unsigned max_ifaces)
{
	rlim_t want = (rlim_t)max_ifaces * 3 + 512;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_warn("RLIMIT_NOFILE lets vmprobe open %llu files, fewer than the %llu that "
			 "%u taps (network.max_interfaces) may take as TCX links: raise its hard "
			 "limit or set network.tc_hook: clsact", (unsigned long long)rl.rlim_cur,
			 (unsigned long long)want, max_ifaces);
}

/* TCX where asked or, by default, where the kernel has it; clsact otherwise. */
static int hook_choose(struct net_probe *np, enum tc_hook hook, const struct btf *btf)
{
	bool have_tcx = tcx_supported(btf);

	if (hook == TC_HOOK_TCX && !have_tcx) {
		log_error("network.tc_hook is tcx, but this kernel has no TCX (Linux 6.6+): "
			  "set it to auto or clsact");
		return -EOPNOTSUPP;
	}
	np->tcx = hook == TC_HOOK_TCX || (hook == TC_HOOK_AUTO && have_tcx);
	if (np->tcx)
		nofile_reserve(np->max_ifaces);
	log_info("network probe: TC programs attach as %s", np->tcx ? "TCX links" : "clsact filters");
	return 0;
}

int net_maps_size(struct net_bpf *skel, unsigned nr_cpus, const struct net_sizes *sz)
{
	size_t cells = (size_t)nr_cpus * sz->ifaces * NET_DIR_MAX;
	int err;

	if (cells > UINT32_MAX / 2)
		return -E2BIG;
	skel->rodata->max_ifaces = sz->ifaces;
	err = bpf_map__set_max_entries(skel->maps.net_ifaces, sz->ifaces);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.net_born, sz->ifaces);
	/* Each tap's slot record, pinned for the next serve to adopt the tap. */
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.net_slots, sz->ifaces);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.net_stats, (__u32)cells);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.net_tcp, sz->ifaces * NET_DIR_MAX);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.net_flows, sz->flows ? sz->flows : 1);
	/* Drop kinds: a few reasons per tap and direction. */
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.net_drops, sz->ifaces * NET_DROPS_PER_IFACE);
	/* QEMU's host socket counters, one entry per VM. */
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.host_tcp, sz->vms);
	return err;
}

/* Sizes the maps and sets what the kernel can do; 0 or -errno. */
static int net_size(struct net_probe *np, struct net_bpf *skel, const struct net_sizes *sz)
{
	int err = net_maps_size(skel, np->nr_cpus, sz);

	if (err)
		return err;
	/*
	 * In TC, bpf_get_netns_cookie(skb) is the netns of skb->sk, init_net's
	 * for a frame with no socket (all a guest sends): right for
	 * BPF_PROG_TEST_RUN's frames, which carry a socket of the caller's
	 * netns, wrong on a real hook. Programs that look every slot up key it
	 * by ifindex alone.
	 */
	np->have_netns_cookie =
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_get_netns_cookie, NULL) == 1;
	skel->rodata->have_netns_cookie = np->have_netns_cookie;
	if (!np->have_netns_cookie)
		log_info("this kernel's TC programs lack bpf_get_netns_cookie(): the fallback "
			 "lookup keys taps by ifindex only (the classid path is unaffected)");
	np->max_flows = sz->flows;
	skel->rodata->tcp_on = sz->flows > 0;
	np->stats_len = (size_t)np->nr_cpus * sz->ifaces * NET_DIR_MAX * sizeof(struct net_pkt_cell);
	np->tcp_len = (size_t)sz->ifaces * NET_DIR_MAX * sizeof(struct net_tcp_cell);
	np->born_len = (size_t)sz->ifaces * sizeof(*np->born);
	return 0;
}

/* Loads and fills the taps' tail-call array; 0 or -errno. */
static int net_load(struct net_probe *np, struct net_bpf *skel)
{
	int err;

	caps_load_note(skel->obj);
	err = net_bpf__load(skel);
	if (err)
		return err;
	/* Where the taps' own programs of TCX links go on to, [0] ingress, [1] egress. */
	for (__u32 i = 0; i < 2; i++) {
		int fd = net_prog_fd(np, i == 0);

		if (bpf_map_update_elem(net_tap_progs_fd(np), &i, &fd, BPF_ANY))
			return -errno;
	}
	return 0;
}

/*
 * kfree_skb runs for every frame the host drops, VM or not: attached only
 * while a tap is counted, so that a host without VMs pays nothing for it.
 */
void net_drop_hook(struct net_probe *np)
{
	struct net_bpf *skel = np->skel;
	bool on = np->nr_taps > 0;
	int err;

	if (!np->drops_on || on == !!skel->links.net_kfree_skb)
		return;
	if (!on) {
		/* Taps an earlier serve left are not all claimed yet. */
		if (net_adopting(np))
			return;
		pins_link_end(np->pins, skel->links.net_kfree_skb);
		skel->links.net_kfree_skb = NULL;
		return;
	}
	skel->links.net_kfree_skb = pins_link_attach(np->pins, skel->progs.net_kfree_skb);
	err = skel->links.net_kfree_skb ? 0 : -errno;
	/* Tried again at the next tap; said once. */
	if (err && err != np->drops_err) {
		char hint[CAPS_HINT_MAX];

		log_error("attaching the kfree_skb tracepoint failed (%s): "
			  "vmprobe_network_drops_total does not count%s", strerror(-err),
			  caps_hint(hint, sizeof(hint), -err, CAP_BIT(CAP_PERFMON), true));
	}
	np->drops_err = err;
}

int net_probe_open(struct net_probe *np, const struct net_sizes *sz, enum tc_hook hook,
		   struct probe_pins *pins)
{
	struct btf *btf = NULL;
	struct net_bpf *skel;
	int err, ncpus;

	memset(np, 0, sizeof(*np));
	np->pins = pins;
	ncpus = libbpf_num_possible_cpus();
	if (ncpus < 0)
		return ncpus;
	skel = net_bpf__open();
	if (!skel)
		return -errno;
	np->skel = skel;
	np->max_ifaces = sz->ifaces;
	np->nr_cpus = ncpus;
	err = net_size(np, skel, sz);
	if (err)
		goto cleanup;
	btf = btf__load_vmlinux_btf();
	err = hook_choose(np, hook, btf);
	if (err)
		goto cleanup;
	drops_choose(np, skel, btf);
	pins_prepare(pins, "net", skel->obj, net_bpf__elf_bytes);
	err = net_load(np, skel);
	if (err)
		goto cleanup;
	pins_commit(pins);
	err = bpf_array_mmap(bpf_map__fd(skel->maps.net_stats), np->stats_len, &np->stats);
	if (!err)
		err = bpf_array_mmap(bpf_map__fd(skel->maps.net_tcp), np->tcp_len, &np->tcp);
	if (!err)
		err = bpf_array_mmap(bpf_map__fd(skel->maps.net_born), np->born_len, &np->born);
	if (!err)
		err = slot_pool_init(&np->slots, sz->ifaces, np->born);
	if (!err)
		err = net_adopt_open(np);
cleanup:
	btf__free(btf);
	if (err)
		net_probe_close(np);
	return err;
}

void net_probe_close(struct net_probe *np)
{
	if (np->skel) {
		pins_link_end(np->pins, np->skel->links.net_kfree_skb);
		pins_link_end(np->pins, np->skel->links.host_tcp_probe);
		pins_link_end(np->pins, np->skel->links.host_tcp_retransmit);
		np->skel->links.net_kfree_skb = NULL;
		np->skel->links.host_tcp_probe = np->skel->links.host_tcp_retransmit = NULL;
	}
	net_adopt_free(np);
	if (np->stats)
		munmap(np->stats, np->stats_len);
	if (np->tcp)
		munmap(np->tcp, np->tcp_len);
	slot_pool_fini(&np->slots);
	if (np->born)
		munmap(np->born, np->born_len);
	net_bpf__destroy(np->skel);
	memset(np, 0, sizeof(*np));
}

struct drop_walk {
	int (*fn)(const struct net_drop_key *k, __u64 count, void *arg);
	void *arg;
};

static int drop_entry(const void *key, const void *value, void *arg)
{
	const struct drop_walk *w = arg;

	return w->fn(key, *(const __u64 *)value, w->arg);
}

int net_drops_foreach(const struct net_probe *np,
		      int (*fn)(const struct net_drop_key *k, __u64 count, void *arg), void *arg)
{
	struct drop_walk w = { fn, arg };

	return bpf_hash_foreach(bpf_map__fd(np->skel->maps.net_drops), sizeof(struct net_drop_key),
				sizeof(__u64), drop_entry, &w);
}

struct slot_drops {
	unsigned slot;
	struct net_drop_key keys[NET_DIR_MAX * NET_DROPS_PER_IFACE];
	unsigned n;
};

static int drop_of_slot(const struct net_drop_key *k, __u64 count, void *arg)
{
	struct slot_drops *sd = arg;

	if (k->slot == sd->slot && sd->n < ARRAY_SIZE(sd->keys))
		sd->keys[sd->n++] = *k;
	return 0;
}

/* A reused slot starts with no drops of the tap it last belonged to. */
static void drops_forget_slot(struct net_probe *np, unsigned slot)
{
	int fd = bpf_map__fd(np->skel->maps.net_drops);
	struct slot_drops sd = { .slot = slot };

	/* Again while a walk fills the list: the programs may add more than it holds. */
	do {
		sd.n = 0;
		net_drops_foreach(np, drop_of_slot, &sd);
		for (unsigned i = 0; i < sd.n; i++)
			bpf_map_delete_elem(fd, &sd.keys[i]);
	} while (sd.n == ARRAY_SIZE(sd.keys));
}

int net_slot_alloc(struct net_probe *np)
{
	int slot = slot_pool_get(&np->slots);

	if (slot < 0)
		return slot;
	drops_forget_slot(np, slot);
	for (unsigned dir = 0; dir < NET_DIR_MAX; dir++) {
		for (unsigned cpu = 0; cpu < np->nr_cpus; cpu++)
			memset(&np->stats[net_stats_index(cpu, slot, dir, np->max_ifaces)], 0,
			       sizeof(struct net_pkt_cell));
		memset(&np->tcp[net_tcp_index(slot, dir)], 0, sizeof(struct net_tcp_cell));
	}
	return slot;
}

void net_slot_free(struct net_probe *np, unsigned slot)
{
	slot_pool_put(&np->slots, slot);
}

int net_tap_attach(struct net_probe *np, int ifindex, unsigned slot, struct tc_attachment *a)
{
	struct net_iface_key key = {};
	int err, tcx_err = 0;

	a->tcx_err = 0;
	if (np->have_netns_cookie) {
		err = netns_current_cookie(&key.netns_cookie);
		if (err)
			return err;
	}
	key.ifindex = ifindex;
	/* The slot must exist before the first frame can look for it. */
	if (bpf_map_update_elem(net_ifaces_fd(np), &key, &slot, BPF_ANY))
		return -errno;
	/*
	 * Filters an earlier vmprobe left under clsact (killed, or a serve on
	 * that hook whose pins were not adopted) would count beside our links.
	 */
	if (np->tcx)
		tc_remove_stale(ifindex, NULL);
	/* The programs read their slot back as skb->tc_classid - 1. */
	if (np->tcx)
		tcx_err = tcx_attach_pair(ifindex, net_tap_progs_fd(np), slot + 1, a);
	/*
	 * Where a TCX attach fails and clsact may not (the hook full of other
	 * tools' programs, a policy that refuses links, no fd left for one),
	 * the tap hangs from clsact filters instead. A tap that is gone is
	 * gone for both.
	 */
	err = tcx_err;
	if (!np->tcx || (tcx_err && tcx_err != -ENODEV)) {
		err = tc_attach_pair(ifindex, net_prog_fd(np, true), net_prog_fd(np, false), slot + 1,
				     a);
		if (!err && tcx_err)
			fault_count(FAULT_TCX);
	}
	a->tcx_err = tcx_err;
	if (err) {
		bpf_map_delete_elem(net_ifaces_fd(np), &key);
		return err;
	}
	net_tap_counted(np, a);
	return 0;
}

void net_tap_counted(struct net_probe *np, const struct tc_attachment *a)
{
	net_slot_record(np, a);
	np->nr_taps++;
	net_drop_hook(np);
}

void net_tap_forget(struct net_probe *np, __u64 netns_cookie, int ifindex)
{
	struct net_iface_key key = {};

	key.netns_cookie = np->have_netns_cookie ? netns_cookie : 0;
	key.ifindex = ifindex;
	bpf_map_delete_elem(net_ifaces_fd(np), &key);
}

int net_tap_detach(struct net_probe *np, __u64 netns_cookie, struct tc_attachment *a)
{
	int err;

	net_slot_unrecord(np, a);
	err = tc_detach_pair(a);
	net_tap_forget(np, netns_cookie, a->ifindex);
	if (np->nr_taps)
		np->nr_taps--;
	net_drop_hook(np);
	return err;
}

/* dst[i] += src[i] for n counters, each read whole (aligned 64-bit loads). */
static void add_counters(__u64 *dst, const __u64 *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void net_read(const struct net_probe *np, unsigned slot, unsigned dir, struct net_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned cpu = 0; cpu < np->nr_cpus; cpu++)
		add_counters((__u64 *)&out->pkt,
			     (const __u64 *)&np->stats[net_stats_index(cpu, slot, dir, np->max_ifaces)],
			     sizeof(out->pkt) / sizeof(__u64));
	add_counters((__u64 *)&out->tcp, (const __u64 *)&np->tcp[net_tcp_index(slot, dir)],
		     sizeof(out->tcp) / sizeof(__u64));
}

__u64 net_counter(const struct net_probe *np, enum net_err which)
{
	return bpf_percpu_sum(bpf_map__fd(np->skel->maps.net_errors), which);
}

__u64 net_unknown_frames(const struct net_probe *np)
{
	return net_counter(np, NET_ERR_UNKNOWN_IFACE);
}

static int count_entry(const void *key, const void *value, void *arg)
{
	(*(long *)arg)++;
	return 0;
}

long net_flows_live(const struct net_probe *np)
{
	long n = 0;
	int err = bpf_hash_foreach(bpf_map__fd(np->skel->maps.net_flows),
				   sizeof(struct net_flow_key), sizeof(struct net_flow),
				   count_entry, &n);

	return err ? err : n;
}

__u64 net_flows_evicted(struct net_probe *np, long *live_out)
{
	/*
	 * The kernel evicts from an LRU map without telling: what was made
	 * and is neither closed nor still there was evicted. Read "created"
	 * before the walk and "closed" after it: a flow made or closed
	 * meanwhile then lowers the estimate for one scrape, never raises it
	 * for good (the walk may count an entry twice, never skips one that
	 * stays). The counter only goes up.
	 */
	__u64 created = net_counter(np, NET_TCP_FLOWS_CREATED);
	long live = net_flows_live(np);
	__u64 closed = net_counter(np, NET_TCP_FLOWS_CLOSED);
	__u64 gone = created - closed;

	*live_out = live;

	if (live >= 0 && gone > (__u64)live && gone - live > np->flows_evicted)
		np->flows_evicted = gone - live;
	return np->flows_evicted;
}

int net_prog_fd(const struct net_probe *np, bool ingress)
{
	return bpf_program__fd(ingress ? np->skel->progs.vmprobe_tap_ingress
				       : np->skel->progs.vmprobe_tap_egress);
}

int net_tap_progs_fd(const struct net_probe *np)
{
	return bpf_map__fd(np->skel->maps.net_tap_progs);
}

int net_ifaces_fd(const struct net_probe *np)
{
	return bpf_map__fd(np->skel->maps.net_ifaces);
}

int net_host_vm_add(struct net_probe *np, __u32 tgid)
{
	struct net_host_tcp fresh = {};

	if (!np->host_tcp_on)
		return 0;
	fresh.born_ns = realtime_ns();
	/* An entry an earlier serve made goes on counting, its birth kept. */
	if (bpf_map_update_elem(bpf_map__fd(np->skel->maps.host_tcp), &tgid, &fresh, BPF_NOEXIST) &&
	    errno != EEXIST)
		return -errno;
	return 0;
}

void net_host_vm_del(struct net_probe *np, __u32 tgid)
{
	if (np->host_tcp_on)
		bpf_map_delete_elem(bpf_map__fd(np->skel->maps.host_tcp), &tgid);
}

/*
 * tcp_probe runs for every segment any established socket on the host
 * receives: its hooks stay off while no QEMU socket is watched, so a host
 * whose VMs have no TCP sockets of their own pays nothing for them.
 */
int net_host_tcp_hooks(struct net_probe *np, bool on)
{
	struct net_bpf *skel = np->skel;
	int err = 0;

	if (!np->host_tcp_on || on == !!skel->links.host_tcp_probe)
		return 0;
	if (!on) {
		/* Sockets an earlier serve watched are not all claimed yet. */
		if (net_adopting(np))
			return 0;
		pins_link_end(np->pins, skel->links.host_tcp_probe);
		pins_link_end(np->pins, skel->links.host_tcp_retransmit);
		skel->links.host_tcp_probe = skel->links.host_tcp_retransmit = NULL;
		log_debug("QEMU host TCP hooks detached: no socket to watch");
		return 0;
	}
	skel->links.host_tcp_probe = pins_link_attach(np->pins, skel->progs.host_tcp_probe);
	if (!skel->links.host_tcp_probe)
		err = -errno;
	if (!err) {
		skel->links.host_tcp_retransmit =
			pins_link_attach(np->pins, skel->progs.host_tcp_retransmit);
		if (!skel->links.host_tcp_retransmit)
			err = -errno;
	}
	if (err) {
		pins_link_end(np->pins, skel->links.host_tcp_probe);
		skel->links.host_tcp_probe = NULL;
		/* Tried again at every scan of a VM with sockets: said once. */
		if (err != np->host_tcp_err) {
			char hint[CAPS_HINT_MAX];

			log_error("attaching the tcp_probe and tcp_retransmit_skb tracepoints failed "
				  "(%s): QEMU's host TCP sockets are not measured%s", strerror(-err),
				  caps_hint(hint, sizeof(hint), -err, CAP_BIT(CAP_PERFMON), true));
		}
		np->host_tcp_err = err;
		return err;
	}
	np->host_tcp_err = 0;
	log_debug("QEMU host TCP hooks attached");
	return 0;
}

/* One socket of the VM's into host_socks: 0, or -errno (an entry there already is 0). */
static int host_sock_add(struct net_probe *np, int fd, __u64 ino, __u32 tgid)
{
	if (bpf_map_update_elem(fd, &ino, &tgid, BPF_NOEXIST) == 0) {
		np->host_socks_nr++;
		return 0;
	}
	return errno == EEXIST ? 0 : -errno;
}

int net_host_socks_set(struct net_probe *np, __u32 tgid, const __u64 *old, size_t nr_old,
		       const __u64 *now, size_t nr_now, bool retry)
{
	int fd, e, err = 0;
	size_t i = 0, j = 0;

	if (!np->host_tcp_on)
		return 0;
	fd = bpf_map__fd(np->skel->maps.host_socks);
	/* Both sorted: one merge pass adds the new and removes the gone. */
	while (i < nr_old || j < nr_now) {
		if (j == nr_now || (i < nr_old && old[i] < now[j])) {
			if (!bpf_map_delete_elem(fd, &old[i]))
				np->host_socks_nr--;
			i++;
		} else if (i == nr_old || now[j] < old[i] || retry) {
			/* With retry, one kept may have found no room before. */
			if ((e = host_sock_add(np, fd, now[j], tgid)))
				err = e;
			i += i < nr_old && old[i] == now[j];
			j++;
		} else {
			i++, j++;
		}
	}
	np->skel->bss->host_socks_nr = np->host_socks_nr;
	/* Its failure is logged there, once, and tried again at the next call. */
	net_host_tcp_hooks(np, np->host_socks_nr > 0);
	return err;
}

struct host_walk {
	int (*fn)(__u32 tgid, const struct net_host_tcp *t, void *arg);
	void *arg;
};

static int host_entry(const void *key, const void *value, void *arg)
{
	const struct host_walk *w = arg;

	return w->fn(*(const __u32 *)key, value, w->arg);
}

int net_host_foreach(const struct net_probe *np,
		     int (*fn)(__u32 tgid, const struct net_host_tcp *t, void *arg), void *arg)
{
	struct host_walk w = { fn, arg };

	if (!np->host_tcp_on)
		return 0;
	return bpf_hash_foreach(bpf_map__fd(np->skel->maps.host_tcp), sizeof(__u32),
				sizeof(struct net_host_tcp), host_entry, &w);
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The network probe's pins: what each slot counts (the net_slots record)
 * and its TCX links, kept for the next serve; and adopting what an
 * earlier serve kept, so that its taps go on counting into their slots
 * without a gap. Maps come back through core/pin.c.
 */
#include "probes/net/net_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/netns.h"
#include "core/pin.h"
#include "core/util.h"
#include "net.skel.h"

/* links/tapSLOT_in and _eg: a slot's TCX links (bpffs refuses dots in names). */
static void tap_link_name(char *buf, size_t size, unsigned slot, int dir)
{
	snprintf(buf, size, "tap%u_%s", slot, dir == 0 ? "in" : "eg");
}

static int slots_fd(const struct net_probe *np)
{
	return bpf_map__fd(np->skel->maps.net_slots);
}

void net_slot_record(struct net_probe *np, const struct tc_attachment *a)
{
	struct net_slot rec = { .ifindex = (__u32)a->ifindex, .flags = NET_SLOT_USED };
	__u32 slot = a->classid - 1;
	char name[32];

	if (!pins_on(np->pins))
		return;
	/* Called in the tap's namespace, where it was attached. */
	if (netns_current_cookie(&rec.netns_cookie))
		return;
	rec.flags |= (a->tcx ? NET_SLOT_TCX : 0) | (a->created_qdisc ? NET_SLOT_QDISC : 0);
	/* Links first: a record always has its links, if any. */
	for (int i = 0; a->tcx && i < 2; i++) {
		tap_link_name(name, sizeof(name), slot, i);
		if (pins_fd_pin(np->pins, a->link_fd[i], name))
			log_warn("cannot pin the TCX links of ifindex %d: they will not outlive this "
				 "serve", a->ifindex);
	}
	if (bpf_map_update_elem(slots_fd(np), &slot, &rec, BPF_ANY))
		log_warn("cannot record slot %u: the next serve will not adopt it", slot);
}

void net_slot_unrecord(struct net_probe *np, struct tc_attachment *a)
{
	struct net_slot rec = {};
	__u32 slot = a->classid - 1;
	char name[32];

	if (!pins_on(np->pins))
		return;
	bpf_map_update_elem(slots_fd(np), &slot, &rec, BPF_ANY);
	for (int i = 0; a->tcx && i < 2; i++) {
		if (!a->attached[i])
			continue;
		tap_link_name(name, sizeof(name), slot, i);
		pins_fd_end(np->pins, a->link_fd[i], name);
		a->attached[i] = false;
	}
}

void net_tap_leave(struct net_probe *np, struct tc_attachment *a)
{
	for (int i = 0; a->tcx && i < 2; i++)
		if (a->attached[i])
			close(a->link_fd[i]);
	a->attached[0] = a->attached[1] = false;
	if (np->nr_taps)
		np->nr_taps--;
}

bool net_adopting(const struct net_probe *np)
{
	return np->adopt != NULL;
}

/* QEMU's sockets the earlier serve watched, to be claimed by their VMs. */
static int adopt_socks_read(struct net_probe *np)
{
	int fd = bpf_map__fd(np->skel->maps.host_socks);
	__u64 key, next, *prev = NULL;
	size_t cap = 0;
	__u32 tgid;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &tgid))
			continue;
		if (np->nr_adopt_socks == cap) {
			struct net_host_sock *n;

			cap = cap ? cap * 2 : 64;
			n = realloc(np->adopt_socks, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			np->adopt_socks = n;
		}
		np->adopt_socks[np->nr_adopt_socks++] = (struct net_host_sock){ key, tgid };
	}
	np->host_socks_nr = (unsigned)np->nr_adopt_socks;
	np->skel->bss->host_socks_nr = np->host_socks_nr;
	return 0;
}

/* The earlier serve's hooks, kept as they are until net_adopted() judges them. */
static void adopt_hooks(struct net_probe *np)
{
	struct net_bpf *skel = np->skel;

	if (np->drops_on)
		skel->links.net_kfree_skb = pins_link_adopt(np->pins, skel->progs.net_kfree_skb);
	if (!np->host_tcp_on)
		return;
	skel->links.host_tcp_probe = pins_link_adopt(np->pins, skel->progs.host_tcp_probe);
	skel->links.host_tcp_retransmit = pins_link_adopt(np->pins, skel->progs.host_tcp_retransmit);
	if (!skel->links.host_tcp_probe != !skel->links.host_tcp_retransmit) {
		/* Half a pair: attached whole again at the first VM with sockets. */
		pins_link_end(np->pins, skel->links.host_tcp_probe);
		pins_link_end(np->pins, skel->links.host_tcp_retransmit);
		skel->links.host_tcp_probe = skel->links.host_tcp_retransmit = NULL;
	}
}

int net_adopt_open(struct net_probe *np)
{
	unsigned taps = 0;
	int fd;

	if (!pins_on(np->pins) || !np->pins->adopting)
		return 0;
	np->adopt = calloc(np->max_ifaces, sizeof(*np->adopt));
	if (!np->adopt)
		return -ENOMEM;
	fd = slots_fd(np);
	for (__u32 s = 0; s < np->max_ifaces; s++) {
		struct net_slot *r = &np->adopt[s];

		if (bpf_map_lookup_elem(fd, &s, r) || !(r->flags & NET_SLOT_USED) ||
		    slot_pool_take(&np->slots, s)) {
			memset(r, 0, sizeof(*r));
			continue;
		}
		taps++;
	}
	adopt_hooks(np);
	log_info("network probe: %u taps counted by the earlier serve, to be claimed by their VMs",
		 taps);
	return adopt_socks_read(np);
}

void net_adopt_free(struct net_probe *np)
{
	free(np->adopt);
	free(np->adopt_socks);
	free(np->adopt_tgids);
	np->adopt = NULL;
	np->adopt_socks = NULL;
	np->adopt_tgids = NULL;
	np->nr_adopt_socks = np->nr_adopt_tgids = np->cap_adopt_tgids = 0;
}

int net_tap_claim(struct net_probe *np, __u64 netns_cookie, int ifindex, struct net_slot *rec)
{
	for (unsigned s = 0; np->adopt && s < np->max_ifaces; s++) {
		struct net_slot *r = &np->adopt[s];

		if (r->flags && r->netns_cookie == netns_cookie && r->ifindex == (__u32)ifindex) {
			*rec = *r;
			memset(r, 0, sizeof(*r));
			return (int)s;
		}
	}
	return -ENOENT;
}

/* Takes over the slot's hooks as the earlier serve left them; 0 or -errno (none left). */
static int hooks_take(struct net_probe *np, int ifindex, unsigned slot, const struct net_slot *rec,
		      struct tc_attachment *a)
{
	char name[2][32];
	int link[2], err = -ENOENT;

	if (!(rec->flags & NET_SLOT_TCX)) {
		/* Filters of another hook than ours would count beside it. */
		if (np->tcx) {
			tc_remove_stale(ifindex, NULL);
			if (rec->flags & NET_SLOT_QDISC)
				tc_clsact_drop_empty(ifindex);
			return -ENOENT;
		}
		return tc_adopt_pair(ifindex, net_prog_fd(np, true), net_prog_fd(np, false), slot + 1,
				     rec->flags & NET_SLOT_QDISC, a);
	}
	for (int i = 0; i < 2; i++) {
		tap_link_name(name[i], sizeof(name[i]), slot, i);
		link[i] = pins_fd_adopt(np->pins, name[i]);
	}
	if (np->tcx && link[0] >= 0 && link[1] >= 0)
		err = tcx_adopt_pair(ifindex, bpf_map__fd(np->skel->maps.net_tap_progs), slot + 1, link,
				     a);
	/* Not taken over: the earlier serve's links go (a link no one holds detaches). */
	for (int i = 0; err && i < 2; i++)
		pins_fd_end(np->pins, link[i], name[i]);
	return err;
}

int net_tap_adopt(struct net_probe *np, int ifindex, unsigned slot, const struct net_slot *rec,
		  struct tc_attachment *a)
{
	int err = hooks_take(np, ifindex, slot, rec, a);

	if (!err) {
		net_tap_counted(np, a);
		return 0;
	}
	log_info("ifindex %d: the earlier serve's programs could not be taken over (%s): attached "
		 "again, its counters go on; frames in between are not counted", ifindex,
		 strerror(-err));
	err = net_tap_attach(np, ifindex, slot, a);
	/* The clsact the earlier serve made is still vmprobe's to remove when done. */
	if (!err && !a->tcx && !a->created_qdisc && (rec->flags & NET_SLOT_QDISC)) {
		a->created_qdisc = true;
		net_slot_record(np, a);
	}
	return err;
}

__u64 *net_host_adopt_socks(struct net_probe *np, __u32 tgid, size_t *nr)
{
	__u64 *socks = NULL;
	size_t cap = 0;

	*nr = 0;
	if (!net_adopting(np))
		return NULL;
	u64_push(&np->adopt_tgids, &np->nr_adopt_tgids, &np->cap_adopt_tgids, tgid);
	for (size_t i = 0; i < np->nr_adopt_socks; i++)
		if (np->adopt_socks[i].tgid == tgid)
			u64_push(&socks, nr, &cap, np->adopt_socks[i].ino);
	if (*nr)
		qsort(socks, *nr, sizeof(*socks), cmp_u64);
	return socks;
}

static bool tgid_claimed(const struct net_probe *np, __u32 tgid)
{
	for (size_t i = 0; i < np->nr_adopt_tgids; i++)
		if (np->adopt_tgids[i] == tgid)
			return true;
	return false;
}

/*
 * A slot the earlier serve counted whose tap no VM has now. Its TCX links
 * go with their pins; clsact filters are removed where vmprobe can reach
 * them (its own namespace), else the slot is retired: they may still
 * count into it.
 */
static void slot_release(struct net_probe *np, __u32 slot, const struct net_slot *rec, __u64 home)
{
	struct net_iface_key key = { .ifindex = rec->ifindex };
	struct net_slot none = {};
	bool retire = false;
	char name[32];
	__u32 v;

	for (int i = 0; (rec->flags & NET_SLOT_TCX) && i < 2; i++) {
		tap_link_name(name, sizeof(name), slot, i);
		pins_fd_end(np->pins, -1, name);
	}
	if (!(rec->flags & NET_SLOT_TCX)) {
		retire = rec->netns_cookie != home;
		if (!retire)
			tc_remove_stale((int)rec->ifindex, NULL);
	}
	key.netns_cookie = np->have_netns_cookie ? rec->netns_cookie : 0;
	if (!bpf_map_lookup_elem(net_ifaces_fd(np), &key, &v) && v == slot)
		bpf_map_delete_elem(net_ifaces_fd(np), &key);
	bpf_map_update_elem(slots_fd(np), &slot, &none, BPF_ANY);
	if (retire)
		log_warn("slot %u (ifindex %u) of the earlier serve: its tap is gone from vmprobe's "
			 "view and its clsact filters cannot be reached; the slot is retired", slot,
			 rec->ifindex);
	else
		net_slot_free(np, slot);
}

/* Links of slots this serve does not count: left by a serve killed while attaching. */
static int stray_link(const char *name, void *arg)
{
	struct net_probe *np = arg;
	unsigned slot;
	char dir[3];

	if (sscanf(name, "tap%u_%2s", &slot, dir) == 2 &&
	    (slot >= np->max_ifaces || !np->slots.used[slot]))
		pins_fd_end(np->pins, -1, name);
	return 0;
}

/* Sockets and counters of QEMU processes no VM claimed. */
static void host_release(struct net_probe *np)
{
	int fd = bpf_map__fd(np->skel->maps.host_tcp);
	__u32 key, next, *prev = NULL;

	for (size_t i = 0; i < np->nr_adopt_socks; i++) {
		if (tgid_claimed(np, np->adopt_socks[i].tgid))
			continue;
		if (!bpf_map_delete_elem(bpf_map__fd(np->skel->maps.host_socks),
					 &np->adopt_socks[i].ino) && np->host_socks_nr)
			np->host_socks_nr--;
	}
	np->skel->bss->host_socks_nr = np->host_socks_nr;
	while (np->host_tcp_on && bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		if (!tgid_claimed(np, key) && !bpf_map_delete_elem(fd, &key)) {
			prev = NULL; /* deleting breaks the walk: start over */
			continue;
		}
		prev = &key;
	}
}

void net_adopted(struct net_probe *np)
{
	unsigned released = 0;
	__u64 home = 0;

	if (!net_adopting(np))
		return;
	netns_current_cookie(&home);
	for (__u32 s = 0; s < np->max_ifaces; s++)
		if (np->adopt[s].flags) {
			slot_release(np, s, &np->adopt[s], home);
			released++;
		}
	pins_links_foreach(np->pins, stray_link, np);
	host_release(np);
	net_adopt_free(np);
	if (released)
		log_info("network probe: released %u slots of taps the earlier serve counted that "
			 "no VM has now", released);
	net_drop_hook(np);
	net_host_tcp_hooks(np, np->host_socks_nr > 0);
}

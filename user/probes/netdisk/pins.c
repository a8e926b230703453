// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The network-disk probe across serve restarts (persist): its uprobe
 * links pinned per QEMU process as links/PID_STARTTIME_FUNCTION[_COOKIE], and each
 * drive slot's owner (VM and drive label) in netdisk_owners, so that the
 * uprobes go on counting while no serve runs and the next serve gives
 * every drive its slot and sessions back; what belonged to a QEMU that
 * exited meanwhile is released after serve's first scan. The maps come
 * back through core/pin.c.
 */
#include "probes/netdisk/netdisk_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/discovery.h"
#include "core/pin.h"
#include "netdisk.skel.h"

int netdisk_adopt_open(struct netdisk_probe *np)
{
	int fd = bpf_map__fd(np->skel->maps.netdisk_owners);
	__u32 key, next, *prev = NULL;
	size_t cap = 0;

	if (!pins_on(np->pins) || !np->pins->adopting)
		return 0;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct netdisk_adopt *a;

		key = next;
		prev = &key;
		if (np->nr_adopt == cap) {
			cap = cap ? cap * 2 : 16;
			a = realloc(np->adopt, cap * sizeof(*a));
			if (!a)
				return -ENOMEM;
			np->adopt = a;
		}
		a = &np->adopt[np->nr_adopt];
		if (key >= np->store.max_drives || bpf_map_lookup_elem(fd, &key, &a->owner) ||
		    slot_pool_take(&np->store.slots, key))
			continue;
		a->owner.label[sizeof(a->owner.label) - 1] = '\0';
		a->slot = key;
		a->claimed = false;
		np->nr_adopt++;
	}
	/* Sessions left staged: their first request went to the earlier serve. */
	ring_buffer__consume(np->events);
	netdisk_staged_announce(np);
	log_info("netdisk probe: %zu drive slots of the earlier serve, to be claimed by their "
		 "drives", np->nr_adopt);
	return 0;
}

void netdisk_adopt_free(struct netdisk_probe *np)
{
	free(np->adopt);
	np->adopt = NULL;
	np->nr_adopt = 0;
}

int netdisk_slot_claim(struct netdisk_probe *np, const struct vm *vm, const char *label)
{
	for (size_t i = 0; i < np->nr_adopt; i++) {
		struct netdisk_adopt *a = &np->adopt[i];

		if (!a->claimed && a->owner.tgid == (__u32)vm->pid &&
		    a->owner.start_time == vm->start_time && !strcmp(a->owner.label, label)) {
			a->claimed = true;
			return (int)a->slot;
		}
	}
	return -ENOENT;
}

/* Calls fn for each matched session counted into slot, of tgid (0: any); how many. */
static int slot_sessions_each(const struct netdisk_probe *np, __u32 tgid, unsigned slot,
			      void (*fn)(const struct netdisk_probe *np,
					 const struct netdisk_session *s, void *arg),
			      void *arg)
{
	int fd = bpf_map__fd(np->skel->maps.netdisk_sessions), n = 0;
	struct netdisk_session key, next, *prev = NULL;
	__u32 v;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if ((!tgid || key.tgid == tgid) && !bpf_map_lookup_elem(fd, &key, &v) && v == slot) {
			fn(np, &key, arg);
			n++;
		}
	}
	return n;
}

struct sessions_out {
	struct netdisk_session *s;
	int n, max;
};

static void session_keep(const struct netdisk_probe *np, const struct netdisk_session *s,
			 void *arg)
{
	struct sessions_out *o = arg;

	if (o->n < o->max)
		o->s[o->n++] = *s;
}

int netdisk_slot_sessions(const struct netdisk_probe *np, const struct vm *vm, unsigned slot,
			  struct netdisk_session *out, int max)
{
	struct sessions_out o = { out, 0, max };

	slot_sessions_each(np, (__u32)vm->pid, slot, session_keep, &o);
	return o.n;
}

void netdisk_owner_set(struct netdisk_probe *np, unsigned slot, const struct vm *vm,
		       const char *label)
{
	struct netdisk_slot_owner o = { .tgid = (__u32)vm->pid, .start_time = vm->start_time };
	__u32 key = slot;

	str_copy(o.label, sizeof(o.label), label);
	bpf_map_update_elem(bpf_map__fd(np->skel->maps.netdisk_owners), &key, &o, BPF_ANY);
}

void netdisk_owner_del(struct netdisk_probe *np, unsigned slot)
{
	__u32 key = slot;

	bpf_map_delete_elem(bpf_map__fd(np->skel->maps.netdisk_owners), &key);
}

/* A link with a cookie has it in its name: one made with another is not adopted, it goes. */
static void link_name(const struct vm *vm, const char *func, __u64 cookie, char *out,
		      size_t size)
{
	snprintf(out, size, "%d_%llu_%s", (int)vm->pid, vm->start_time, func);
	if (cookie)
		snprintf(out + strlen(out), size - strlen(out), "_%llx",
			 (unsigned long long)cookie);
}

struct bpf_link *netdisk_link_get(struct netdisk_probe *np, const struct vm *vm,
				  struct bpf_program *prog, const char *func, const char *path,
				  __u64 cookie, bool *adopted)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func, .bpf_cookie = cookie);
	struct bpf_link *old, *link;
	char name[128];

	link_name(vm, func, cookie, name, sizeof(name));
	old = pins_link_open(np->pins, name);
	*adopted = old != NULL;
	if (old && !np->pins->code_changed)
		return old;
	/* A uprobe link cannot change its program: ours goes beside the old one, which then goes. */
	link = bpf_program__attach_uprobe_opts(prog, vm->pid, path, 0, &opts);
	if (old)
		return pins_link_swap(np->pins, old, link, name);
	pins_link_pin(np->pins, link, name);
	return link;
}

/* Is the link pinned as links/NAME held by a VM of the table? */
static bool link_held(struct probe *p, struct discovery *d, const char *name)
{
	for (const struct vm *vm = d->vms; vm; vm = vm->next) {
		const struct netdisk_vm *nv = vm->priv[p->id];

		for (int k = 0; nv && k < NETDISK_KIND_MAX; k++)
			for (int i = 0; i < nv->nr_links[k]; i++) {
				const char *pin = bpf_link__pin_path(nv->links[k][i]);
				const char *base = pin ? strrchr(pin, '/') : NULL;

				if (base && !strcmp(base + 1, name))
					return true;
			}
	}
	return false;
}

struct links_release {
	struct probe *p;
	struct discovery *d;
	unsigned released;
};

static int link_release(const char *name, void *arg)
{
	struct links_release *r = arg;

	if (!link_held(r->p, r->d, name)) {
		/* Unpinned, the link of an exited QEMU is freed, its uprobe with it. */
		pins_fd_end(r->p->pins, -1, name);
		r->released++;
	}
	return 0;
}

static void session_drop(const struct netdisk_probe *np, const struct netdisk_session *s,
			 void *arg)
{
	netdisk_session_del((struct netdisk_probe *)np, s);
}

void netdisk_adopted(struct probe *p, struct discovery *d)
{
	struct netdisk_probe *np = p->priv;
	struct links_release r = { p, d, 0 };
	size_t claimed = 0;

	for (size_t i = 0; i < np->nr_adopt; i++) {
		const struct netdisk_adopt *a = &np->adopt[i];

		if (a->claimed) {
			claimed++;
			continue;
		}
		slot_sessions_each(np, 0, a->slot, session_drop, NULL);
		netdisk_owner_del(np, a->slot);
		drive_store_put(&np->store, a->slot);
	}
	pins_links_foreach(p->pins, link_release, &r);
	log_info("netdisk probe: adopted %u uprobe links and %zu drive slots of the earlier "
		 "serve, their counters go on; released %u links and %zu slots (their QEMU or drive "
		 "is gone)", np->links_adopted, claimed, r.released, np->nr_adopt - claimed);
	netdisk_adopt_free(np);
}

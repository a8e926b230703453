// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The network probe's view of one VM: a slot and TC programs per tap (in
 * the VM's network namespace), and QEMU's own TCP sockets on the host.
 */
#include "probes/net/net_probe.h"

#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/caps.h"
#include "core/discovery.h"
#include "core/fault.h"
#include "core/netns.h"
#include "core/pin.h"
#include "core/util.h"

static struct net_vm *net_vm(const struct probe *p, const struct vm *vm)
{
	return vm->priv[p->id];
}

static struct tap_state *tap_of(const struct probe *p, const struct vm_iface *ifc)
{
	return ifc->priv[p->id];
}

/*
 * The VM's entry for its QEMU host sockets, tried at every sync until it
 * is made: a full table (max_vms) may have room once another VM is gone.
 */
static void host_vm_count(struct net_probe *np, struct discovery *d, struct vm *vm,
			  struct net_vm *nv)
{
	int err;

	if (nv->host_counted)
		return;
	err = net_host_vm_add(np, (__u32)vm->pid);
	if (!err) {
		if (nv->host_err)
			log_info("counting the host TCP sockets of VM %s (pid %d) now", vm->name,
				 (int)vm->pid);
		nv->host_counted = true;
		nv->host_err = 0;
		return;
	}
	d->attach_errors++;
	if (err != nv->host_err && err == -E2BIG)
		fault_count(FAULT_MAP_FULL);
	if (err != nv->host_err)
		log_warn("cannot count the host TCP sockets of VM %s (pid %d): %s%s", vm->name,
			 (int)vm->pid, strerror(-err), err == -E2BIG ? " (more VMs than max_vms)" : "");
	nv->host_err = err;
}

int net_vm_add(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct net_probe *np = p->priv;
	struct net_vm *nv = calloc(1, sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	vm->priv[p->id] = nv;
	/* The sockets an earlier serve watched for it: the first sync drops those now closed. */
	nv->socks.watch = net_host_adopt_socks(np, (__u32)vm->pid, &nv->socks.nr_watch); /* sorted */
	host_vm_count(np, d, vm, nv);
	return 0;
}

/* A tap not counted yet (not up, or its attach failed) is tried at every scan. */
bool net_vm_pending(struct probe *p, const struct vm *vm)
{
	for (int i = 0; i < vm->nr_ifaces; i++) {
		const struct tap_state *t = tap_of(p, &vm->ifaces[i]);

		if (vm->ifaces[i].present && vm->ifaces[i].tap[0] && (!t || t->slot < 0))
			return true;
	}
	return false;
}

/* A VM's sockets are few: looked up one by one. */
static bool has_u64(const __u64 *v, size_t n, __u64 x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

/* Adds x to the set v (of n, room cap) unless there. */
static int set_add(__u64 **v, size_t *n, size_t *cap, __u64 x)
{
	return has_u64(*v, *n, x) ? 0 : u64_push(v, n, cap, x);
}

/* Sorts the `unknown` sockets /proc/PID/net/FILE lists into now's watched and listening. */
static int sort_listed(const char *path, const __u64 *unknown, size_t n, struct host_socks *now,
		       size_t *cap_watch, size_t *cap_listen)
{
	char line[512];
	FILE *f = fopen(path, "re");
	int err = 0;

	if (!f)
		return 0; /* no such table (no IPv6): none of them */
	while (!err && fgets(line, sizeof(line), f)) {
		unsigned long long ino;
		unsigned state;

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %*s %*s %llu", &state, &ino) != 2 ||
		    !ino || !has_u64(unknown, n, ino))
			continue;
		if (state == TCP_LISTEN)
			err = set_add(&now->listen, &now->nr_listen, cap_listen, ino);
		else
			err = set_add(&now->watch, &now->nr_watch, cap_watch, ino);
	}
	fclose(f);
	return err;
}

int host_socks_sort(const char *net_dir, const struct host_socks *was, const __u64 *socks,
		    size_t n, bool partial, struct host_socks *now)
{
	size_t cap_watch = 0, cap_listen = 0, cap_unknown = 0, nr_unknown = 0;
	__u64 *unknown = NULL;
	char path[PATH_MAX];
	int err = 0, reads = 0;

	memset(now, 0, sizeof(*now));
	for (size_t i = 0; !err && i < n; i++) {
		if (has_u64(was->watch, was->nr_watch, socks[i]))
			err = set_add(&now->watch, &now->nr_watch, &cap_watch, socks[i]);
		else if (has_u64(was->listen, was->nr_listen, socks[i]))
			err = set_add(&now->listen, &now->nr_listen, &cap_listen, socks[i]);
		else
			err = set_add(&unknown, &nr_unknown, &cap_unknown, socks[i]);
	}
	/* A walk that missed fds: what it did not see may still be open. */
	for (size_t i = 0; !err && partial && i < was->nr_watch; i++)
		err = set_add(&now->watch, &now->nr_watch, &cap_watch, was->watch[i]);
	if (!err && nr_unknown) {
		for (int v6 = 0; !err && v6 < 2; v6++, reads++) {
			snprintf(path, sizeof(path), "%s/%s", net_dir, v6 ? "tcp6" : "tcp");
			err = sort_listed(path, unknown, nr_unknown, now, &cap_watch, &cap_listen);
		}
	}
	free(unknown);
	if (err) {
		host_socks_free(now);
		return err;
	}
	if (now->nr_watch)
		qsort(now->watch, now->nr_watch, sizeof(*now->watch), cmp_u64);
	if (now->nr_listen)
		qsort(now->listen, now->nr_listen, sizeof(*now->listen), cmp_u64);
	return reads;
}

void host_socks_free(struct host_socks *s)
{
	free(s->watch);
	free(s->listen);
	memset(s, 0, sizeof(*s));
}

/*
 * QEMU's own TCP sockets (migration, NBD or Ceph storage, VNC) watched:
 * host_socks_sort. Closed ones are dropped, so a reused inode number is
 * never someone else's.
 */
static void host_socks_update(struct net_probe *np, struct discovery *d, struct vm *vm,
			      struct net_vm *nv, const struct vm_snapshot *snap)
{
	char net_dir[PATH_MAX];
	struct host_socks now;
	int err;

	if (snap->nr_socks == 0 && nv->socks.nr_watch == 0 && nv->socks.nr_listen == 0)
		return;
	snprintf(net_dir, sizeof(net_dir), "%s/%d/net", d->cfg->proc_root, (int)vm->pid);
	if (host_socks_sort(net_dir, &nv->socks, snap->socks, snap->nr_socks, snap->socks_partial,
			    &now) < 0) {
		log_warn("cannot sort the TCP sockets of VM %s (pid %d): out of memory", vm->name,
			 (int)vm->pid);
		return;
	}
	err = net_host_socks_set(np, (__u32)vm->pid, nv->socks.watch, nv->socks.nr_watch,
				 now.watch, now.nr_watch, nv->socks_missing);
	if (err && !nv->socks_missing)
		log_warn("cannot watch all TCP sockets of VM %s (pid %d): %s; tried again at each "
			 "full sync", vm->name, (int)vm->pid, strerror(-err));
	else if (!err && nv->socks_missing)
		log_info("watching all TCP sockets of VM %s (pid %d) now", vm->name, (int)vm->pid);
	nv->socks_missing = err != 0;
	host_socks_free(&nv->socks);
	nv->socks = now;
}

/* Detaches the tap (in the VM's namespace) and frees its slot. */
static void tap_forget(struct net_probe *np, struct tap_state *t, const char *ifname)
{
	int err;

	if (t->slot < 0)
		return;
	err = net_tap_detach(np, t->netns_cookie, &t->att);
	if (err)
		/* Its filter may still count into the slot: never hand it out again. */
		log_warn("detaching from tap %s failed: %s; its slot %d is retired", ifname,
			 strerror(-err), t->slot);
	else
		net_slot_free(np, t->slot);
	t->slot = -1;
}

/*
 * Without the VM's namespace, the taps and their clsact filters are gone.
 * TCX links are fds of ours: closed here, wherever we are.
 */
static void tap_drop(struct net_probe *np, struct tap_state *t)
{
	if (t->slot < 0)
		return;
	net_slot_unrecord(np, &t->att);
	if (t->att.tcx)
		tc_detach_pair(&t->att);
	net_tap_forget(np, t->netns_cookie, t->ifindex);
	net_slot_free(np, t->slot);
	t->slot = -1;
}

/*
 * A slot and programs for the tap: those an earlier serve counted it with
 * (its counters go on), else new ones. The slot, or -errno.
 */
static int tap_count(struct net_probe *np, int ifindex, __u64 cookie, struct tc_attachment *a,
		     bool *adopted)
{
	struct net_slot rec;
	int slot = net_tap_claim(np, cookie, ifindex, &rec), err;

	*adopted = slot >= 0;
	if (*adopted)
		err = net_tap_adopt(np, ifindex, (unsigned)slot, &rec, a);
	else if ((slot = net_slot_alloc(np)) < 0)
		return slot;
	else
		err = net_tap_attach(np, ifindex, (unsigned)slot, a);
	if (err) {
		net_slot_free(np, (unsigned)slot);
		return err;
	}
	return slot;
}

/*
 * A tap whose TCX attach failed hangs from clsact filters: said as a
 * warning once for each kind of failure, the taps it befalls after that
 * in the line that says they are counted.
 */
static void tcx_fallback_said(struct net_probe *np, int err, const char *tap)
{
	for (unsigned i = 0; i < np->nr_tcx_said; i++)
		if (np->tcx_said[i] == err)
			return;
	if (np->nr_tcx_said < ARRAY_SIZE(np->tcx_said))
		np->tcx_said[np->nr_tcx_said++] = err;
	log_warn("attaching TCX links to tap %s failed: %s%s; it is counted from clsact filters "
		 "instead (so is any other tap this befalls)", tap, strerror(-err),
		 tcx_error_hint(err));
}

static void tap_sync(struct net_probe *np, struct discovery *d, struct vm *vm,
		     struct vm_iface *ifc, struct tap_state *t, __u64 cookie)
{
	int ifindex = (int)if_nametoindex(ifc->tap), slot, err;
	bool adopted;

	if (t->slot >= 0 && t->ifindex == ifindex && t->netns_cookie == cookie)
		return;
	/* Gone, or replaced by a new device of the same name. */
	tap_forget(np, t, ifc->tap);
	if (ifindex == 0) {
		t->last_error = -ENODEV;
		return;
	}
	slot = tap_count(np, ifindex, cookie, &t->att, &adopted);
	if (slot < 0) {
		err = slot;
		goto fail;
	}
	t->slot = slot;
	t->ifindex = ifindex;
	t->netns_cookie = cookie;
	t->last_error = 0;
	if (t->att.tcx_err)
		tcx_fallback_said(np, t->att.tcx_err, ifc->tap);
	log_info("counting tap %s (interface %s, ifindex %d) of VM %s%s%s, pid %d%s%s%s%s", ifc->tap,
		 ifc->label, ifindex, vm->ns, vm->ns[0] ? "/" : "", vm->name, (int)vm->pid,
		 t->att.tcx_err ? ", from clsact filters (TCX: " : "",
		 t->att.tcx_err ? strerror(-t->att.tcx_err) : "", t->att.tcx_err ? ")" : "",
		 adopted ? ": adopted, its counters go on" : "");
	return;
fail:
	/* Deleted between its discovery and the attach: a race, not a failure. */
	if (err == -ENODEV) {
		fault_count(FAULT_TAP_GONE);
		log_info("tap %s of VM %s went away while vmprobe attached to it: counted if it "
			 "comes back", ifc->tap, vm->name);
		t->last_error = err;
		return;
	}
	d->attach_errors++;
	if (err == -ENOSPC && err != t->last_error)
		fault_count(FAULT_MAP_FULL);
	if (err != t->last_error) {
		char hint[CAPS_HINT_MAX];

		/* What failed last is a clsact filter: rtnetlink takes CAP_NET_ADMIN itself. */
		caps_hint(hint, sizeof(hint), -err, CAP_BIT(CAP_NET_ADMIN), false);
		if (t->att.tcx_err && t->att.tcx_err != err)
			log_warn("cannot count tap %s of VM %s: TCX: %s%s; clsact: %s%s%s", ifc->tap,
				 vm->name, strerror(-t->att.tcx_err), tcx_error_hint(t->att.tcx_err),
				 strerror(-err), tc_error_hint(err), hint);
		else
			log_warn("cannot count tap %s of VM %s: %s%s%s", ifc->tap, vm->name,
				 strerror(-err), err == -ENOSPC ? " (raise network.max_interfaces)"
				 : err == -EMFILE ? " (raise vmprobe's RLIMIT_NOFILE hard limit)"
				 : tc_error_hint(err), hint);
	}
	t->last_error = err;
}

/* The tap's state, made on first sight; NULL when out of memory. */
static struct tap_state *tap_get(const struct probe *p, struct vm_iface *ifc)
{
	struct tap_state *t = tap_of(p, ifc);

	if (t || !(t = calloc(1, sizeof(*t))))
		return t;
	t->slot = -1;
	ifc->priv[p->id] = t;
	return t;
}

/* In the VM's namespace: taps that went are detached, present ones attached. */
static void taps_sync(struct probe *p, struct discovery *d, struct vm *vm, __u64 cookie)
{
	struct net_probe *np = p->priv;

	for (int i = 0; i < vm->nr_ifaces; i++) {
		struct vm_iface *ifc = &vm->ifaces[i];
		struct tap_state *t = tap_of(p, ifc);

		if (!ifc->present && t) {
			tap_forget(np, t, ifc->tap);
			free(t);
			ifc->priv[p->id] = NULL;
		} else if (ifc->present && ifc->tap[0] && (t = tap_get(p, ifc))) {
			tap_sync(np, d, vm, ifc, t, cookie);
		}
	}
}

/* Taps that went while the VM's namespace cannot be entered. */
static void taps_drop_gone(struct probe *p, struct vm *vm)
{
	for (int i = 0; i < vm->nr_ifaces; i++) {
		struct tap_state *t = tap_of(p, &vm->ifaces[i]);

		if (vm->ifaces[i].present || !t)
			continue;
		tap_drop(p->priv, t);
		free(t);
		vm->ifaces[i].priv[p->id] = NULL;
	}
}

/* Says for each tap whether it is counted, and why not (ns_err: the VM's netns was not entered). */
static void taps_coverage(struct probe *p, struct vm *vm, int ns_err)
{
	for (int i = 0; i < vm->nr_ifaces; i++) {
		struct vm_iface *ifc = &vm->ifaces[i];
		const struct tap_state *t = tap_of(p, ifc);

		if (!ifc->present || !ifc->tap[0])
			continue;
		if (t && t->slot >= 0)
			coverage_set(&ifc->cov, p, true, NULL);
		else if (ns_err)
			coverage_set(&ifc->cov, p, false, "cannot enter the VM's network namespace: %s",
				     strerror(-ns_err));
		else if (!t || t->last_error == -ENODEV || !t->last_error)
			coverage_set(&ifc->cov, p, false, "tap %s not found in the VM's network "
				     "namespace", ifc->tap);
		else
			coverage_set(&ifc->cov, p, false, "attaching to tap %s failed: %s%s", ifc->tap,
				     strerror(-t->last_error), tc_error_hint(t->last_error));
	}
}

void net_vm_sync(struct probe *p, struct discovery *d, struct vm *vm,
		 const struct vm_snapshot *snap)
{
	struct net_probe *np = p->priv;
	__u64 cookie;
	int err;

	host_vm_count(np, d, vm, net_vm(p, vm));
	if (snap->fds_read && np->host_tcp_on)
		host_socks_update(np, d, vm, net_vm(p, vm), snap);
	err = discovery_enter_netns(d, vm);
	if (err) {
		taps_drop_gone(p, vm);
		taps_coverage(p, vm, err);
		return;
	}
	if (netns_current_cookie(&cookie) == 0) {
		taps_sync(p, d, vm, cookie);
	} else {
		d->attach_errors++;
		log_warn("cannot tell the network namespace of VM %s (pid %d) apart", vm->name,
			 (int)vm->pid);
	}
	discovery_leave_netns(d);
	taps_coverage(p, vm, 0);
}

/* serve with persist is leaving: the VM's taps and sockets stay counted for the next one. */
static void vm_leave(struct probe *p, struct vm *vm)
{
	struct net_vm *nv = net_vm(p, vm);

	for (int i = 0; i < vm->nr_ifaces; i++) {
		struct tap_state *t = tap_of(p, &vm->ifaces[i]);

		if (t && t->slot >= 0)
			net_tap_leave(p->priv, &t->att);
		free(t);
		vm->ifaces[i].priv[p->id] = NULL;
	}
	host_socks_free(&nv->socks);
	free(nv);
	vm->priv[p->id] = NULL;
}

void net_vm_del(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct net_probe *np = p->priv;
	struct net_vm *nv = net_vm(p, vm);
	bool in_ns;

	if (p->pins && p->pins->keep) {
		vm_leave(p, vm);
		return;
	}
	in_ns = netns_enter(vm->netns_fd) == 0;
	for (int i = 0; i < vm->nr_ifaces; i++) {
		struct tap_state *t = tap_of(p, &vm->ifaces[i]);

		if (!t)
			continue;
		if (in_ns)
			tap_forget(np, t, vm->ifaces[i].tap);
		else
			tap_drop(np, t);
		free(t);
		vm->ifaces[i].priv[p->id] = NULL;
	}
	if (in_ns)
		discovery_leave_netns(d);
	net_host_socks_set(np, (__u32)vm->pid, nv->socks.watch, nv->socks.nr_watch, NULL, 0,
			   false);
	net_host_vm_del(np, (__u32)vm->pid);
	host_socks_free(&nv->socks);
	free(nv);
	vm->priv[p->id] = NULL;
}

int net_iface_slot(const struct probe *p, const struct vm_iface *ifc)
{
	const struct tap_state *t = tap_of(p, ifc);

	return ifc->present && t ? t->slot : -1;
}

const char *net_iface_hook(const struct probe *p, const struct vm_iface *ifc)
{
	const struct tap_state *t = tap_of(p, ifc);

	if (!ifc->present || !t || t->slot < 0)
		return NULL;
	return tc_hook_names[t->att.tcx ? TC_HOOK_TCX : TC_HOOK_CLSACT];
}

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

#include "core/discovery.h"
#include "core/netns.h"
#include "core/util.h"

static struct net_vm *net_vm(const struct probe *p, const struct vm *vm)
{
	return vm->priv[p->id];
}

int net_vm_add(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct net_probe *np = p->priv;
	struct net_vm *nv = calloc(1, sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	for (int i = 0; i < VM_MAX_NICS; i++)
		nv->taps[i].slot = -1;
	vm->priv[p->id] = nv;
	if (net_host_vm_add(np, (__u32)vm->pid)) {
		d->attach_errors++;
		log_warn("cannot count the host TCP sockets of VM %s (pid %d)", vm->name,
			 (int)vm->pid);
	}
	return 0;
}

bool net_vm_pending(struct probe *p, const struct vm *vm)
{
	const struct net_vm *nv = net_vm(p, vm);

	for (int i = 0; i < vm->nr_taps; i++)
		if (nv->taps[i].slot < 0)
			return true;
	return false;
}

/*
 * Keeps in `out` the inodes of `socks` that /proc/PID/net/FILE lists (TCP
 * in QEMU's namespace), but listening sockets: they receive no segment
 * tcp_probe reports and retransmit none, and nearly every VM has one (VNC,
 * monitor), which would keep the host TCP hooks attached for nothing.
 */
static void keep_listed(const struct discovery *d, pid_t pid, const char *file, const __u64 *socks,
			size_t n, __u64 **out, size_t *nr_out, size_t *cap)
{
	char path[PATH_MAX], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/net/%s", d->cfg->proc_root, (int)pid, file);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long ino;
		unsigned state;

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %*s %*s %llu", &state, &ino) != 2 ||
		    !ino || state == TCP_LISTEN)
			continue;
		for (size_t i = 0; i < n; i++)
			if (socks[i] == ino)
				u64_push(out, nr_out, cap, ino);
	}
	fclose(f);
}

/*
 * QEMU's own TCP sockets (migration, NBD or Ceph storage, VNC): of its
 * socket fds, those its namespace's TCP tables list. Closed ones are
 * dropped, so a reused inode number is never someone else's.
 */
static void host_socks_update(struct net_probe *np, struct discovery *d, struct vm *vm,
			      struct net_vm *nv, const struct vm_snapshot *snap)
{
	__u64 *tcp = NULL;
	size_t nt = 0, tcap = 0;

	if (snap->nr_socks) {
		keep_listed(d, vm->pid, "tcp", snap->socks, snap->nr_socks, &tcp, &nt, &tcap);
		keep_listed(d, vm->pid, "tcp6", snap->socks, snap->nr_socks, &tcp, &nt, &tcap);
	}
	if (nt == 0 && nv->nr_socks == 0) {
		free(tcp);
		return;
	}
	if (net_host_socks_set(np, (__u32)vm->pid, nv->socks, nv->nr_socks, tcp, nt))
		log_warn("cannot watch all TCP sockets of VM %s (pid %d)", vm->name, (int)vm->pid);
	free(nv->socks);
	nv->socks = tcp;
	nv->nr_socks = nt;
}

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

static void tap_sync(struct net_probe *np, struct discovery *d, struct vm *vm,
		     struct tap_state *t, int i, __u64 cookie)
{
	const char *ifname = vm->taps[i].ifname;
	int ifindex = (int)if_nametoindex(ifname), slot, err;

	if (t->slot >= 0 && t->ifindex == ifindex && t->netns_cookie == cookie)
		return;
	/* Gone, or replaced by a new device of the same name. */
	tap_forget(np, t, ifname);
	if (ifindex == 0)
		return;

	slot = net_slot_alloc(np);
	if (slot < 0) {
		err = slot;
		goto fail;
	}
	err = net_tap_attach(np, ifindex, slot, &t->att);
	if (err) {
		net_slot_free(np, slot);
		goto fail;
	}
	t->slot = slot;
	t->ifindex = ifindex;
	t->netns_cookie = cookie;
	t->last_error = 0;
	log_info("counting tap %s (ifindex %d) of VM %s%s%s, pid %d", ifname, ifindex, vm->ns,
		 vm->ns[0] ? "/" : "", vm->name, (int)vm->pid);
	return;
fail:
	d->attach_errors++;
	if (err != t->last_error)
		log_warn("cannot count tap %s of VM %s: %s%s", ifname, vm->name, strerror(-err),
			 err == -ENOSPC ? " (raise network.max_interfaces)"
			 : err == -EMFILE ? " (raise vmprobe's RLIMIT_NOFILE hard limit)" : "");
	t->last_error = err;
}

void net_vm_sync(struct probe *p, struct discovery *d, struct vm *vm,
		 const struct vm_snapshot *snap)
{
	struct net_probe *np = p->priv;
	__u64 cookie;

	if (snap->fds_read && np->host_tcp_on)
		host_socks_update(np, d, vm, net_vm(p, vm), snap);
	if (discovery_enter_netns(d, vm))
		return;
	if (netns_current_cookie(&cookie) == 0) {
		for (int i = 0; i < vm->nr_taps; i++)
			tap_sync(np, d, vm, &net_vm(p, vm)->taps[i], i, cookie);
	} else {
		d->attach_errors++;
		log_warn("cannot tell the network namespace of VM %s (pid %d) apart", vm->name,
			 (int)vm->pid);
	}
	discovery_leave_netns(d);
}

/*
 * Without its namespace, the taps and their clsact filters are gone. TCX
 * links are fds of ours: closed here, wherever we are.
 */
static void taps_drop(struct net_probe *np, struct net_vm *nv, int nr_taps)
{
	for (int i = 0; i < nr_taps; i++) {
		struct tap_state *t = &nv->taps[i];

		if (t->slot < 0)
			continue;
		if (t->att.tcx)
			tc_detach_pair(&t->att);
		net_tap_forget(np, t->netns_cookie, t->ifindex);
		net_slot_free(np, t->slot);
		t->slot = -1;
	}
}

void net_vm_del(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct net_probe *np = p->priv;
	struct net_vm *nv = net_vm(p, vm);
	bool attached = false;

	for (int i = 0; i < vm->nr_taps; i++)
		attached |= nv->taps[i].slot >= 0;
	if (attached && netns_enter(vm->netns_fd) == 0) {
		for (int i = 0; i < vm->nr_taps; i++)
			tap_forget(np, &nv->taps[i], vm->taps[i].ifname);
		discovery_leave_netns(d);
	} else if (attached) {
		taps_drop(np, nv, vm->nr_taps);
	}
	net_host_socks_set(np, (__u32)vm->pid, nv->socks, nv->nr_socks, NULL, 0);
	net_host_vm_del(np, (__u32)vm->pid);
	free(nv->socks);
	free(nv);
	vm->priv[p->id] = NULL;
}

const struct tap_state *net_vm_tap(const struct probe *p, const struct vm *vm, int i)
{
	return &net_vm(p, vm)->taps[i];
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The network-disk probe's view of one VM: its uprobes on librbd and
 * libiscsi (attached to this QEMU process alone, once it has a drive of
 * that kind), a slot per rbd or iSCSI drive, and the library sessions
 * matched to each drive; with persist, the hooks and slots an earlier
 * serve left are taken over (pins.c).
 */
#include "probes/netdisk/netdisk_probe.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/caps.h"
#include "core/discovery.h"
#include "core/pin.h"
#include "core/storage.h"
#include "netdisk.skel.h"
#include "probes/netdisk/rval.h"

static struct netdisk_vm *nd_vm(const struct probe *p, const struct vm *vm)
{
	return vm->priv[p->id];
}

static struct netdisk_drive *drive_of(const struct probe *p, const struct vm_disk *disk)
{
	return disk->priv[p->id];
}

/* The kind of session that serves a drive, or -1 if the probe does not measure it. */
static int drive_kind(const struct vm_disk *disk)
{
	for (int k = 0; k < NETDISK_KIND_MAX; k++)
		if (disk->present && !strcmp(disk->spec.backend, netdisk_libs[k].backend))
			return k;
	return -1;
}

int netdisk_vm_add(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct netdisk_vm *nv = calloc(1, sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	vm->priv[p->id] = nv;
	return 0;
}

bool netdisk_vm_pending(struct probe *p, const struct vm *vm)
{
	const struct netdisk_probe *np = p->priv;
	const struct netdisk_vm *nv = nd_vm(p, vm);

	for (int i = 0; i < np->nr_pending; i++)
		if (np->pending[i].ev.sess.tgid == (__u32)vm->pid && !np->pending[i].warned)
			return true;
	for (int i = 0; i < vm->nr_disks; i++) {
		int k = drive_kind(&vm->disks[i]);
		const struct netdisk_drive *nd = drive_of(p, &vm->disks[i]);

		/* Hooking a library that failed is tried again at full syncs only. */
		if (k >= 0 && ((!nv->nr_links[k] && !nv->attach_err[k]) || (nd && nd->nr_merge)))
			return true;
	}
	return false;
}

/*
 * The library as QEMU sees it, through its root: where QEMU mapped it,
 * else where it would load it from (the drive's module may load later).
 */
static bool lib_path(const struct discovery *d, const struct vm *vm, int kind, char *out,
		     size_t size)
{
	const struct netdisk_lib *lib = &netdisk_libs[kind];
	char path[PATH_MAX], line[PATH_MAX + 128];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/maps", d->cfg->proc_root, (int)vm->pid);
	f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f)) {
		char *file = strchr(line, '/');

		if (!file || !strstr(file, lib->soname_prefix))
			continue;
		file[strcspn(file, "\n")] = '\0';
		snprintf(out, size, "%s/%d/root%s", d->cfg->proc_root, (int)vm->pid, file);
		found = true;
	}
	if (f)
		fclose(f);
	for (int i = 0; !found && lib->paths[i]; i++) {
		snprintf(out, size, "%s/%d/root%s", d->cfg->proc_root, (int)vm->pid, lib->paths[i]);
		/* By the effective capabilities (access(2) checks the real ids'). */
		found = faccessat(AT_FDCWD, out, R_OK, AT_EACCESS) == 0;
	}
	return found;
}

/* Detached and unpinned, or only let go of when serve leaves with persist. */
static void links_drop(struct netdisk_probe *np, struct netdisk_vm *nv, int kind)
{
	for (int i = 0; i < nv->nr_links[kind]; i++)
		pins_link_end(np->pins, nv->links[kind][i]);
	nv->nr_links[kind] = 0;
}

/* Hooks the library's functions in this QEMU process alone; 0 or -errno. */
static int attach(struct netdisk_probe *np, struct discovery *d, struct vm *vm,
		  struct netdisk_vm *nv, int kind)
{
	char path[PATH_MAX];
	const char *func;
	struct bpf_program *prog;
	bool optional, adopted;
	int nr_adopted = 0;

	if (!lib_path(d, vm, kind, path, sizeof(path)))
		return -ENOENT;
	if (kind == NETDISK_RBD) {
		nv->rval = rval_cookie(path);
		if (!nv->rval)
			log_warn("VM %s: where librbd keeps a request's result could not be "
				 "learned from %s: its rbd drives' failed requests count as done "
				 "ones, and they have no vmprobe_disk_errors_total", vm->name,
				 path);
	}
	for (int i = 0; (prog = netdisk_prog(np, kind, i, &func, &optional)); i++) {
		__u64 cookie = prog == np->skel->progs.rbd_done ? nv->rval : 0;
		struct bpf_link *link =
			netdisk_link_get(np, vm, prog, func, path, cookie, &adopted);
		int err = -errno;

		if (!link && optional) {
			log_info("VM %s: %s has no %s (%s): not hooked", vm->name,
				 netdisk_libs[kind].soname_prefix, func, strerror(-err));
			continue;
		}
		if (!link) {
			links_drop(np, nv, kind);
			return err;
		}
		nv->links[kind][nv->nr_links[kind]++] = link;
		nr_adopted += adopted;
	}
	np->links_adopted += nr_adopted;
	log_info("VM %s: %s hooked in QEMU (pid %d) for its %s drives%s", vm->name,
		 netdisk_libs[kind].soname_prefix, (int)vm->pid, netdisk_libs[kind].backend,
		 !nr_adopted ? "" : nr_adopted == nv->nr_links[kind]
				? ": the earlier serve's hooks adopted, they counted all along"
				: ": some of the earlier serve's hooks adopted, the others made anew");
	return 0;
}

/*
 * The drive's slot an earlier serve counted it in, with its sessions:
 * what they staged before that serve merged it is merged after the grace.
 */
static struct netdisk_drive *drive_adopt(struct probe *p, const struct vm *vm,
					 struct vm_disk *disk, struct netdisk_drive *nd, int slot)
{
	nd->slot = slot;
	nd->nr_sessions = netdisk_slot_sessions(p->priv, vm, (unsigned)slot, nd->sessions,
						NETDISK_MAX_SESSIONS);
	memcpy(nd->merge, nd->sessions, sizeof(nd->merge));
	nd->nr_merge = nd->nr_sessions;
	nd->merge_after = now_seconds() + STAGED_MERGE_GRACE;
	disk->priv[p->id] = nd;
	log_info("counting drive %s (%s) of VM %s: adopted, its counters go on", disk->spec.label,
		 disk->spec.file, vm->name);
	return nd;
}

/* A slot for a drive of ours, made on first sight (or adopted); NULL when none is free. */
static struct netdisk_drive *drive_get(struct probe *p, struct discovery *d, const struct vm *vm,
				       struct netdisk_vm *nv, struct vm_disk *disk)
{
	struct netdisk_drive *nd = drive_of(p, disk);
	struct netdisk_probe *np = p->priv;
	int slot = -ENOENT;

	if (nd)
		return nd;
	nd = calloc(1, sizeof(*nd));
	if (nd)
		slot = netdisk_slot_claim(np, vm, disk->spec.label);
	if (nd && slot >= 0)
		return drive_adopt(p, vm, disk, nd, slot);
	slot = nd ? drive_store_get(&np->store) : -ENOMEM;
	if (slot < 0) {
		free(nd);
		d->attach_errors++;
		if (!nv->slot_warned)
			log_warn("cannot count drive %s of VM %s: %s", disk->spec.label, vm->name,
				 slot == -ENOSPC ? "no free slot (raise disk.max_drives)"
						 : strerror(-slot));
		nv->slot_warned = true;
		return NULL;
	}
	nd->slot = slot;
	disk->priv[p->id] = nd;
	netdisk_owner_set(np, (unsigned)slot, vm, disk->spec.label);
	log_info("counting drive %s (%s) of VM %s", disk->spec.label, disk->spec.file, vm->name);
	return nd;
}

static void drive_forget(struct probe *p, struct vm_disk *disk)
{
	struct netdisk_drive *nd = drive_of(p, disk);

	if (!nd)
		return;
	/* Leaving with persist: the slot goes on counting for the next serve. */
	if (!p->pins || !p->pins->keep) {
		for (int i = 0; i < nd->nr_sessions; i++)
			netdisk_session_del(p->priv, &nd->sessions[i]);
		netdisk_owner_del(p->priv, nd->slot);
		drive_store_put(&((struct netdisk_probe *)p->priv)->store, nd->slot);
	}
	free(nd);
	disk->priv[p->id] = NULL;
}

/* Forgets the drives' sessions the library closed (the BPF side deleted them). */
static void sessions_prune(struct probe *p, struct vm *vm)
{
	for (int i = 0; i < vm->nr_disks; i++) {
		struct netdisk_drive *nd = drive_of(p, &vm->disks[i]);
		int kept = 0;

		for (int k = 0; nd && k < nd->nr_sessions; k++)
			if (netdisk_session_live(p->priv, &nd->sessions[k]))
				nd->sessions[kept++] = nd->sessions[k];
		if (nd)
			nd->nr_sessions = kept;
	}
}

/* The sessions of this VM whose first request came: each matched to its drive, if it can be. */
static void sessions_match(struct probe *p, struct vm *vm, struct netdisk_vm *nv)
{
	struct netdisk_probe *np = p->priv;
	int kept = 0;

	memset(nv->unmatched, 0, sizeof(nv->unmatched));
	for (int i = 0; i < np->nr_pending; i++) {
		struct netdisk_pending *pe = &np->pending[i];
		struct netdisk_drive *nd;
		int idx;

		if (pe->ev.sess.tgid != (__u32)vm->pid) {
			np->pending[kept++] = *pe;
			continue;
		}
		/* Closed, or its staging entry aged out (a later request tells again). */
		if (pe->warned && !netdisk_staged_live(np, &pe->ev.sess))
			continue;
		idx = netdisk_session_drive(vm, &pe->ev);
		nd = idx >= 0 ? drive_of(p, &vm->disks[idx]) : NULL;
		if (!nd || nd->nr_sessions >= NETDISK_MAX_SESSIONS ||
		    netdisk_session_set(np, &pe->ev.sess, nd->slot)) {
			if (!pe->warned)
				log_warn("VM %s: a %s session matches none of its drives: its "
					 "requests are not counted", vm->name,
					 netdisk_libs[pe->ev.sess.kind].soname_prefix);
			pe->warned = true;
			nv->unmatched[pe->ev.sess.kind % NETDISK_KIND_MAX] = true;
			np->pending[kept++] = *pe;
			continue;
		}
		nd->sessions[nd->nr_sessions++] = pe->ev.sess;
		nd->merge[nd->nr_merge++] = pe->ev.sess;
		nd->merge_after = now_seconds() + STAGED_MERGE_GRACE;
		log_debug("VM %s: a %s session is drive %s", vm->name,
			  netdisk_libs[pe->ev.sess.kind].soname_prefix, vm->disks[idx].spec.label);
	}
	np->nr_pending = kept;
}

static void sessions_merge(struct probe *p, struct vm *vm)
{
	double now = now_seconds();

	for (int i = 0; i < vm->nr_disks; i++) {
		struct netdisk_drive *nd = drive_of(p, &vm->disks[i]);

		if (!nd || !nd->nr_merge || now < nd->merge_after)
			continue;
		for (int k = 0; k < nd->nr_merge; k++)
			netdisk_staged_merge(p->priv, &nd->merge[k], nd->slot);
		nd->nr_merge = 0;
	}
}

/* Measured once the library is hooked; not when it cannot be, or a session of its kind is unmatched. */
static void drive_coverage(struct probe *p, const struct netdisk_vm *nv, struct vm_disk *disk,
			   int kind)
{
	struct netdisk_drive *nd = drive_of(p, disk);
	const char *lib = netdisk_libs[kind].soname_prefix;

	if (nd)
		nd->errors = kind == NETDISK_ISCSI || nv->rval;
	if (!nd)
		coverage_set(&disk->cov, p, false, "no free slot (disk.max_drives)");
	else if (!nv->nr_links[kind] && nv->attach_err[kind] == -ENOENT)
		coverage_set(&disk->cov, p, false, "%s not found in QEMU's root", lib);
	else if (!nv->nr_links[kind])
		coverage_set(&disk->cov, p, false, "hooking %s failed: %s", lib,
			     strerror(-nv->attach_err[kind]));
	else if (nv->unmatched[kind])
		/* Which drive's requests the unmatched session has is not known: any of them. */
		coverage_set(&disk->cov, p, false,
			     "a %s session of this VM could not be matched to its drive", lib);
	else
		coverage_set(&disk->cov, p, true, NULL);
}

/*
 * What never completes leaves the in-flight table: every minute (VMs are
 * synced every few seconds), and soon when the table refused a request.
 */
static void inflight_sweep(struct netdisk_probe *np, struct discovery *d)
{
	__u64 full = netdisk_error_count(np, NETDISK_ERR_INFLIGHT_FULL);
	double since = now_seconds() - np->last_sweep;

	if (since < NETDISK_SWEEP_SECONDS &&
	    (full == np->full_seen || since < NETDISK_SWEEP_MIN_SECONDS))
		return;
	netdisk_inflight_sweep(np, 0, d->cfg->proc_root);
	np->full_seen = full;
	np->last_sweep = now_seconds();
}

void netdisk_vm_sync(struct probe *p, struct discovery *d, struct vm *vm,
		     const struct vm_snapshot *snap)
{
	struct netdisk_probe *np = p->priv;
	struct netdisk_vm *nv = nd_vm(p, vm);

	for (int i = 0; i < vm->nr_disks; i++) {
		struct vm_disk *disk = &vm->disks[i];
		int k = drive_kind(disk);

		if (!disk->present)
			drive_forget(p, disk);
		if (k < 0)
			continue;
		drive_get(p, d, vm, nv, disk);
		if (!nv->nr_links[k]) {
			int err = attach(np, d, vm, nv, k);

			if (err && err != nv->attach_err[k]) {
				char hint[CAPS_HINT_MAX];

				log_warn("VM %s: cannot hook %s: %s%s", vm->name,
					 netdisk_libs[k].soname_prefix, strerror(-err),
					 caps_hint(hint, sizeof(hint), -err, CAP_BIT(CAP_PERFMON),
						   true));
			}
			nv->attach_err[k] = err;
		}
	}
	sessions_prune(p, vm);
	sessions_match(p, vm, nv);
	sessions_merge(p, vm);
	inflight_sweep(np, d);
	for (int i = 0; i < vm->nr_disks; i++)
		if (drive_kind(&vm->disks[i]) >= 0)
			drive_coverage(p, nv, &vm->disks[i], drive_kind(&vm->disks[i]));
}

void netdisk_vm_del(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct netdisk_probe *np = p->priv;
	struct netdisk_vm *nv = nd_vm(p, vm);
	bool hooked = false;
	int kept = 0;

	for (int k = 0; k < NETDISK_KIND_MAX; k++) {
		hooked |= nv->nr_links[k] > 0;
		links_drop(np, nv, k);
	}
	for (int i = 0; i < vm->nr_disks; i++)
		drive_forget(p, &vm->disks[i]);
	/* Its requests in flight never complete (leaving with persist: they may, still hooked). */
	if (hooked && (!p->pins || !p->pins->keep))
		netdisk_inflight_sweep(np, (__u32)vm->pid, NULL);
	for (int i = 0; i < np->nr_pending; i++)
		if (np->pending[i].ev.sess.tgid != (__u32)vm->pid)
			np->pending[kept++] = np->pending[i];
	np->nr_pending = kept;
	free(nv);
	vm->priv[p->id] = NULL;
}

const struct drive_store *netdisk_drive_store(struct probe *p, const struct vm_disk *disk,
					      unsigned *slot)
{
	const struct netdisk_drive *nd = drive_of(p, disk);

	if (!nd)
		return NULL;
	*slot = (unsigned)nd->slot;
	return &((const struct netdisk_probe *)p->priv)->store;
}

bool netdisk_drive_errors(const struct probe *p, const struct vm_disk *disk)
{
	const struct netdisk_drive *nd = drive_of(p, disk);

	return nd && nd->errors;
}

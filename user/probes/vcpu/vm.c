// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The vCPU probe's view of one VM: its vCPU threads (QEMU names them
 * "CPU <n>/KVM", "CPU <n>/TCG" with -name ...,debug-threads=on, which
 * libvirt always passes), each marked through a pidfd with a task storage
 * entry that carries the VM's slot, and what keeps them unmeasured.
 */
#include "probes/vcpu/vcpu_probe.h"

#include <bpf/bpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/config.h"
#include "core/discovery.h"
#include "core/fault.h"
#include "core/pin.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD 0x80 /* O_EXCL: a pidfd of the thread, not its process (Linux 6.9) */
#endif

const char *const vcpu_reason_texts[VCPU_REASON_MAX] = {
	[VCPU_MEASURED] = "",
	[VCPU_PENDING] = "its vCPU threads are not found yet",
	[VCPU_UNNAMED] = "QEMU names no thread \"CPU <n>/...\" (start it with -name "
			 "...,debug-threads=on, as libvirt does)",
	[VCPU_NO_SLOT] = "no slot is left (max_vms)",
	[VCPU_NO_PIDFD] = "this kernel gives no pidfd of a thread (PIDFD_THREAD, Linux 6.9)",
	[VCPU_MARK_FAILED] = "marking its vCPU threads failed",
	[VCPU_NO_SCHED_INFO] = "this kernel keeps no run-queue waits of its tasks (built without "
			       "CONFIG_SCHED_INFO)",
};

/* A VM whose vCPU threads are not found this long after it was: said unmeasured. */
#define VCPU_FIND_NS (10ULL * 1000000000)

const char *const vcpu_reason_names[VCPU_REASON_MAX] = {
	[VCPU_MEASURED] = "",
	[VCPU_PENDING] = "pending",
	[VCPU_UNNAMED] = "threads_unnamed",
	[VCPU_NO_SLOT] = "no_slot",
	[VCPU_NO_PIDFD] = "no_thread_pidfd",
	[VCPU_MARK_FAILED] = "mark_failed",
	[VCPU_NO_SCHED_INFO] = "no_sched_info",
};

static struct vcpu_vm *vcpu_vm(const struct probe *p, const struct vm *vm)
{
	return vm->priv[p->id];
}

/* QEMU's name of a vCPU thread: "CPU <n>/<accelerator>". */
static bool is_vcpu_comm(const char *comm)
{
	const char *c = comm + 4;

	if (strncmp(comm, "CPU ", 4) || !isdigit((unsigned char)*c))
		return false;
	while (isdigit((unsigned char)*c))
		c++;
	return *c == '/';
}

/* The VM's vCPU threads now, into vv->tids (how many), or -errno. */
static int vcpu_threads(const struct discovery *d, const struct vm *vm, pid_t **tids,
			size_t *cap)
{
	char path[PATH_MAX], comm[32];
	struct dirent *de;
	size_t nr = 0;
	DIR *dir;
	int err = 0;

	snprintf(path, sizeof(path), "%s/%d/task", d->cfg->proc_root, (int)vm->pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while (!err && (de = readdir(dir))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "%s/%d/task/%s/comm", d->cfg->proc_root, (int)vm->pid,
			 de->d_name);
		if (read_file(path, comm, sizeof(comm)) <= 0 || !is_vcpu_comm(comm))
			continue;
		err = array_reserve((void **)tids, nr, cap, sizeof(**tids));
		if (!err)
			(*tids)[nr++] = (pid_t)atoi(de->d_name);
	}
	closedir(dir);
	return err ? err : (int)nr;
}

/*
 * Sets (mark) or removes (!mark) the thread's task storage entry for
 * `slot`. An entry that already holds the slot (an earlier serve's mark,
 * with the thread's wait under way) is kept as it is; one of another slot
 * is not removed: the thread ID, its thread gone, is another VM's thread
 * now. 0 or -errno.
 */
static int vcpu_mark(const struct vcpu_probe *vp, pid_t tid, int slot, bool mark)
{
	struct vcpu_thread v = { .slot = (__u32)slot }, had;
	int fd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD), err = 0;
	bool has;

	if (fd < 0)
		return -errno;
	has = !bpf_map_lookup_elem(vp->threads_fd, &fd, &had) && had.slot == v.slot;
	if (mark ? has : !has)
		goto out;
	if (mark ? bpf_map_update_elem(vp->threads_fd, &fd, &v, BPF_ANY)
		 : bpf_map_delete_elem(vp->threads_fd, &fd))
		err = -errno;
out:
	close(fd);
	return err;
}

int vcpu_mark_slot(const struct vcpu_probe *vp, pid_t tid)
{
	int fd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
	struct vcpu_thread v;
	int slot = -1;

	if (fd < 0)
		return -1;
	if (!bpf_map_lookup_elem(vp->threads_fd, &fd, &v))
		slot = (int)v.slot;
	close(fd);
	return slot;
}

static bool marked(const struct vcpu_vm *vv, pid_t tid)
{
	for (size_t i = 0; i < vv->nr_tids; i++)
		if (vv->tids[i] == tid)
			return true;
	return false;
}

/* The VM's vCPUs are not measured, for `why`: said once (and again if the reason changes). */
static void unmeasured(struct vcpu_vm *vv, const struct vm *vm, enum vcpu_unmeasured why,
		       int err)
{
	if (vv->warned && vv->why == why)
		return;
	vv->why = why;
	vv->warned = true;
	if (why == VCPU_NO_SLOT)
		fault_count(FAULT_MAP_FULL);
	log_warn("VM %s: its vCPU waits are not measured: %s%s%s", vm->name, vcpu_reason_texts[why],
		 err ? ": " : "", err ? strerror(-err) : "");
}

int vcpu_vm_add(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct vcpu_vm *vv = calloc(1, sizeof(*vv));

	if (!vv)
		return -ENOMEM;
	vv->slot = -1;
	vv->why = VCPU_PENDING;
	vm->priv[p->id] = vv;
	return 0;
}

/* A young VM whose vCPU threads are not there yet is looked at again at each scan. */
bool vcpu_vm_pending(struct probe *p, const struct vm *vm)
{
	const struct vcpu_vm *vv = vcpu_vm(p, vm);

	return vv->slot < 0 && !vv->warned && monotonic_ns() - vm->found_ns < VCPU_FIND_NS;
}

static int vcpu_slot(struct vcpu_probe *vp, struct vcpu_vm *vv)
{
	int slot = vv->slot;

	if (slot < 0 && (slot = slot_pool_get(&vp->slots)) >= 0) {
		memset(&vp->stats[slot], 0, sizeof(vp->stats[slot]));
		vv->slot = slot;
	}
	return slot;
}

void vcpu_vm_sync(struct probe *p, struct discovery *d, struct vm *vm,
		  const struct vm_snapshot *snap)
{
	struct vcpu_probe *vp = p->priv;
	struct vcpu_vm *vv = vcpu_vm(p, vm);
	size_t cap = 0, kept = 0;
	pid_t *now = NULL;
	bool failed = false;
	int n, err;

	if (vp->no_sched_info) {
		unmeasured(vv, vm, VCPU_NO_SCHED_INFO, 0);
		return;
	}
	n = vcpu_threads(d, vm, &now, &cap);
	if (n <= 0) {
		if (n == 0 && vv->slot < 0 && monotonic_ns() - vm->found_ns >= VCPU_FIND_NS)
			unmeasured(vv, vm, VCPU_UNNAMED, 0);
		free(now);
		return;
	}
	if (vv->slot < 0 && vp->adopt) {
		vv->slot = vcpu_slot_claim(vp, now, n);
		if (vv->slot >= 0) {
			log_info("counting the vCPU threads of VM %s: adopted, its counters go on",
				 vm->name);
		} else {
			/* A new VM: its slot once those no VM claimed are free (vcpu_adopted). */
			vv->slot = -1;
			free(now);
			return;
		}
	}
	if (vcpu_slot(vp, vv) < 0) {
		unmeasured(vv, vm, VCPU_NO_SLOT, 0);
		free(now);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (!marked(vv, now[i]) && (err = vcpu_mark(vp, now[i], vv->slot, true)) &&
		    err != -ESRCH) {
			unmeasured(vv, vm, err == -EINVAL ? VCPU_NO_PIDFD : VCPU_MARK_FAILED, err);
			failed = true;
			continue;
		}
		now[kept++] = now[i];
	}
	if (!failed) {
		vv->why = VCPU_MEASURED;
		vv->warned = false;
	}
	/* Threads gone took their entries with them. */
	free(vv->tids);
	vv->tids = now;
	vv->nr_tids = kept;
	vv->cap_tids = cap;
}

void vcpu_vm_del(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct vcpu_probe *vp = p->priv;
	struct vcpu_vm *vv = vcpu_vm(p, vm);

	/* serve with persist is leaving: the threads stay marked, their VM's slot counted. */
	if (!p->pins || !p->pins->keep) {
		for (size_t i = 0; i < vv->nr_tids; i++)
			vcpu_mark(vp, vv->tids[i], vv->slot, false);
		if (vv->slot >= 0)
			slot_pool_put(&vp->slots, (unsigned)vv->slot);
	}
	free(vv->tids);
	free(vv);
	vm->priv[p->id] = NULL;
}

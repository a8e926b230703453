// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The vCPU probe across serve restarts (persist): its tracepoint link
 * pinned, so that the vCPU threads' waits go on counting while no
 * serve runs, and the slots an earlier serve left in use (their birth in
 * the pinned vcpu_born), each claimed during serve's first scan by the VM
 * whose vCPU threads still carry its mark in the pinned task storage (a
 * mark lives as long as its thread); what no VM claims (a VM that exited
 * meanwhile) is freed after that scan. The maps come back through
 * core/pin.c.
 */
#include "probes/vcpu/vcpu_probe.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>

#include "core/discovery.h"
#include "core/pin.h"
#include "vcpu.skel.h"

int vcpu_links_attach(struct vcpu_probe *vp)
{
	struct bpf_program *prog = vp->skel->progs.vcpu_switch;
	struct bpf_link **link = &vp->skel->links.vcpu_switch;

	*link = pins_link_adopt(vp->pins, prog);
	if (!*link)
		*link = pins_link_attach(vp->pins, prog);
	return *link ? 0 : -errno;
}

void vcpu_links_end(struct vcpu_probe *vp)
{
	if (!vp->skel)
		return;
	pins_link_end(vp->pins, vp->skel->links.vcpu_switch);
	vp->skel->links.vcpu_switch = NULL;
}

int vcpu_adopt_open(struct vcpu_probe *vp)
{
	unsigned left = 0;

	if (!pins_on(vp->pins) || !vp->pins->adopting)
		return 0;
	vp->adopt = calloc(vp->max_vms ? vp->max_vms : 1, 1);
	if (!vp->adopt)
		return -ENOMEM;
	for (unsigned slot = 0; slot < vp->max_vms; slot++)
		if (vp->born[slot] && !slot_pool_take(&vp->slots, slot)) {
			vp->adopt[slot] = VCPU_ADOPT_LEFT;
			left++;
		}
	log_info("vcpu probe: %u VM slots of the earlier serve, to be claimed by their VMs' vCPU "
		 "threads", left);
	return 0;
}

int vcpu_slot_claim(struct vcpu_probe *vp, const pid_t *tids, int n)
{
	for (int i = 0; vp->adopt && i < n; i++) {
		int slot = vcpu_mark_slot(vp, tids[i]);

		if (slot >= 0 && (unsigned)slot < vp->max_vms &&
		    vp->adopt[slot] == VCPU_ADOPT_LEFT) {
			vp->adopt[slot] = VCPU_ADOPT_CLAIMED;
			return slot;
		}
	}
	return -ENOENT;
}

void vcpu_adopted(struct probe *p, struct discovery *d)
{
	struct vcpu_probe *vp = p->priv;
	unsigned claimed = 0, released = 0;

	for (unsigned slot = 0; vp->adopt && slot < vp->max_vms; slot++) {
		if (vp->adopt[slot] == VCPU_ADOPT_CLAIMED)
			claimed++;
		if (vp->adopt[slot] != VCPU_ADOPT_LEFT)
			continue;
		slot_pool_put(&vp->slots, slot);
		released++;
	}
	free(vp->adopt);
	vp->adopt = NULL;
	/* The VMs that waited for the slots no VM claimed take one now. */
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		const struct vcpu_vm *vv = vm->priv[p->id];

		if (vv && vv->slot < 0)
			vm->needs_sync = true;
	}
	log_info("vcpu probe: adopted %u VM slots of the earlier serve, their counters go on; "
		 "released %u (their VM is gone)", claimed, released);
}

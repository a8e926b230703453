// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libvirt's live domain state (libvirt_parse, core/libvirt.c): the
 * <domstatus> XML read through the QEMU process's root, which inside a
 * KubeVirt virt-launcher pod is the pod's to write.
 */
#include "fuzz.h"

#include "core/libvirt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct libvirt_domain *dom = malloc(sizeof(*dom));

	if (!dom)
		abort();
	if (!libvirt_parse((const char *)data, size, dom)) {
		fuzz_assert(dom->nr_disks >= 0 && dom->nr_disks <= VM_MAX_DRIVES);
		fuzz_assert(dom->nr_ifaces >= 0 && dom->nr_ifaces <= VM_MAX_NICS);
		fuzz_assert(dom->others.n >= 0 && dom->others.n <= VM_MAX_OTHER_FILES);
		for (int i = 0; i < dom->nr_disks; i++) {
			const struct vm_drive *d = &dom->disks[i];

			fuzz_assert(fuzz_terminated(d->label) && fuzz_terminated(d->file) &&
				    fuzz_terminated(d->aio) && fuzz_terminated(d->backend) &&
				    fuzz_terminated(d->remote) && fuzz_terminated(d->format));
			fuzz_assert(d->backend[0] && d->aio[0]);
		}
		for (int i = 0; i < dom->nr_ifaces; i++) {
			const struct libvirt_iface *f = &dom->ifaces[i];

			fuzz_assert(fuzz_terminated(f->tap) && fuzz_terminated(f->alias) &&
				    fuzz_terminated(f->type) && fuzz_terminated(f->mac));
			fuzz_assert(!f->tap[0] || !strcmp(f->type, "tap"));
		}
		for (int i = 0; i < dom->others.n; i++)
			fuzz_assert(dom->others.path[i][0] && fuzz_terminated(dom->others.path[i]));
	}
	free(dom);
	return 0;
}

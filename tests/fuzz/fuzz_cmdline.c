// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * QEMU command lines (core/qemu.c) as /proc/PID/cmdline gives them: NUL-
 * separated arguments, option values in QEMU's key=value syntax or JSON
 * (-blockdev, -netdev, -device, -object). A management layer writes them
 * from tenants' names, paths and device ids. The input is parsed as it
 * is, and with the final NUL the kernel always writes.
 */
#include "fuzz.h"

#include "core/inventory.h"
#include "core/qemu.h"

static void check(const struct vm_spec *vm)
{
	char label[VM_ID_MAX];

	fuzz_assert(fuzz_terminated(vm->name) && fuzz_terminated(vm->uuid) &&
		    fuzz_terminated(vm->pidfile));
	fuzz_assert(vm->nr_nics >= 0 && vm->nr_nics <= VM_MAX_NICS);
	fuzz_assert(vm->nr_drives >= 0 && vm->nr_drives <= VM_MAX_DRIVES);
	fuzz_assert(vm->nr_fdsets >= 0 && vm->nr_fdsets <= VM_MAX_FDS);
	fuzz_assert(vm->others.n >= 0 && vm->others.n <= VM_MAX_OTHER_FILES);
	for (int i = 0; i < vm->nr_nics; i++) {
		const struct vm_nic *n = &vm->nics[i];

		fuzz_assert(fuzz_terminated(n->type) && fuzz_terminated(n->netdev_id) &&
			    fuzz_terminated(n->device_id) && fuzz_terminated(n->ifname) &&
			    fuzz_terminated(n->mac));
		fuzz_assert(n->type[0] && n->nr_fds >= 0 && n->nr_fds <= VM_MAX_FDS);
		iface_label(n->device_id, n->ifname, label, sizeof(label));
	}
	for (int i = 0; i < vm->nr_drives; i++) {
		const struct vm_drive *d = &vm->drives[i];

		fuzz_assert(fuzz_terminated(d->node) && fuzz_terminated(d->label) &&
			    fuzz_terminated(d->file) && fuzz_terminated(d->aio) &&
			    fuzz_terminated(d->backend) && fuzz_terminated(d->remote) &&
			    fuzz_terminated(d->format));
		fuzz_assert(d->label[0] && d->backend[0] && d->aio[0]);
		qemu_backend_is_local(d->backend);
	}
	for (int i = 0; i < vm->others.n; i++)
		fuzz_assert(vm->others.path[i][0] && fuzz_terminated(vm->others.path[i]));
}

static void parse(const char *buf, size_t len)
{
	static struct vm_spec vm; /* 60 KiB: a global, with ASan's redzones too */

	if (!qemu_parse_cmdline(buf, len, &vm))
		check(&vm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);

	parse((const char *)data, size);
	if (!size || data[size - 1])
		parse(text, size + 1);
	free(text);
	return 0;
}

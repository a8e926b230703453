// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A VM's name and namespace (vm_identity, core/discovery.c): QEMU's -name
 * (a tenant's choice under KubeVirt: NAMESPACE_NAME) and the text of
 * /proc/PID/cgroup, whose kubepods path says whether to split it. Input:
 * the name, a NUL, the cgroup text.
 */
#include "fuzz.h"

#include "core/discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size), name[VM_NAME_MAX], ns[VM_NAME_MAX];
	const char *cgroup = text + strlen(text) < text + size ? text + strlen(text) + 1 : NULL;

	vm_identity(text, cgroup, 4242, "8f2b6c1e-3d4a-4e5f-9a6b-7c8d9e0f1a2b", name, sizeof(name),
		    ns, sizeof(ns));
	fuzz_assert(name[0] && fuzz_terminated(name) && fuzz_terminated(ns));
	/* Split or not, nothing of a name that fits is lost. */
	if (ns[0] && strlen(text) < VM_NAME_MAX)
		fuzz_assert(strlen(ns) + 1 + strlen(name) == strlen(text) &&
			    !strncmp(text, ns, strlen(ns)) && text[strlen(ns)] == '_' &&
			    !strcmp(text + strlen(ns) + 1, name));
	else if (text[0] && strlen(text) < VM_NAME_MAX)
		fuzz_assert(!strcmp(name, text));
	free(text);
	return 0;
}

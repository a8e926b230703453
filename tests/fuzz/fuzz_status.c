// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * /proc/PID/status (proc_status_nspid, core/discovery.c): a VM's pid in
 * its own pid namespace, which libvirt inside a KubeVirt pod writes in
 * its status file. The Name: line is the process's to choose.
 */
#include "fuzz.h"

#include "core/discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);

	proc_status_nspid(text);
	free(text);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The fault counters behind vmprobe_faults_total (core/fault.h). */
#include "core/fault.h"

const char *const fault_names[FAULT_MAX] = {
	[FAULT_MAP_FULL] = "map_full",     [FAULT_TAP_GONE] = "tap_gone",
	[FAULT_VM_EXITED] = "vm_exited",   [FAULT_TRACEFS] = "tracefs",
	[FAULT_BTF] = "btf",               [FAULT_TCX] = "tcx_attach",
	[FAULT_BPFFS] = "bpffs",           [FAULT_MAP_MEMORY] = "map_memory",
	[FAULT_PROBE_LOAD] = "probe_load",
};

/* Counted by discovery's thread, read by /metrics' threads. */
static unsigned long long faults[FAULT_MAX];

void fault_count(enum fault_kind k)
{
	__atomic_fetch_add(&faults[k], 1, __ATOMIC_RELAXED);
}

unsigned long long fault_total(enum fault_kind k)
{
	return __atomic_load_n(&faults[k], __ATOMIC_RELAXED);
}

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Faults vmprobe meets and rides out: each is said in the log where it
 * happens (once, not at every retry), counted here for
 * vmprobe_faults_total{kind}, and everything it does not touch keeps
 * being measured.
 */
#ifndef VMPROBE_FAULT_H
#define VMPROBE_FAULT_H

enum fault_kind {
	FAULT_MAP_FULL,   /* no free slot for a tap, a drive or a VM's sockets: it is not counted */
	FAULT_TAP_GONE,   /* a tap went away while its programs were attached */
	FAULT_VM_EXITED,  /* a QEMU process exited while discovery read it */
	FAULT_TRACEFS,    /* tracefs was not mounted when tracepoints were attached */
	FAULT_BTF,        /* no kernel BTF: a probe could not load */
	FAULT_TCX,        /* a TCX attach failed: the tap hangs from clsact filters */
	FAULT_BPFFS,      /* bpffs is not mounted and cannot be: no pins for top and hist */
	FAULT_MAP_MEMORY, /* out of memory creating a probe's maps: the probe is not loaded */
	FAULT_PROBE_LOAD, /* a probe failed to load for another reason */
	FAULT_MAX
};

extern const char *const fault_names[FAULT_MAX];

/* One more fault of kind k (any thread). */
void fault_count(enum fault_kind k);
/* Faults of kind k so far. */
unsigned long long fault_total(enum fault_kind k);

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Histogram slot math shared by the BPF programs. */
#ifndef VMPROBE_HIST_BPF_H
#define VMPROBE_HIST_BPF_H

/*
 * Slot of v in a log2 histogram whose slot i holds (2^(i-1), 2^i]:
 * ceil(log2(v)), 0 for v <= 1. Rounding up (rather than the usual
 * floor) makes slot i exactly the Prometheus bucket le=2^i.
 */
static __always_inline __u32 hist_slot(__u64 v, __u32 nr_slots)
{
	__u32 r = 0;

	if (v <= 1)
		return 0;
	v--;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	r += 1;
	return r < nr_slots - 1 ? r : nr_slots - 1;
}

#endif

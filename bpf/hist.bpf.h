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

/*
 * Slot of a duration of `ns` nanoseconds in units of 2^-30 s (TIME_SLOT_UNITS
 * a second, ~0.93 ns each): slot i then holds (2^(i-31), 2^(i-30)] seconds,
 * exactly the native-histogram bucket of index i - 30 (schema 0) and the
 * classic bucket le=2^(i-30). ns * 2^30 / 10^9, rounded up, so that a
 * duration just above a power of two of a second is never put below it.
 */
static __always_inline __u32 time_slot(__u64 ns, __u32 nr_slots)
{
	/* 2^37 ns (137 s) is past every time histogram's last slot. */
	if (ns > (1ULL << 37))
		ns = 1ULL << 37;
	return hist_slot(ns + (ns * 73741824 + 999999999) / 1000000000, nr_slots);
}

/*
 * A duration, the difference of two bpf_ktime_get_ns() stamps that may
 * come from two CPUs whose clocks disagree by more than it lasted (nested
 * virtual machines): a "negative" one (2^64 - x unsigned; no duration
 * reaches 2^63 ns) becomes 0, rather than the last slot and a ruined _sum.
 * True if so, for the caller to count.
 */
static __always_inline bool unskew_ns(__u64 *ns)
{
	if ((__s64)*ns >= 0)
		return false;
	*ns = 0;
	return true;
}

#endif

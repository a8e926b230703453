/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Log2 histogram units: what the BPF programs and user space agree on. */
#ifndef VMPROBE_HIST_H
#define VMPROBE_HIST_H

/*
 * Slot i of a log2 histogram counts values in (2^(i-1), 2^i] units (slot
 * 0: up to 1), its last slot everything larger. Sizes count in bytes;
 * durations in 1/TIME_SLOT_UNITS of a second (2^-30 s, ~0.93 ns:
 * time_slot() in bpf/hist.bpf.h), so that every slot is a power of two of
 * a second: a native-histogram bucket of schema 0 (index i - 30) and a
 * classic bucket le=2^(i-30) s, both exact. Sums of durations stay in ns.
 */
#define TIME_SLOT_UNITS (1ULL << 30)

#endif

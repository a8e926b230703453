/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A drive's counters (struct drive_stats), as every storage probe adds to them. */
#ifndef VMPROBE_DRIVE_BPF_H
#define VMPROBE_DRIVE_BPF_H

#include "hist.bpf.h"

/*
 * One request: bytes, latency and both histograms; shared by all CPUs, so
 * atomically. A request whose stamps came from CPUs whose clocks disagree
 * is never dropped: its "negative" latency is 0 (unskew_ns), and true
 * says so, for the caller to count.
 */
static __always_inline bool drive_stats_add(struct drive_stats *st, __u64 bytes, __u64 lat_ns)
{
	bool skewed = unskew_ns(&lat_ns);

	__sync_fetch_and_add(&st->bytes, bytes);
	__sync_fetch_and_add(&st->lat_sum_ns, lat_ns);
	__sync_fetch_and_add(&st->lat_slots[time_slot(lat_ns, DISK_LAT_SLOTS)], 1);
	__sync_fetch_and_add(&st->size_slots[hist_slot(bytes, DISK_SIZE_SLOTS)], 1);
	return skewed;
}

/* A request the host failed: an error, never an operation, bytes or latency. */
static __always_inline void drive_stats_error(struct drive_stats *st)
{
	__sync_fetch_and_add(&st->errors, 1);
}

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The drive families every storage probe's drives share (vmprobe_disk_*),
 * and the coverage of drives and NICs (vmprobe_drive_info,
 * vmprobe_interface_info).
 */
#ifndef VMPROBE_STORAGE_H
#define VMPROBE_STORAGE_H

#include <stddef.h>

#include "core/discovery.h"
#include "core/util.h"
#include "vmprobe/disk.h"

extern const char *const disk_op_names[DISK_OP_MAX];

/* A free slot of `pool`, its counters in `stats` zeroed for the new drive; or -ENOSPC. */
int drive_slot_get(struct slot_pool *pool, struct drive_stats *stats);

/* A copy of (slot, op) of a drive_stats array the programs write: each counter read whole. */
void drive_stats_copy(const struct drive_stats *stats, unsigned slot, unsigned op,
		      struct drive_stats *out);

/*
 * How long (seconds) after an fd or session is matched to a drive its
 * staged requests are added: a request that started before (staged)
 * completes within it.
 */
#define STAGED_MERGE_GRACE 0.1

/*
 * Adds the requests staged at `key` of the BPF hash `map_fd` (values:
 * struct staged_stats) to drive `slot` of the mmapped array `stats`, and
 * deletes them; 0, -ENOENT if none were staged, or -ESTALE (dropped) if they
 * were made on another file than (dev, ino), the staged entry's.
 */
int staged_merge(int map_fd, const void *key, struct drive_stats *stats, unsigned slot,
		 __u32 dev, __u64 ino);

const struct expo_family *storage_families(size_t *nr);
/* vmprobe_disk_* of every drive a probe measures; the table is locked. */
void storage_render(struct discovery *d, struct expo *e);
/* vmprobe_drive_info and vmprobe_interface_info of every VM; the table is locked. */
void coverage_render(struct discovery *d, struct expo *e);

#endif

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

/*
 * The counters of a storage probe's drives: DISK_OP_MAX drive_stats a slot
 * in a BPF array its programs add to, and each slot's birth in another
 * (slot_pool), both mmapped; and the pool of the slots.
 */
struct drive_store {
	struct drive_stats *stats;
	__u64 *born;
	unsigned max_drives;
	struct slot_pool slots;
	const char *map; /* the stats map's pin ("disk/drive_stats"): where top and hist read */
};

/* Maps the two arrays, of max_drives slots, and makes the pool; 0 or -errno (then closed). */
int drive_store_open(struct drive_store *s, int stats_fd, int born_fd, unsigned max_drives,
		     const char *map);
void drive_store_close(struct drive_store *s);
/* A free slot, its counters zeroed for the new drive; or -ENOSPC. */
int drive_store_get(struct drive_store *s);
void drive_store_put(struct drive_store *s, unsigned slot);
/*
 * Where the counters of a drive a probe measures (disk->cov.probe) are:
 * that probe's store, *slot the drive's; NULL when it has none.
 */
const struct drive_store *drive_store_of(const struct vm_disk *disk, unsigned *slot);

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

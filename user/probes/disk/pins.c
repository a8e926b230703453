// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Adopting the disk probe's pins an earlier serve left: its drives' slots
 * (from the (tgid, fd), (tgid, device) and native image entries that
 * point to them), claimed drive by drive during serve's first scan, so
 * that their counters go on; what no VM claims is released after it.
 * The maps come back through core/pin.c, the hooks in disk.c.
 */
#include "probes/disk/disk_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/discovery.h"
#include "core/pin.h"
#include "core/util.h"
#include "disk.skel.h"

bool disk_adopting(const struct disk_probe *dp)
{
	return dp->adopting;
}

static int adopt_push(struct disk_probe *dp, enum disk_adopt_map map, __u32 tgid, __u32 dev,
		      __u64 ino, __u32 slot, size_t *cap)
{
	struct disk_adopt *e;

	if (slot >= dp->store.max_drives)
		return 0;
	if (dp->nr_adopt == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		e = realloc(dp->adopt, *cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		dp->adopt = e;
	}
	e = &dp->adopt[dp->nr_adopt++];
	*e = (struct disk_adopt){ { tgid, dev, ino }, slot, map, false };
	/* Several entries share a slot: taken once. */
	slot_pool_take(&dp->store.slots, slot);
	return 0;
}

/* The entries of a (tgid, fd or device) -> slot map. */
static int adopt_fd_map(struct disk_probe *dp, struct bpf_map *map, enum disk_adopt_map which,
			size_t *cap)
{
	struct drive_fd_key key, next, *prev = NULL;
	int fd = bpf_map__fd(map), err = 0;
	__u32 slot;

	while (!err && bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(fd, &key, &slot))
			err = adopt_push(dp, which, key.tgid, key.fd, 0, slot, cap);
	}
	return err;
}

int disk_adopt_open(struct disk_probe *dp)
{
	struct native_file_key key, next, *prev = NULL;
	int fd = bpf_map__fd(dp->skel->maps.native_files), err;
	size_t cap = 0;
	__u32 slot;

	if (!pins_on(dp->pins) || !dp->pins->adopting)
		return 0;
	dp->adopting = true;
	err = adopt_fd_map(dp, dp->skel->maps.disk_fds, ADOPT_FDS, &cap);
	if (!err)
		err = adopt_fd_map(dp, dp->skel->maps.disk_devs, ADOPT_DEVS, &cap);
	while (!err && bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		/* tgid 0 counts the VMs using an image: kept up by disk_native_file_add/del. */
		if (key.tgid && !bpf_map_lookup_elem(fd, &key, &slot))
			err = adopt_push(dp, ADOPT_NATIVE, key.tgid, key.dev, key.ino, slot, &cap);
	}
	if (!err)
		log_info("disk probe: %zu image entries of the earlier serve, to be claimed by their "
			 "drives", dp->nr_adopt);
	return err;
}

void disk_adopt_free(struct disk_probe *dp)
{
	free(dp->adopt);
	free(dp->adopt_tgids);
	dp->adopt = NULL;
	dp->adopt_tgids = NULL;
	dp->nr_adopt = dp->nr_adopt_tgids = dp->cap_adopt_tgids = 0;
	dp->adopting = false;
}

/* Whether the VM holds `fd` open on the drive's image (or one of its backing files). */
static bool fd_on_disk(const struct vm_snapshot *snap, __u32 fd, const struct vm_disk *disk)
{
	for (size_t i = 0; i < snap->nr_files; i++)
		if (snap->files[i].fd == (int)fd &&
		    vm_disk_has_file(disk, snap->files[i].dev, snap->files[i].ino))
			return true;
	return false;
}

/* Whether the unclaimed entry e of the VM tgid is the drive's. */
static bool entry_is_drive(const struct disk_adopt *e, __u32 tgid, const struct vm_disk *disk,
			   const struct vm_snapshot *snap)
{
	if (e->claimed || e->key.tgid != tgid)
		return false;
	switch (e->map) {
	case ADOPT_NATIVE:
		return e->key.dev == disk_kdev(disk->dev) && e->key.ino == disk->ino;
	case ADOPT_DEVS:
		return disk->rdev && e->key.dev == disk_kdev(disk->rdev);
	case ADOPT_FDS:
		return fd_on_disk(snap, e->key.dev, disk);
	}
	return false;
}

int disk_drive_claim(struct disk_probe *dp, __u32 tgid, const struct vm_disk *disk,
		     const struct vm_snapshot *snap, int *fds, int *nr_fds)
{
	int slot = -ENOENT;

	*nr_fds = 0;
	for (size_t i = 0; dp->adopting && slot < 0 && i < dp->nr_adopt; i++)
		if (entry_is_drive(&dp->adopt[i], tgid, disk, snap))
			slot = (int)dp->adopt[i].slot;
	/* The slot's every entry of this VM is the drive's: its fds are counted as they were. */
	for (size_t i = 0; slot >= 0 && i < dp->nr_adopt; i++) {
		struct disk_adopt *e = &dp->adopt[i];

		if (e->key.tgid != tgid || e->slot != (__u32)slot)
			continue;
		e->claimed = true;
		if (e->map == ADOPT_FDS && *nr_fds < DRIVE_MAX_FDS)
			fds[(*nr_fds)++] = (int)e->key.dev;
	}
	return slot;
}

void disk_adopt_tgid(struct disk_probe *dp, __u32 tgid, bool on)
{
	size_t kept = 0;

	if (!dp->adopting)
		return;
	if (on) {
		u64_push(&dp->adopt_tgids, &dp->nr_adopt_tgids, &dp->cap_adopt_tgids, tgid);
		return;
	}
	for (size_t i = 0; i < dp->nr_adopt_tgids; i++)
		if (dp->adopt_tgids[i] != tgid)
			dp->adopt_tgids[kept++] = dp->adopt_tgids[i];
	dp->nr_adopt_tgids = kept;
}

/* Whether a claimed entry holds `slot`: then a VM's drive counts in it. */
static bool slot_claimed(const struct disk_probe *dp, __u32 slot)
{
	for (size_t i = 0; i < dp->nr_adopt; i++)
		if (dp->adopt[i].claimed && dp->adopt[i].slot == slot)
			return true;
	return false;
}

/* The VM bitmap as the VMs marked now want it: bits of processes that are no VM go. */
static void tgid_bits_sync(struct disk_probe *dp)
{
	int fd = bpf_map__fd(dp->skel->maps.vm_tgids);
	__u32 words = dp->skel->rodata->tgid_words;
	__u64 *want = calloc(words, sizeof(*want));

	if (!want)
		return;
	for (size_t i = 0; i < dp->nr_adopt_tgids; i++)
		if (dp->adopt_tgids[i] / 64 < words)
			want[dp->adopt_tgids[i] / 64] |= 1ULL << (dp->adopt_tgids[i] % 64);
	for (__u32 w = 0; w < words; w++) {
		__u64 cur = 0;

		if (!bpf_map_lookup_elem(fd, &w, &cur) && cur != want[w])
			bpf_map_update_elem(fd, &w, &want[w], BPF_ANY);
	}
	free(want);
}

void disk_adopt_release(struct disk_probe *dp)
{
	size_t released = 0, claimed = 0;

	for (size_t i = 0; i < dp->nr_adopt; i++) {
		const struct disk_adopt *e = &dp->adopt[i];

		if (e->claimed) {
			claimed++;
			continue;
		}
		released++;
		if (e->map == ADOPT_FDS)
			disk_fd_del(dp, e->key.tgid, e->key.dev);
		else if (e->map == ADOPT_DEVS)
			disk_dev_del(dp, e->key.tgid, e->key.dev);
		else
			disk_native_file_del(dp, e->key.tgid, e->key.dev, e->key.ino);
		if (!slot_claimed(dp, e->slot))
			drive_store_put(&dp->store, e->slot);
	}
	tgid_bits_sync(dp);
	log_info("disk probe: %zu image entries adopted; %zu released (drives or VMs gone)", claimed,
		 released);
	disk_adopt_free(dp);
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The disk probe's view of one VM: a slot per drive with a local image,
 * and the fds QEMU holds on the image.
 */
#include "probes/disk/disk_probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/discovery.h"
#include "core/fault.h"
#include "core/pin.h"
#include "core/util.h"

/* drives_match_fds() keeps a bit per fd in an unsigned. */
_Static_assert(DRIVE_MAX_FDS <= 32, "DRIVE_MAX_FDS fits a bitmask");

static struct disk_vm *disk_vm(const struct probe *p, const struct vm *vm)
{
	return vm->priv[p->id];
}

static struct drive_state *drive_of(const struct probe *p, const struct vm_disk *disk)
{
	return disk->priv[p->id];
}

int disk_vm_add(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct disk_vm *dv = calloc(1, sizeof(*dv));

	if (!dv)
		return -ENOMEM;
	vm->priv[p->id] = dv;
	return 0;
}

static bool is_ours(const struct vm_disk *disk)
{
	return disk->present && qemu_backend_is_local(disk->spec.backend);
}

/*
 * A drive whose image is known but not yet open in QEMU is looked for at
 * every rescan; a drive whose image is not found, or that got no slot,
 * waits for a change of the fd table or the next full sync.
 */
bool disk_vm_pending(struct probe *p, const struct vm *vm)
{
	for (int i = 0; i < vm->nr_disks; i++) {
		const struct drive_state *ds = drive_of(p, &vm->disks[i]);

		if (is_ours(&vm->disks[i]) && vm->disks[i].resolved &&
		    ds && (!ds->had_fds || ds->nr_merge))
			return true;
	}
	return false;
}

/* Whether the fd is one of the drive's already; marks it in *seen, a bit per entry. */
static bool drive_fd_known(const struct drive_state *ds, int fd, unsigned *seen)
{
	for (int k = 0; k < ds->nr_fds; k++)
		if (ds->fds[k] == fd) {
			*seen |= 1u << k;
			return true;
		}
	return false;
}

/* Counts the fd as the drive's (QEMU may hold an image more than once). */
static void drive_fd_add(struct disk_probe *dp, struct discovery *d, const struct vm *vm,
			 struct drive_state *ds, const struct vm_file *file)
{
	int fd = file->fd;
	int err;

	if (ds->nr_fds >= DRIVE_MAX_FDS)
		return;
	err = disk_fd_add(dp, vm->pid, fd, ds->slot);
	if (err) {
		d->attach_errors++;
		log_warn("cannot count fd %d of VM %s: %s", fd, vm->name, strerror(-err));
		return;
	}
	ds->fds[ds->nr_fds++] = fd;
	ds->had_fds = true;
	if (ds->nr_merge < DRIVE_MAX_FDS) {
		ds->merge_files[ds->nr_merge] = (struct file_id){ .dev = file->dev, .ino = file->ino };
		ds->merge_fds[ds->nr_merge++] = fd;
	}
	ds->merge_after = now_seconds() + STAGED_MERGE_GRACE;
	log_debug("fd %d of VM %s (pid %d) is on a drive's image: counted", fd, vm->name,
		  (int)vm->pid);
}

/*
 * Forgets the drive's fds a full walk of the fd table did not find on its
 * image: QEMU closed them (it reopens images as their permissions change
 * at start, and for block-commit, mirror or snapshots), and the number
 * may come back on another file, whose IO is not this drive's.
 */
static void drive_fds_prune(struct disk_probe *dp, const struct vm *vm, struct drive_state *ds,
			    unsigned seen)
{
	int kept = 0;

	for (int k = 0; k < ds->nr_fds; k++) {
		if (seen & (1u << k)) {
			ds->fds[kept++] = ds->fds[k];
			continue;
		}
		disk_fd_del(dp, vm->pid, ds->fds[k]);
		log_debug("fd %d of VM %s (pid %d) is no longer on its image: not counted",
			  ds->fds[k], vm->name, (int)vm->pid);
	}
	ds->nr_fds = kept;
}

/* The fds of the snapshot on each drive's image: new ones counted, closed ones forgotten. */
static void drives_match_fds(struct probe *p, struct discovery *d, struct vm *vm,
			     const struct vm_snapshot *snap)
{
	struct disk_probe *dp = p->priv;
	unsigned seen[VM_MAX_DRIVES] = { 0 };
	struct { const struct vm_file *file; int disk; } adds[VM_MAX_DRIVES * DRIVE_MAX_FDS];
	int nr_adds = 0;

	for (size_t f = 0; f < snap->nr_files; f++) {
		const struct vm_file *file = &snap->files[f];

		for (int i = 0; i < vm->nr_disks; i++) {
			const struct vm_disk *disk = &vm->disks[i];
			struct drive_state *ds = drive_of(p, disk);

			if (ds && vm_disk_has_file(disk, file->dev, file->ino) &&
			    !drive_fd_known(ds, file->fd, &seen[i]) &&
			    nr_adds < (int)ARRAY_SIZE(adds)) {
				adds[nr_adds].file = file;
				adds[nr_adds++].disk = i;
			}
		}
	}
	/* Forget first: a number closed on one drive's image may now be another's. */
	for (int i = 0; i < vm->nr_disks; i++)
		if (drive_of(p, &vm->disks[i]))
			drive_fds_prune(dp, vm, drive_of(p, &vm->disks[i]), seen[i]);
	for (int j = 0; j < nr_adds; j++)
		drive_fd_add(dp, d, vm, drive_of(p, &vm->disks[adds[j].disk]), adds[j].file);
}

/* aio=native is measured at block completion, by the image's (device, inode). */
static bool maybe_native(const struct vm_disk *disk)
{
	return !strcmp(disk->spec.aio, "native") || !strcmp(disk->spec.aio, "unknown");
}

/* The drive's AIO mode when the disk source measuring it is off, else NULL. */
static const char *source_off(const struct disk_probe *dp, const struct vm_disk *disk)
{
	const char *aio = disk->spec.aio[0] ? disk->spec.aio : disk_src_names[DISK_SRC_SYSCALL];

	for (unsigned s = 0; s < DISK_SRC_MAX; s++)
		if (!strcmp(aio, disk_src_names[s]))
			return dp->source_on[s] ? NULL : disk_src_names[s];
	return NULL;
}

/*
 * Registers the drive's image where completions look it up: its files'
 * (device, inode) for aio=native, its device when it is a block device.
 */
static void drive_image_add(struct disk_probe *dp, struct discovery *d, const struct vm *vm,
			    const struct vm_disk *disk, struct drive_state *ds)
{
	ds->image = (struct file_id){ .dev = disk->dev, .ino = disk->ino };
	memcpy(ds->backing, disk->backing, sizeof(ds->backing));
	ds->nr_backing = disk->nr_backing;
	ds->kdev = disk->rdev ? disk_kdev(disk->rdev) : 0;
	if (ds->native) {
		if (disk_native_file_add(dp, vm->pid, disk_kdev(ds->image.dev), ds->image.ino,
					 ds->slot))
			d->attach_errors++;
		for (int i = 0; i < ds->nr_backing; i++)
			if (disk_native_file_add(dp, vm->pid, disk_kdev(ds->backing[i].dev),
						 ds->backing[i].ino, ds->slot))
				d->attach_errors++;
	}
	if (ds->kdev && disk_dev_add(dp, vm->pid, ds->kdev, ds->slot))
		d->attach_errors++;
}

static void drive_image_del(struct disk_probe *dp, const struct vm *vm, struct drive_state *ds)
{
	if (ds->kdev)
		disk_dev_del(dp, vm->pid, ds->kdev);
	if (!ds->native)
		return;
	disk_native_file_del(dp, vm->pid, disk_kdev(ds->image.dev), ds->image.ino);
	for (int i = 0; i < ds->nr_backing; i++)
		disk_native_file_del(dp, vm->pid, disk_kdev(ds->backing[i].dev), ds->backing[i].ino);
}

/* The drive moved to another image (core/inventory.c): its completions are looked up there. */
static void drive_image_follow(struct disk_probe *dp, struct discovery *d, const struct vm *vm,
			       const struct vm_disk *disk, struct drive_state *ds)
{
	if (ds->image.dev == disk->dev && ds->image.ino == disk->ino)
		return;
	drive_image_del(dp, vm, ds);
	drive_image_add(dp, d, vm, disk, ds);
}

/*
 * A slot for a drive whose image was found: the one an earlier serve
 * counted it in (its counters go on, its fds as they were), else a new
 * one; NULL when none is free.
 */
static struct drive_state *drive_count(struct disk_probe *dp, struct discovery *d,
				       const struct vm *vm, struct disk_vm *dv,
				       const struct vm_disk *disk, const struct vm_snapshot *snap)
{
	struct drive_state *ds = calloc(1, sizeof(*ds));
	int slot = ds ? disk_drive_claim(dp, vm->pid, disk, snap, ds->fds, &ds->nr_fds) : -ENOMEM;
	bool adopted = slot >= 0;

	if (ds && slot == -ENOENT)
		slot = drive_store_get(&dp->store);
	if (slot < 0) {
		free(ds);
		d->attach_errors++;
		if (!dv->slot_warned && slot == -ENOSPC)
			fault_count(FAULT_MAP_FULL);
		if (!dv->slot_warned)
			log_warn("cannot count drive %s of VM %s: %s", disk->spec.label, vm->name,
				 slot == -ENOSPC ? "no free slot (raise disk.max_drives)"
						 : strerror(-slot));
		dv->slot_warned = true;
		return NULL;
	}
	ds->slot = slot;
	ds->had_fds = ds->nr_fds > 0;
	if (maybe_native(disk)) {
		if (disk_native_drives(dp, 1))
			ds->hook_failed = true; /* said by the probe, once */
		ds->native = true;
	}
	drive_image_add(dp, d, vm, disk, ds);
	log_info("counting drive %s (%s, aio=%s) of VM %s%s", disk->spec.label, disk->spec.file,
		 disk->spec.aio, vm->name, adopted ? ": adopted, its counters go on" : "");
	return ds;
}

static void drive_forget(struct disk_probe *dp, const struct vm *vm, struct drive_state *ds)
{
	/*
	 * What was staged on its fds before they were counted is its own, the
	 * grace run out or not: taken now, so that a drive that takes the fds
	 * over (a pivot) does not add it too.
	 */
	for (int k = 0; k < ds->nr_merge; k++)
		disk_staged_merge(dp, vm->pid, ds->merge_fds[k], ds->slot,
				  disk_kdev(ds->merge_files[k].dev), ds->merge_files[k].ino);
	for (int k = 0; k < ds->nr_fds; k++)
		disk_fd_del(dp, vm->pid, ds->fds[k]);
	drive_image_del(dp, vm, ds);
	if (ds->native)
		disk_native_drives(dp, -1);
	drive_store_put(&dp->store, ds->slot);
	free(ds);
}

/* Adds what the VM did on newly counted fds before they were its drives'. */
static void drives_merge_staged(struct probe *p, const struct vm *vm)
{
	double now = now_seconds();

	for (int i = 0; i < vm->nr_disks; i++) {
		struct drive_state *ds = drive_of(p, &vm->disks[i]);

		if (!ds || !ds->nr_merge || now < ds->merge_after)
			continue;
		for (int k = 0; k < ds->nr_merge; k++) {
			const struct file_id *f = &ds->merge_files[k];
			int err = disk_staged_merge(p->priv, vm->pid, ds->merge_fds[k], ds->slot,
						    disk_kdev(f->dev), f->ino);

			if (!err)
				log_debug("drive %s of VM %s: requests on fd %d before it was "
					  "counted added", vm->disks[i].spec.label, vm->name,
					  ds->merge_fds[k]);
			else if (err == -ESTALE)
				log_debug("drive %s of VM %s: requests on fd %d before it was "
					  "counted were on another file: not the drive's",
					  vm->disks[i].spec.label, vm->name, ds->merge_fds[k]);
		}
		ds->nr_merge = 0;
	}
}

void disk_vm_sync(struct probe *p, struct discovery *d, struct vm *vm,
		  const struct vm_snapshot *snap)
{
	struct disk_probe *dp = p->priv;
	struct disk_vm *dv = disk_vm(p, vm);
	const char *off;

	if (!dv->marked && disk_vm_mark(dp, vm->pid) == 0)
		dv->marked = true; /* else tried again at the next sync */
	/* Gone first: a drive that moved takes over the image (and fds) of one that went. */
	for (int i = 0; i < vm->nr_disks; i++) {
		struct vm_disk *disk = &vm->disks[i];

		if (!disk->present && drive_of(p, disk)) {
			drive_forget(dp, vm, drive_of(p, disk));
			disk->priv[p->id] = NULL;
			log_info("drive %s of VM %s went: not counted any more", disk->spec.label,
				 vm->name);
		}
	}
	for (int i = 0; i < vm->nr_disks; i++) {
		struct vm_disk *disk = &vm->disks[i];

		if (!is_ours(disk))
			continue;
		if (!disk->resolved) {
			coverage_set(&disk->cov, p, false, "image %s not found in QEMU's mount "
				     "namespace", disk->spec.file);
			continue;
		}
		if (!drive_of(p, disk))
			disk->priv[p->id] = drive_count(dp, d, vm, dv, disk, snap);
		else
			drive_image_follow(dp, d, vm, disk, drive_of(p, disk));
		if (!dv->marked)
			coverage_set(&disk->cov, p, false,
				     "cannot mark the QEMU process or attach its hooks (see log)");
		else if (!drive_of(p, disk))
			coverage_set(&disk->cov, p, false, "no free slot (disk.max_drives)");
		else if (drive_of(p, disk)->hook_failed)
			coverage_set(&disk->cov, p, false,
				     "block_rq_complete did not attach: aio=native not measured");
		else if ((off = source_off(dp, disk)))
			coverage_set(&disk->cov, p, false, "aio=%s: its hooks are missing on this "
				     "kernel (see vmprobe check)", off);
		else
			coverage_set(&disk->cov, p, true, NULL);
	}
	if (snap->fds_read)
		drives_match_fds(p, d, vm, snap);
	drives_merge_staged(p, vm);
}

void disk_vm_del(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct disk_probe *dp = p->priv;
	struct disk_vm *dv = disk_vm(p, vm);
	/* serve with persist is leaving: the VM stays marked, its drives counted. */
	bool keep = p->pins && p->pins->keep;

	if (dv->marked && !keep)
		disk_vm_unmark(dp, vm->pid);
	for (int i = 0; i < vm->nr_disks; i++) {
		struct drive_state *ds = drive_of(p, &vm->disks[i]);

		if (ds && !keep)
			drive_forget(dp, vm, ds);
		else
			free(ds);
		vm->disks[i].priv[p->id] = NULL;
	}
	free(dv);
	vm->priv[p->id] = NULL;
}

const struct drive_store *disk_drive_store(struct probe *p, const struct vm_disk *disk,
					   unsigned *slot)
{
	const struct drive_state *ds = drive_of(p, disk);

	if (!ds)
		return NULL;
	*slot = (unsigned)ds->slot;
	return &((const struct disk_probe *)p->priv)->store;
}

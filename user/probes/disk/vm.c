// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The disk probe's view of one VM: a slot per drive with a local image,
 * the image's identity, and the fds QEMU holds on it.
 */
#include "probes/disk/disk_probe.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/discovery.h"
#include "core/util.h"

/* drive_fds_prune() keeps a bit per fd in an unsigned. */
_Static_assert(DRIVE_MAX_FDS <= 32, "DRIVE_MAX_FDS fits a bitmask");

static struct disk_vm *disk_vm(const struct probe *p, const struct vm *vm)
{
	return vm->priv[p->id];
}

int disk_vm_add(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct disk_vm *dv = calloc(1, sizeof(*dv));

	if (!dv)
		return -ENOMEM;
	for (int i = 0; i < VM_MAX_DRIVES; i++)
		dv->drives[i].slot = -1;
	vm->priv[p->id] = dv;
	return 0;
}

/*
 * A drive whose image is known but not yet open in QEMU is looked for at
 * every rescan; unresolved drives, and drives whose fds have all gone,
 * wait for a full sync.
 */
bool disk_vm_pending(struct probe *p, const struct vm *vm)
{
	const struct disk_vm *dv = disk_vm(p, vm);

	for (int i = 0; i < vm->spec.nr_drives; i++)
		if (dv->drives[i].resolved && !dv->drives[i].had_fds)
			return true;
	return false;
}

/* Finds a drive's image in the process's own mount namespace. */
static void drive_resolve(const struct discovery *d, const struct vm *vm, struct drive_state *ds,
			  const char *file)
{
	char path[PATH_MAX];
	struct stat st;

	if (ds->resolved || !file[0])
		return;
	snprintf(path, sizeof(path), "%s/%d/%s/%s", d->cfg->proc_root, (int)vm->pid,
		 file[0] == '/' ? "root" : "cwd", file);
	if (stat(path, &st))
		return;
	ds->resolved = true;
	ds->st_dev = st.st_dev;
	ds->st_ino = st.st_ino;
	ds->kdev = S_ISBLK(st.st_mode) ? disk_kdev(st.st_rdev) : 0;
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
			 struct drive_state *ds, int fd)
{
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
	log_debug("fd %d of VM %s (pid %d) is on a drive's image: counted", fd, vm->name,
		  (int)vm->pid);
}

/*
 * Forgets the drive's fds a full walk of the fd table did not find on its
 * image: QEMU closed them (it reopens images as their permissions change
 * at start, and for block-commit, mirror or snapshots), and the number
 * may come back on another file, whose IO is not this drive's. A drive
 * QEMU moved to another file (the command line still names the old one)
 * then goes uncounted rather than miscounted.
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
static void drives_match_fds(struct disk_probe *dp, struct discovery *d, const struct vm *vm,
			     struct disk_vm *dv, const struct vm_snapshot *snap)
{
	unsigned seen[VM_MAX_DRIVES] = { 0 };
	struct { int fd, drive; } adds[VM_MAX_DRIVES * DRIVE_MAX_FDS];
	int nr_adds = 0;

	for (size_t f = 0; f < snap->nr_files; f++) {
		const struct vm_file *file = &snap->files[f];

		for (int i = 0; i < vm->spec.nr_drives; i++) {
			struct drive_state *ds = &dv->drives[i];

			if (ds->slot >= 0 && ds->resolved && ds->st_dev == file->dev &&
			    ds->st_ino == file->ino && !drive_fd_known(ds, file->fd, &seen[i]) &&
			    nr_adds < (int)ARRAY_SIZE(adds)) {
				adds[nr_adds].fd = file->fd;
				adds[nr_adds++].drive = i;
			}
		}
	}
	/* Forget first: a number closed on one drive's image may now be another's. */
	for (int i = 0; i < vm->spec.nr_drives; i++)
		drive_fds_prune(dp, vm, &dv->drives[i], seen[i]);
	for (int j = 0; j < nr_adds; j++)
		drive_fd_add(dp, d, vm, &dv->drives[adds[j].drive], adds[j].fd);
}

/* A slot for drive i, whose image was found; false when none is free. */
static bool drive_count(struct disk_probe *dp, struct discovery *d, const struct vm *vm,
			struct drive_state *ds, const struct vm_drive *dr)
{
	int slot = disk_slot_alloc(dp);

	if (slot < 0) {
		d->attach_errors++;
		log_warn("cannot count drive %s of VM %s: no free slot (raise disk.max_drives)",
			 dr->label, vm->name);
		return false;
	}
	ds->slot = slot;
	if (!strcmp(dr->aio, "native")) {
		disk_native_drives(dp, 1);
		if (disk_native_file_add(dp, vm->pid, disk_kdev(ds->st_dev), ds->st_ino, slot))
			d->attach_errors++;
	}
	log_info("counting drive %s (%s, aio=%s) of VM %s", dr->label, dr->file, dr->aio,
		 vm->name);
	return true;
}

void disk_vm_sync(struct probe *p, struct discovery *d, struct vm *vm,
		  const struct vm_snapshot *snap)
{
	struct disk_probe *dp = p->priv;
	struct disk_vm *dv = disk_vm(p, vm);

	if (!dv->marked) {
		if (disk_vm_mark(dp, vm->pid)) {
			d->attach_errors++;
			return;
		}
		dv->marked = true;
	}
	for (int i = 0; i < vm->spec.nr_drives; i++) {
		struct drive_state *ds = &dv->drives[i];

		/*
		 * Only drives with a local image get a slot: network storage
		 * (rbd:, nbd:, iSCSI) has no file to match, and a series that
		 * could only ever read 0 would mislead.
		 */
		drive_resolve(d, vm, ds, vm->spec.drives[i].file);
		if (ds->slot < 0 && ds->resolved && !drive_count(dp, d, vm, ds, &vm->spec.drives[i]))
			return;
	}
	if (snap->fds_read)
		drives_match_fds(dp, d, vm, dv, snap);
	for (int i = 0; i < vm->spec.nr_drives; i++) {
		struct drive_state *ds = &dv->drives[i];

		if (ds->slot >= 0 && ds->kdev && disk_dev_add(dp, vm->pid, ds->kdev, ds->slot))
			d->attach_errors++;
	}
}

void disk_vm_del(struct probe *p, struct discovery *d, struct vm *vm)
{
	struct disk_probe *dp = p->priv;
	struct disk_vm *dv = disk_vm(p, vm);

	if (dv->marked)
		disk_vm_unmark(dp, vm->pid);
	for (int i = 0; i < vm->spec.nr_drives; i++) {
		struct drive_state *ds = &dv->drives[i];

		if (ds->slot < 0)
			continue;
		for (int k = 0; k < ds->nr_fds; k++)
			disk_fd_del(dp, vm->pid, ds->fds[k]);
		if (ds->kdev)
			disk_dev_del(dp, vm->pid, ds->kdev);
		if (!strcmp(vm->spec.drives[i].aio, "native")) {
			disk_native_drives(dp, -1);
			disk_native_file_del(dp, vm->pid, disk_kdev(ds->st_dev), ds->st_ino);
		}
		disk_slot_free(dp, ds->slot);
	}
	free(dv);
	vm->priv[p->id] = NULL;
}

int disk_vm_drive_slot(const struct probe *p, const struct vm *vm, int i)
{
	return disk_vm(p, vm)->drives[i].slot;
}

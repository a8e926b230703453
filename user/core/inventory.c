// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A VM's drives and NICs (core/inventory.h): rebuilt at each sync from the
 * command line, libvirt's live state and the fds, matched to what was
 * there before so that the probes keep their state of what stayed.
 */
#define _GNU_SOURCE /* O_PATH */
#include "core/inventory.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/discovery.h"
#include "core/libvirt.h"
#include "core/process.h"
#include "core/util.h"

const char *const vm_source_names[] = {
	[VM_SRC_CMDLINE] = "cmdline", [VM_SRC_FD] = "fd", [VM_SRC_LIBVIRT] = "libvirt",
};

void coverage_set(struct coverage *c, const struct probe *p, bool measured, const char *why, ...)
{
	va_list ap;

	c->probe = p;
	c->measured = measured;
	c->reason[0] = '\0';
	if (measured || !why)
		return;
	va_start(ap, why);
	vsnprintf(c->reason, sizeof(c->reason), why, ap);
	va_end(ap);
}

void iface_label(const char *device_id, const char *tap, char *out, size_t size)
{
	if (!strncmp(device_id, "ua-", 3) && device_id[3])
		snprintf(out, size, "%s", device_id + 3);
	else if (tap[0])
		snprintf(out, size, "%s", tap);
	else
		snprintf(out, size, "%s", device_id);
}

static bool in_ids(const struct file_id *ids, int n, dev_t dev, ino_t ino)
{
	for (int i = 0; i < n; i++)
		if (ids[i].dev == dev && ids[i].ino == ino)
			return true;
	return false;
}

bool vm_disk_has_file(const struct vm_disk *disk, dev_t dev, ino_t ino)
{
	return disk->resolved && ((disk->dev == dev && disk->ino == ino) ||
				  in_ids(disk->backing, disk->nr_backing, dev, ino));
}

/* A drive wanted now, and where it was learned. */
struct want_disk {
	struct vm_drive spec;
	enum vm_source source;
	const struct vm_file *file; /* VM_SRC_FD: the fd it was found on */
	struct file_id backing[IMAGE_MAX_BACKING]; /* VM_SRC_FD: its backing chain */
	int nr_backing;
	bool used;
};

static void proc_pid_dir(const struct discovery *d, const struct vm *vm, char *out, size_t size)
{
	snprintf(out, size, "%.200s/%d", d->cfg->proc_root, (int)vm->pid);
}

/*
 * A named drive is its name: libvirt moves one to a new image under the
 * same alias (blockcopy --pivot, an active blockcommit, a disk-only
 * snapshot), a file or a block device alike (the disk probe measures
 * both). One learned from an fd is its image (the file, whatever its path
 * says now: renamed, or deleted while QEMU holds it).
 */
static bool same_drive(const struct vm_disk *have, const struct want_disk *w)
{
	bool local = qemu_backend_is_local(have->spec.backend) &&
		     qemu_backend_is_local(w->spec.backend);

	if ((have->source == VM_SRC_FD) != (w->source == VM_SRC_FD))
		return false;
	/* Birth times, where both are known, tell a reused inode number from the file. */
	if (w->source == VM_SRC_FD)
		return have->dev == w->file->dev && have->ino == w->file->ino &&
		       (!have->btime_ns || !w->file->btime_ns ||
			have->btime_ns == w->file->btime_ns);
	return !strcmp(have->spec.label, w->spec.label) &&
	       (local || !strcmp(have->spec.backend, w->spec.backend));
}

/* Whether a present drive of the VM is labelled `label`. */
static bool label_taken(const struct vm *vm, const char *label)
{
	for (int i = 0; i < vm->nr_disks; i++)
		if (vm->disks[i].present && !strcmp(vm->disks[i].spec.label, label))
			return true;
	return false;
}

/*
 * QEMU's path of an image, opened O_PATH from here (core/image.h):
 * /dev/fdset/N is an -add-fd fd, found as QEMU holds it. An fd or -errno.
 */
static int drive_open(const struct vm *vm, const char *proc_pid, const char *file)
{
	char path[PATH_MAX];
	int fd;

	if (!strncmp(file, "/dev/fdset/", 11))
		for (int i = 0; i < vm->spec.nr_fdsets; i++)
			if (vm->spec.fdsets[i].set == atoi(file + 11)) {
				snprintf(path, sizeof(path), "%.255s/fd/%d", proc_pid,
					 vm->spec.fdsets[i].fd);
				fd = open(path, O_PATH | O_CLOEXEC);
				return fd < 0 ? -errno : fd;
			}
	return image_open(proc_pid, file);
}

/*
 * Finds a local image in the process's own mount namespace, and the
 * backing files below it unless its format has none.
 */
static void disk_resolve(const struct discovery *d, const struct vm *vm, struct vm_disk *disk)
{
	const char *file = disk->spec.file;
	char proc_pid[256];
	struct stat st;
	int fd;

	if (disk->resolved || !file[0] || !qemu_backend_is_local(disk->spec.backend))
		return;
	proc_pid_dir(d, vm, proc_pid, sizeof(proc_pid));
	fd = drive_open(vm, proc_pid, file);
	if (fd < 0)
		return;
	if (!fstat(fd, &st)) {
		disk->resolved = true;
		disk->dev = st.st_dev;
		disk->ino = st.st_ino;
		disk->rdev = S_ISBLK(st.st_mode) ? st.st_rdev : 0;
		if (strcmp(disk->spec.format, "raw"))
			disk->nr_backing = image_backing_chain(proc_pid, fd, file, disk->backing,
							       IMAGE_MAX_BACKING);
	}
	close(fd);
}

/* Whether a VM has as many entries as vmprobe keeps; said once, never silently. */
static bool too_many(struct vm *vm, int have, int max, const char *what, const char *label)
{
	if (have < max)
		return false;
	if (!vm->full_warned)
		log_warn("VM %s has more than %d %s: %s and any more are not listed nor measured",
			 vm->name, max, what, label);
	vm->full_warned = true;
	return true;
}

/* The drive is on the candidate's image: its file and backing chain. */
static void disk_take(struct vm_disk *disk, const struct want_disk *w)
{
	disk->dev = w->file->dev;
	disk->ino = w->file->ino;
	disk->btime_ns = w->file->btime_ns;
	disk->rdev = S_ISBLK(w->file->mode) ? w->file->rdev : 0;
	memcpy(disk->backing, w->backing, sizeof(disk->backing));
	disk->nr_backing = w->nr_backing;
	disk->open = disk->open_known = disk->seen_open = disk->settled = true;
	disk->closed_at = 0;
}

/*
 * Keeps the entries of `vm` of one kind (fd-learned or named) that are
 * still wanted, marks the others gone, and adds the new ones.
 */
static void disks_reconcile(struct vm *vm, struct want_disk *want, int nr_want, bool fd_kind)
{
	for (int i = 0; i < vm->nr_disks; i++) {
		struct vm_disk *have = &vm->disks[i];
		bool kept = false;

		if (!have->present || (have->source == VM_SRC_FD) != fd_kind)
			continue;
		for (int j = 0; j < nr_want && !kept; j++) {
			if (want[j].used || !same_drive(have, &want[j]))
				continue;
			want[j].used = kept = true;
			/* An fd's image keeps the label (its path) it was first seen with. */
			if (fd_kind)
				continue;
			/* On a new image: found again there (disk_resolve), its counters go on. */
			if (strcmp(have->spec.file, want[j].spec.file)) {
				log_info("VM %s: drive %s moved to %s", vm->name, have->spec.label,
					 want[j].spec.file);
				have->resolved = have->open = false;
				have->dev = have->rdev = 0;
				have->ino = 0;
				have->nr_backing = 0;
			}
			/* libvirt's state and the command line may tell different details. */
			have->spec = want[j].spec;
			have->source = want[j].source;
		}
		have->present = kept;
	}
	for (int j = 0; j < nr_want; j++) {
		struct vm_disk *disk;

		if (want[j].used || too_many(vm, vm->nr_disks, VM_MAX_DRIVES, "drives",
					     want[j].spec.label))
			continue;
		disk = &vm->disks[vm->nr_disks++];
		memset(disk, 0, sizeof(*disk));
		disk->spec = want[j].spec;
		/* A new image where a drive's, renamed or deleted, was: told apart. */
		if (want[j].file && label_taken(vm, disk->spec.label))
			snprintf(disk->spec.label + strnlen(disk->spec.label, VM_ID_MAX - 32),
				 32, " (inode %llu)", (unsigned long long)want[j].file->ino);
		disk->source = want[j].source;
		disk->present = true;
		if (want[j].file) {
			disk->resolved = true;
			disk_take(disk, &want[j]);
		}
	}
}

/* The drive of the command line labelled `label`, for the details libvirt's state lacks. */
static const struct vm_drive *spec_drive(const struct vm *vm, const char *label)
{
	for (int i = 0; i < vm->spec.nr_drives; i++)
		if (!strcmp(vm->spec.drives[i].label, label))
			return &vm->spec.drives[i];
	return NULL;
}

/* Drives named by libvirt's live state when it has one, else by the command line. */
static int named_drives(const struct vm *vm, const struct libvirt_domain *dom,
			struct want_disk *want)
{
	int n = 0;

	if (!dom) {
		for (int i = 0; i < vm->spec.nr_drives; i++)
			if (!(vm->drives_gone & (1u << i)))
				want[n++] = (struct want_disk){ .spec = vm->spec.drives[i],
								.source = VM_SRC_CMDLINE };
		return n;
	}
	for (int i = 0; i < dom->nr_disks && n < VM_MAX_DRIVES; i++) {
		const struct vm_drive *cmd = spec_drive(vm, dom->disks[i].label);

		want[n] = (struct want_disk){ .spec = dom->disks[i], .source = VM_SRC_LIBVIRT };
		/*
		 * A disk libvirt names by no file (<disk type='volume'>: a pool
		 * and a volume) is what QEMU was given for it, libvirt's label kept.
		 */
		if (cmd && !dom->disks[i].file[0]) {
			want[n].spec = *cmd;
			str_copy(want[n].spec.label, sizeof(want[n].spec.label),
				 dom->disks[i].label);
		}
		/* The AIO mode and node name are QEMU's: the command line has them. */
		if (cmd && !strcmp(cmd->file, want[n].spec.file)) {
			str_copy(want[n].spec.aio, sizeof(want[n].spec.aio), cmd->aio);
			str_copy(want[n].spec.node, sizeof(want[n].spec.node), cmd->node);
		}
		n++;
	}
	return n;
}

/* Files of the VM that are no drive of their own (struct vm_files, resolved). */
struct not_drives {
	struct file_id ids[2 * VM_MAX_OTHER_FILES];
	int n;
};

static void not_drives_add(struct not_drives *nd, const char *proc_pid, const struct vm_files *f)
{
	struct stat st;

	for (int i = 0; f && i < f->n && nd->n < (int)ARRAY_SIZE(nd->ids); i++) {
		if (!image_stat(proc_pid, f->path[i], &st))
			nd->ids[nd->n++] = (struct file_id){ .dev = st.st_dev, .ino = st.st_ino };
	}
}

/* A named drive's image or backing file, CD-ROM media, firmware, ...: not a drive of its own. */
static bool file_is_taken(const struct vm *vm, const struct not_drives *nd, const struct vm_file *f)
{
	for (int i = 0; i < vm->nr_disks; i++)
		if (vm->disks[i].present && vm->disks[i].source != VM_SRC_FD &&
		    vm_disk_has_file(&vm->disks[i], f->dev, f->ino))
			return true;
	return in_ids(nd->ids, nd->n, f->dev, f->ino);
}

/* Drops the candidates another one's backing chain has: they are that drive's. */
static int drop_backing(struct want_disk *want, int n)
{
	int kept = 0;

	for (int i = 0; i < n; i++) {
		bool below = false;

		for (int j = 0; j < n && !below; j++)
			below = j != i && in_ids(want[j].backing, want[j].nr_backing,
						 want[i].file->dev, want[i].file->ino);
		if (!below)
			want[kept++] = want[i];
	}
	return kept;
}

/*
 * Images QEMU holds open that nothing names (a drive hot-plugged over QMP
 * on a VM no libvirt manages): told apart from QEMU's other files (logs,
 * pid file) by the image locks QEMU's file driver takes, and from the
 * other files it locks (CD-ROM media, firmware, backing files) by what
 * the command line, libvirt and the images' own headers name. Labelled
 * by the image's path: no device id can be learned for them.
 */
static int fd_drives(const struct discovery *d, const struct vm *vm,
		     const struct vm_snapshot *snap, const struct libvirt_domain *dom,
		     struct want_disk *want)
{
	char proc_pid[256], path[PATH_MAX], text[4096];
	struct not_drives nd = { .n = 0 };
	int n = 0, fd;

	proc_pid_dir(d, vm, proc_pid, sizeof(proc_pid));
	not_drives_add(&nd, proc_pid, &vm->spec.others);
	not_drives_add(&nd, proc_pid, dom ? &dom->others : NULL);
	for (size_t i = 0; i < snap->nr_files && n < VM_MAX_DRIVES; i++) {
		const struct vm_file *f = &snap->files[i];
		bool dup = false;

		if (file_is_taken(vm, &nd, f))
			continue;
		for (int j = 0; j < n; j++)
			dup |= want[j].file->dev == f->dev && want[j].file->ino == f->ino;
		snprintf(path, sizeof(path), "%.255s/fdinfo/%d", proc_pid, f->fd);
		if (dup || read_file(path, text, sizeof(text)) <= 0 || !fdinfo_qemu_image_lock(text))
			continue;
		want[n] = (struct want_disk){ .source = VM_SRC_FD, .file = f };
		str_copy(want[n].spec.label, sizeof(want[n].spec.label), f->path);
		str_copy(want[n].spec.file, sizeof(want[n].spec.file), f->path);
		snprintf(want[n].spec.backend, sizeof(want[n].spec.backend), "%s",
			 S_ISBLK(f->mode) ? "host_device" : "file");
		/* Its AIO mode is not known: the disk probe watches every path for it. */
		snprintf(want[n].spec.aio, sizeof(want[n].spec.aio), "unknown");
		snprintf(path, sizeof(path), "%.255s/fd/%d", proc_pid, f->fd);
		fd = open(path, O_PATH | O_CLOEXEC);
		if (fd >= 0) {
			want[n].nr_backing = image_backing_chain(proc_pid, fd, f->path,
								 want[n].backing, IMAGE_MAX_BACKING);
			close(fd);
		}
		n++;
	}
	return drop_backing(want, n);
}

static void disk_move(const struct vm *vm, struct vm_disk *disk, const struct want_disk *w)
{
	disk_take(disk, w);
	log_info("VM %s: drive %s moved to %s", vm->name, disk->spec.label, w->file->path);
}

static bool disk_open_in(const struct vm_disk *disk, const struct vm_snapshot *snap)
{
	for (size_t f = 0; f < snap->nr_files; f++)
		if (vm_disk_has_file(disk, snap->files[f].dev, snap->files[f].ino))
			return true;
	return false;
}

/*
 * QEMU opens its drives' images as it starts, before it runs the guest;
 * far past that, a drive of the command line whose image vmprobe has never
 * seen open was unplugged before vmprobe looked.
 */
#define QEMU_STARTUP_S 10.0

/*
 * Seconds since QEMU was exec'd, -1 if that cannot be told. Its process's
 * start time is the fork's (a launcher may have run long before the
 * exec): the first thread QEMU starts (RCU's, from a constructor) is
 * the exec's, to a few milliseconds.
 */
static double qemu_age(const struct discovery *d, const struct vm *vm)
{
	char dir[PATH_MAX], path[PATH_MAX + 300], buf[1024];
	unsigned long long first = 0;
	struct proc_stat st;
	struct dirent *e;
	DIR *dh;

	proc_pid_dir(d, vm, dir, sizeof(dir));
	strncat(dir, "/task", sizeof(dir) - strlen(dir) - 1);
	dh = opendir(dir);
	if (!dh)
		return -1;
	while ((e = readdir(dh))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9' || atoi(e->d_name) == (int)vm->pid)
			continue;
		snprintf(path, sizeof(path), "%s/%s/stat", dir, e->d_name);
		if (read_file(path, buf, sizeof(buf)) > 0 && !proc_stat_parse(buf, &st) &&
		    (!first || st.start < first))
			first = st.start;
	}
	closedir(dh);
	if (!first)
		return -1;
	return boottime_ns() / 1e9 - (double)first / sysconf(_SC_CLK_TCK);
}

/*
 * Whether an fd may be on the drive's image though not as its path stats:
 * the same block device under another node, or the path QEMU opened (the
 * file replaced or deleted since, QEMU chrooted since).
 */
static bool disk_maybe_open(const struct vm_disk *disk, const struct vm_snapshot *snap)
{
	size_t len = strlen(disk->spec.file);

	for (size_t f = 0; f < snap->nr_files; f++) {
		const struct vm_file *file = &snap->files[f];

		if (disk->rdev && S_ISBLK(file->mode) && file->rdev == disk->rdev)
			return true;
		if (!strncmp(file->path, disk->spec.file, len) &&
		    (!file->path[len] || !strcmp(file->path + len, " (deleted)")))
			return true;
	}
	return false;
}

/*
 * A command-line drive never seen open, at a walk that read every fd:
 * in a QEMU long started, and with no fd that may be its image, it was
 * unplugged before vmprobe looked (drives_unplugged confirms it). Its
 * image cannot have moved where vmprobe saw: no move is inferred.
 */
static void drive_never_open(const struct discovery *d, struct vm *vm, struct vm_disk *disk,
			     const struct vm_snapshot *snap)
{
	double age;

	if (disk->open || disk->settled || disk->source != VM_SRC_CMDLINE || vm->libvirt_seen ||
	    snap->fds_opaque || snap->fds_partial)
		return;
	age = qemu_age(d, vm);
	if (age < QEMU_STARTUP_S)
		return; /* QEMU may still be opening it (or is no QEMU to tell by): next walk */
	disk->settled = true;
	if (!disk_maybe_open(disk, snap))
		disk->closed_at = now_seconds();
}

/*
 * A named drive QEMU moved to a new image stays the same drive (its
 * labels and counters go on); the new image, which nothing names, is no
 * drive of its own. A new image is a named drive's when its backing chain
 * holds that drive's image (blockdev-snapshot, a mirror onto an overlay of
 * the same base); or when it is the one candidate at the walk where the
 * drive's own image was closed (blockdev-mirror or drive-mirror, then
 * job-complete: the target was opened before, the source closed at the
 * pivot). A drive whose image closed with no one candidate keeps its own
 * image (said once). Returns the candidates left (want[0..n)).
 */
static int drives_follow(const struct discovery *d, struct vm *vm, const struct vm_snapshot *snap,
			 struct want_disk *want, int n)
{
	struct vm_disk *closed[VM_MAX_DRIVES];
	int nr_closed = 0;

	for (int i = 0; i < vm->nr_disks; i++) {
		struct vm_disk *disk = &vm->disks[i];
		bool was_open = disk->open;

		if (!disk->present || !disk->resolved || disk->source == VM_SRC_FD)
			continue;
		for (int j = 0; j < n; j++) {
			if (!in_ids(want[j].backing, want[j].nr_backing, disk->dev, disk->ino))
				continue;
			disk_move(vm, disk, &want[j]);
			want[j--] = want[--n];
		}
		disk->open = disk_open_in(disk, snap);
		disk->open_known = true;
		if (disk->open)
			disk->closed_at = 0;
		disk->seen_open |= disk->open;
		disk->settled |= disk->open;
		drive_never_open(d, vm, disk, snap);
		if (was_open && !disk->open)
			closed[nr_closed++] = disk;
	}
	if (nr_closed == 1 && n == 1) {
		disk_move(vm, closed[0], &want[0]);
		return 0;
	}
	for (int i = 0; i < nr_closed; i++) {
		/* Nothing opened in its place: unplugged, if it stays closed (drives_unplugged). */
		if (!n) {
			if (closed[i]->source == VM_SRC_CMDLINE && !snap->fds_opaque &&
			    !snap->fds_partial)
				closed[i]->closed_at = now_seconds();
			continue;
		}
		if (!closed[i]->move_warned)
			log_warn("VM %s: drive %s's image was closed with %d new images open: where "
				 "it moved, if it did, cannot be told", vm->name,
				 closed[i]->spec.label, n);
		closed[i]->move_warned = true;
	}
	return n;
}

_Static_assert(VM_MAX_DRIVES <= 32, "vm.drives_gone has a bit per command-line drive");

/* How long a closed image must stay closed before its drive counts as unplugged. */
#define UNPLUG_CONFIRM_S 0.2

/*
 * A drive of the command line whose image QEMU closed with nothing opened
 * in its place, and still closed at a later walk UNPLUG_CONFIRM_S on, was
 * unplugged (device_del over QMP: QEMU closes a -drive's image with its
 * device): it goes, series and all, and the command line, which still
 * names it, names it no more. Closed at one walk only, it may have been
 * QEMU reopening it (a new fd opened before the old one closed, the walk
 * of the fd table in between). Nothing is concluded from a walk that
 * could not read every fd (EACCES, EIO, ESTALE: its image may be among
 * them). A VM libvirt manages, or did (its state unreadable for a while),
 * loses drives by libvirt's state only.
 */
static void drives_unplugged(struct vm *vm, const struct vm_snapshot *snap)
{
	double now = now_seconds();

	for (int i = 0; i < vm->nr_disks; i++) {
		struct vm_disk *disk = &vm->disks[i];

		if (disk->source != VM_SRC_CMDLINE || vm->libvirt_seen)
			disk->closed_at = 0;
		if (!disk->present || disk->open || !disk->closed_at)
			continue;
		if (snap->fds_opaque || snap->fds_partial)
			continue;
		if (now - disk->closed_at < UNPLUG_CONFIRM_S) {
			vm->needs_sync = true; /* looked at again at the next scan */
			continue;
		}
		for (int k = 0; k < vm->spec.nr_drives; k++)
			if (!strcmp(vm->spec.drives[k].label, disk->spec.label))
				vm->drives_gone |= 1u << k;
		disk->present = false;
		if (disk->seen_open)
			log_info("VM %s: drive %s's image was closed, nothing opened in its place: "
				 "unplugged", vm->name, disk->spec.label);
		else
			log_info("VM %s: drive %s's image is not open, QEMU started long ago: "
				 "unplugged before vmprobe looked", vm->name, disk->spec.label);
	}
}

/* Whether the file is a drive learned from an fd already. */
static bool listed(const struct vm *vm, const struct vm_file *f)
{
	for (int i = 0; i < vm->nr_disks; i++)
		if (vm->disks[i].present && vm->disks[i].source == VM_SRC_FD &&
		    vm->disks[i].dev == f->dev && vm->disks[i].ino == f->ino)
			return true;
	return false;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/*
 * A named local drive whose image its name did not lead to (a path
 * relative to the directory QEMU was started in, before -daemonize went
 * to /) is the one unnamed image QEMU holds of the same file name: one
 * drive, measured under its name, not two. Never an image already listed
 * as a drive of its own (two of that name were: which one is not known).
 * Returns the candidates left.
 */
static int drives_claim(struct vm *vm, struct want_disk *want, int n)
{
	for (int i = 0; i < vm->nr_disks && n; i++) {
		struct vm_disk *disk = &vm->disks[i];
		const char *base = base_name(disk->spec.file);
		int found = -1, hits = 0;
		bool taken = false;

		if (!disk->present || disk->resolved || disk->source == VM_SRC_FD || !base[0] ||
		    !qemu_backend_is_local(disk->spec.backend))
			continue;
		for (int j = 0; j < n; j++) {
			if (strcmp(base_name(want[j].file->path), base))
				continue;
			found = j;
			hits++;
			taken |= listed(vm, want[j].file);
		}
		if (hits != 1 || taken)
			continue;
		disk->resolved = true;
		disk_take(disk, &want[found]);
		log_info("VM %s: drive %s (%s) is the image QEMU holds as %s", vm->name,
			 disk->spec.label, disk->spec.file, want[found].file->path);
		want[found] = want[--n];
	}
	return n;
}

static void disks_update(struct discovery *d, struct vm *vm, const struct vm_snapshot *snap,
			 const struct libvirt_domain *dom)
{
	struct want_disk *want = calloc(VM_MAX_DRIVES, sizeof(*want));
	int n;

	if (!want)
		return;
	n = named_drives(vm, dom, want);
	disks_reconcile(vm, want, n, false);
	for (int i = 0; i < vm->nr_disks; i++)
		if (vm->disks[i].present)
			disk_resolve(d, vm, &vm->disks[i]);
	if (snap->fds_read) {
		memset(want, 0, VM_MAX_DRIVES * sizeof(*want));
		n = fd_drives(d, vm, snap, dom, want);
		n = drives_claim(vm, want, n);
		n = drives_follow(d, vm, snap, want, n);
		disks_reconcile(vm, want, n, true);
		drives_unplugged(vm, snap);
	}
	free(want);
}

/* A NIC wanted now. */
struct want_iface {
	char tap[IFNAMSIZ];
	char device_id[VM_ID_MAX];
	char label[VM_ID_MAX];
	char type[16];
	char mac[18];
	enum vm_source source;
	bool used;
};

/* The tap a command-line NIC is: named by ifname=, else the tap of one of its fds. */
static const char *nic_tap(const struct vm_nic *nic, const struct vm_snapshot *snap)
{
	/* ifname=vm1tap%d is a template the kernel fills in: not the tap's name. */
	if (nic->ifname[0] && !strchr(nic->ifname, '%'))
		return nic->ifname;
	for (int k = 0; k < nic->nr_fds; k++)
		for (size_t t = 0; t < snap->nr_tuns; t++)
			if (snap->tuns[t].fd == nic->fds[k])
				return snap->tuns[t].ifname;
	return "";
}

/* A NIC whose tun QEMU opens (not passed by fd): a tap netdev, or a bridge netdev's. */
static bool qemu_holds_tun(const struct vm_nic *nic)
{
	return !nic->nr_fds && (!strcmp(nic->type, "tap") || !strcmp(nic->type, "bridge"));
}

/*
 * A NIC whose tap QEMU opened itself, with no name given: a tap netdev
 * named by neither ifname= nor fd= (QEMU has the kernel name it, tap0 ...;
 * a script puts it on a bridge) or by an ifname= template (vm1tap%d), or a
 * bridge netdev (qemu-bridge-helper's tap).
 */
static bool qemu_opens_tun(const struct vm_nic *nic)
{
	return (!nic->ifname[0] || strchr(nic->ifname, '%')) && qemu_holds_tun(nic);
}

/* Whether a command-line NIC names `tap`, by ifname= or by one of its fds. */
static bool tap_named(const struct vm *vm, const struct vm_snapshot *snap, const char *tap)
{
	for (int i = 0; i < vm->spec.nr_nics; i++)
		if (!strcmp(nic_tap(&vm->spec.nics[i], snap), tap))
			return true;
	return false;
}

/* Whether a command-line NIC QEMU opened the tun of is tied to `tap` already. */
static bool tap_tied(const struct vm *vm, const char *tap)
{
	for (int i = 0; i < vm->spec.nr_nics; i++)
		if (!strcmp(vm->nic_taps[i], tap))
			return true;
	return false;
}

/*
 * The taps of the NICs whose tun QEMU opened itself: nothing on the
 * command line ties such a NIC to its tun fd, but QEMU opens its netdevs
 * in command-line order (within one syntax: JSON -netdev before keyval
 * ones, then -nic; mixed, the order may differ), so a NIC seen without a
 * tap yet takes, in that order, the tap of the lowest tun
 * fd that no other NIC names or was tied to. A tie holds from then on
 * (vm->nic_taps): a NIC keeps its tap whatever later walks see (an
 * unplugged neighbour, a tap hot-plugged on a lower fd, a walk that could
 * not read the fds), until its tap closes (nic_unplugged). NULL: none.
 */
static void qemu_opened_taps(struct vm *vm, const struct vm_snapshot *snap,
			     const char *taps[VM_MAX_NICS])
{
	for (int i = 0; i < vm->spec.nr_nics; i++) {
		const struct vm_tun *next = NULL;

		taps[i] = NULL;
		if (!qemu_opens_tun(&vm->spec.nics[i]) || (vm->nics_gone & (1u << i)))
			continue;
		/* Tied only by a walk that read every fd: one missed would shift the order. */
		if (!vm->nic_taps[i][0] && snap->fds_read && !snap->fds_opaque &&
		    !snap->fds_partial) {
			/* A multiqueue tap has several fds: the lowest of all counts. */
			for (size_t t = 0; t < snap->nr_tuns; t++) {
				const struct vm_tun *u = &snap->tuns[t];

				if ((!next || u->fd < next->fd) &&
				    !tap_named(vm, snap, u->ifname) && !tap_tied(vm, u->ifname))
					next = u;
			}
			if (next)
				str_copy(vm->nic_taps[i], sizeof(vm->nic_taps[i]), next->ifname);
		}
		taps[i] = vm->nic_taps[i][0] ? vm->nic_taps[i] : NULL;
	}
}

/* The lowest fd of the VM's tuns on `tap`, -1 if none. */
static int tun_fd_of(const struct vm_snapshot *snap, const char *tap)
{
	int fd = -1;

	for (size_t t = 0; tap[0] && t < snap->nr_tuns; t++)
		if (!strcmp(snap->tuns[t].ifname, tap) && (fd < 0 || snap->tuns[t].fd < fd))
			fd = snap->tuns[t].fd;
	return fd;
}

/* Whether fd is a tun whose tap was deleted: open, on no tap (QEMU may reuse a closed one's). */
static bool tun_fd_detached(const struct vm_snapshot *snap, int fd)
{
	bool open = false;

	for (size_t t = 0; t < snap->nr_tun_fds; t++)
		open |= snap->tun_fds[t] == fd;
	for (size_t t = 0; t < snap->nr_tuns; t++)
		open &= snap->tuns[t].fd != fd;
	return open;
}

_Static_assert(VM_MAX_NICS <= 32, "vm.nics_tun_seen has a bit per command-line NIC");

/*
 * Whether a command-line NIC whose tun QEMU holds (by ifname= or opened
 * itself) was unplugged: its tap's tun fd, seen at an earlier walk, is
 * closed (device_del and netdev_del over QMP close it), not merely
 * detached from a tap someone deleted (the fd stays open: the NIC stays,
 * its tap said not found, counted again if it comes back). A NIC that
 * never had its tun open stays, said to have no tap; nothing is concluded
 * from a walk that could not read every fd, nor for a VM libvirt manages
 * (its state says what goes). Once gone it stays gone: the command line
 * names it still; a tap of that name plugged again comes back by its fd.
 */
static bool nic_unplugged(struct vm *vm, const struct vm_snapshot *snap, int i, const char *tap)
{
	const struct vm_nic *nic = &vm->spec.nics[i];
	int fd;

	if (vm->nics_gone & (1u << i))
		return true;
	if (!qemu_holds_tun(nic) || !snap->fds_read || snap->fds_opaque || snap->fds_partial || vm->libvirt_seen)
		return false;
	fd = tun_fd_of(snap, tap);
	if (fd >= 0) {
		vm->nics_tun_seen |= 1u << i;
		vm->nic_fds[i] = fd + 1;
		return false;
	}
	if (!(vm->nics_tun_seen & (1u << i)) ||
	    (vm->nic_fds[i] && tun_fd_detached(snap, vm->nic_fds[i] - 1)))
		return false;
	vm->nics_gone |= 1u << i;
	log_info("VM %s: NIC %s's tap was closed: unplugged", vm->name,
		 nic->device_id[0] ? nic->device_id : nic->netdev_id);
	return true;
}

static int want_find_tap(struct want_iface *want, int n, const char *tap)
{
	for (int i = 0; tap[0] && i < n; i++)
		if (!strcmp(want[i].tap, tap))
			return i;
	return -1;
}

static int want_find_id(struct want_iface *want, int n, const char *device_id)
{
	for (int i = 0; device_id[0] && i < n; i++)
		if (!strcmp(want[i].device_id, device_id))
			return i;
	return -1;
}

/*
 * Whether a fd-passed NIC with no tap found is still there: one of its fd
 * numbers is open. A tap netdev's fd is a tun (its tap found) or a
 * macvtap device: any other file of that number is not the NIC's (QEMU
 * reuses the numbers of a NIC it unplugged), unless what the fds are
 * could not be read. Another netdev's (socket) stays while its fd is open.
 */
static bool nic_fd_there(const struct vm *vm, const struct vm_snapshot *snap,
			 const struct vm_nic *nic)
{
	bool tap = !strcmp(nic->type, "tap");

	for (int k = 0; k < nic->nr_fds; k++) {
		if (!bsearch(&nic->fds[k], vm->fds, vm->nr_fds, sizeof(*vm->fds), cmp_int))
			continue;
		if (!tap || snap->fds_opaque)
			return true;
		for (size_t m = 0; m < snap->nr_macvtaps; m++)
			if (snap->macvtaps[m] == nic->fds[k])
				return true;
	}
	return false;
}

static void want_add(struct want_iface *want, int *n, const char *tap, const char *device_id,
		     const char *type, const char *mac, enum vm_source source)
{
	struct want_iface *w;

	if (*n >= VM_MAX_NICS)
		return;
	w = &want[(*n)++];
	memset(w, 0, sizeof(*w));
	str_copy(w->tap, sizeof(w->tap), tap);
	str_copy(w->device_id, sizeof(w->device_id), device_id);
	iface_label(device_id, tap, w->label, sizeof(w->label));
	str_copy(w->type, sizeof(w->type), type);
	str_copy(w->mac, sizeof(w->mac), mac);
	w->source = source;
}

/*
 * NICs from the command line (taps by name or by fd), libvirt's live
 * state (hot-plugged NICs, with their aliases) and tun fds nothing names.
 * Without a fresh snapshot, what the fds told last time stays.
 */
static int wanted_ifaces(struct vm *vm, const struct vm_snapshot *snap,
			 const struct libvirt_domain *dom, struct want_iface *want)
{
	const char *opened[VM_MAX_NICS];
	int n = 0;

	qemu_opened_taps(vm, snap, opened);
	for (int i = 0; i < vm->spec.nr_nics; i++) {
		const struct vm_nic *nic = &vm->spec.nics[i];
		const char *tap = opened[i] ? opened[i] : nic_tap(nic, snap);

		if (nic_unplugged(vm, snap, i, tap))
			continue;

		/*
		 * A fd-passed NIC whose fds are gone was unplugged (or is not
		 * known yet); a macvtap (a fd but no tap) stays.
		 */
		if (!tap[0] && nic->nr_fds && !(snap->fds_read && nic_fd_there(vm, snap, nic)) &&
		    (snap->fds_read || dom))
			continue;
		want_add(want, &n, tap, nic->device_id, nic->type, nic->mac, VM_SRC_CMDLINE);
	}
	/* libvirt's NICs: the command line's found by tap, else by alias (= device id). */
	for (int i = 0; dom && i < dom->nr_ifaces; i++) {
		const struct libvirt_iface *li = &dom->ifaces[i];
		int k = want_find_tap(want, n, li->tap);

		if (k < 0)
			k = want_find_id(want, n, li->alias);
		if (k < 0) {
			want_add(want, &n, li->tap, li->alias, li->type, li->mac, VM_SRC_LIBVIRT);
			continue;
		}
		if (!want[k].tap[0]) {
			str_copy(want[k].tap, sizeof(want[k].tap), li->tap);
			str_copy(want[k].type, sizeof(want[k].type), li->type);
		}
		iface_label(li->alias, want[k].tap, want[k].label, sizeof(want[k].label));
	}
	for (size_t t = 0; t < snap->nr_tuns; t++)
		if (want_find_tap(want, n, snap->tuns[t].ifname) < 0)
			want_add(want, &n, snap->tuns[t].ifname, "", "tap", "", VM_SRC_FD);
	if (!snap->fds_read)
		for (int i = 0; i < vm->nr_ifaces; i++)
			if (vm->ifaces[i].present && vm->ifaces[i].source == VM_SRC_FD &&
			    want_find_tap(want, n, vm->ifaces[i].tap) < 0)
				want_add(want, &n, vm->ifaces[i].tap, "", "tap", "", VM_SRC_FD);
	return n;
}

static bool same_iface(const struct vm_iface *have, const struct want_iface *w)
{
	return have->tap[0] ? !strcmp(have->tap, w->tap) : !w->tap[0] && !strcmp(have->label, w->label);
}

static void ifaces_update(struct vm *vm, const struct vm_snapshot *snap,
			  const struct libvirt_domain *dom)
{
	struct want_iface want[VM_MAX_NICS];
	int n = wanted_ifaces(vm, snap, dom, want);

	for (int i = 0; i < vm->nr_ifaces; i++) {
		struct vm_iface *have = &vm->ifaces[i];
		bool kept = false;

		for (int j = 0; have->present && j < n && !kept; j++) {
			if (want[j].used || !same_iface(have, &want[j]))
				continue;
			want[j].used = kept = true;
			str_copy(have->label, sizeof(have->label), want[j].label);
			str_copy(have->mac, sizeof(have->mac), want[j].mac);
		}
		have->present = kept;
	}
	for (int j = 0; j < n; j++) {
		struct vm_iface *ifc;

		if (want[j].used || too_many(vm, vm->nr_ifaces, VM_MAX_NICS, "NICs", want[j].label))
			continue;
		ifc = &vm->ifaces[vm->nr_ifaces++];
		memset(ifc, 0, sizeof(*ifc));
		str_copy(ifc->tap, sizeof(ifc->tap), want[j].tap);
		str_copy(ifc->label, sizeof(ifc->label), want[j].label);
		str_copy(ifc->type, sizeof(ifc->type), want[j].type);
		str_copy(ifc->mac, sizeof(ifc->mac), want[j].mac);
		ifc->source = want[j].source;
		ifc->present = true;
	}
}

void inventory_update(struct discovery *d, struct vm *vm, const struct vm_snapshot *snap,
		      const struct libvirt_domain *dom)
{
	vm->libvirt_seen |= dom != NULL;
	disks_update(d, vm, snap, dom);
	ifaces_update(vm, snap, dom);
	/* The probes say anew, at this sync, what they measure. */
	for (int i = 0; i < vm->nr_disks; i++)
		coverage_set(&vm->disks[i].cov, NULL, false, NULL);
	for (int i = 0; i < vm->nr_ifaces; i++)
		coverage_set(&vm->ifaces[i].cov, NULL, false, NULL);
}

/* Why a drive of this backend is measured by no probe here. */
static void disk_unclaimed(struct vm_disk *disk, const struct probe_set *ps)
{
	const char *b = disk->spec.backend, *down;

	if (qemu_backend_is_local(b) && (down = probes_down_why(ps, "disk")))
		coverage_set(&disk->cov, NULL, false, "local image: the disk probe is not loaded (%s)",
			     down);
	else if ((!strcmp(b, "rbd") || !strcmp(b, "iscsi")) &&
		 (down = probes_down_why(ps, "netdisk")))
		coverage_set(&disk->cov, NULL, false, "%s: the network-disk probe is not loaded (%s)",
			     b, down);
	else if (!strcmp(b, "nbd"))
		coverage_set(&disk->cov, NULL, false,
			     "nbd: QEMU's built-in NBD client has no hook vmprobe can use");
	else if (qemu_backend_is_local(b))
		coverage_set(&disk->cov, NULL, false, "local image: the disk probe is off");
	else
		coverage_set(&disk->cov, NULL, false, "%s: no probe for this backend", b);
}

static void iface_unclaimed(struct vm_iface *ifc, const struct probe_set *ps)
{
	const char *down = probes_down_why(ps, "net");

	if (ifc->tap[0] && down)
		coverage_set(&ifc->cov, NULL, false, "tap: the network probe is not loaded (%s)", down);
	else if (!ifc->tap[0] && !strcmp(ifc->type, "tap"))
		coverage_set(&ifc->cov, NULL, false, "tap not found (its fd is not readable)");
	else if (!ifc->tap[0])
		coverage_set(&ifc->cov, NULL, false, "%s: no tap on the host to hook", ifc->type);
	else
		coverage_set(&ifc->cov, NULL, false, "tap: the network probe is off");
}

/* What is not measured is said in the log, once for each drive or NIC. */
static void warn_unmeasured(struct vm *vm)
{
	for (int i = 0; i < vm->nr_disks; i++) {
		struct vm_disk *disk = &vm->disks[i];

		if (!disk->cov.measured && !disk->cov.warned)
			log_warn("VM %s: drive %s (%s) is not measured: %s", vm->name,
				 disk->spec.label, disk->spec.backend, disk->cov.reason);
		disk->cov.warned |= !disk->cov.measured;
	}
	for (int i = 0; i < vm->nr_ifaces; i++) {
		struct vm_iface *ifc = &vm->ifaces[i];

		if (!ifc->cov.measured && !ifc->cov.warned)
			log_warn("VM %s: interface %s is not measured: %s", vm->name, ifc->label,
				 ifc->cov.reason);
		ifc->cov.warned |= !ifc->cov.measured;
	}
}

void inventory_settle(struct vm *vm, const struct probe_set *ps)
{
	int kept = 0;

	for (int i = 0; i < vm->nr_disks; i++)
		if (vm->disks[i].present)
			vm->disks[kept++] = vm->disks[i];
	vm->nr_disks = kept;
	kept = 0;
	for (int i = 0; i < vm->nr_ifaces; i++)
		if (vm->ifaces[i].present)
			vm->ifaces[kept++] = vm->ifaces[i];
	vm->nr_ifaces = kept;
	if (!ps || (!ps->nr && !ps->nr_down))
		return;
	for (int i = 0; i < vm->nr_disks; i++)
		if (!vm->disks[i].cov.probe)
			disk_unclaimed(&vm->disks[i], ps);
	for (int i = 0; i < vm->nr_ifaces; i++)
		if (!vm->ifaces[i].cov.probe)
			iface_unclaimed(&vm->ifaces[i], ps);
	warn_unmeasured(vm);
}

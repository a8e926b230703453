// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Serve's pins and state file for the CLI, and the host-wide locks (core/pin.h). */
#include "core/pin.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "core/util.h"

#define BPFFS "/sys/fs/bpf"

static int bpffs_ready(void)
{
	struct statfs sf;

	if (statfs(BPFFS, &sf) || sf.f_type != BPF_FS_MAGIC) {
		if (mount("bpf", BPFFS, "bpf", 0, NULL))
			return -errno;
	}
	if (mkdir(PIN_DIR, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int pin_map(struct bpf_map *map, const char *dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
	/* A pin left by a serve that was killed: serve's lock says it is ours now. */
	unlink(path);
	return bpf_map__pin(map, path);
}

void pin_unlink(const char *dir, const char *const *names, size_t n)
{
	char path[256];

	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
}

int pins_create(struct probe_set *s)
{
	int err = bpffs_ready();

	if (err) {
		log_warn("cannot use bpffs at %s (%s): top and hist will load their own probes",
			 BPFFS, strerror(-err));
		return err;
	}
	for (unsigned i = 0; !err && i < s->nr; i++)
		err = s->probes[i].ops->pin(&s->probes[i], PIN_DIR);
	if (err) {
		log_warn("cannot pin maps under %s (%s)", PIN_DIR, strerror(-err));
		pins_remove();
	}
	return err;
}

void pins_remove(void)
{
	for (size_t i = 0; i < probe_registry_len; i++)
		probe_registry[i]->unpin(PIN_DIR);
	rmdir(PIN_DIR);
	unlink(STATE_PATH);
}

/* The VM's drives, with the map and slot of those a probe counts. */
static json_object *state_drives(const struct vm *vm)
{
	json_object *drives = json_object_new_array();

	for (int i = 0; i < vm->nr_disks; i++) {
		const struct vm_disk *disk = &vm->disks[i];
		struct probe *p = (struct probe *)disk->cov.probe;
		json_object *t = json_object_new_object();
		const char *map = "";
		int slot = -1;

		if (p && p->ops->drive_slot && disk->cov.measured)
			slot = p->ops->drive_slot(p, disk, &map);
		json_object_object_add(t, "drive", json_object_new_string(disk->spec.label));
		json_object_object_add(t, "map", json_object_new_string(map));
		json_object_object_add(t, "slot", json_object_new_int(slot));
		json_object_object_add(t, "measured", json_object_new_boolean(disk->cov.measured));
		json_object_object_add(t, "reason", json_object_new_string(disk->cov.reason));
		json_object_array_add(drives, t);
	}
	return drives;
}

/* The VM's NICs, measured or not (the network probe adds its slots as "taps"). */
static json_object *state_ifaces(const struct vm *vm)
{
	json_object *ifaces = json_object_new_array();

	for (int i = 0; i < vm->nr_ifaces; i++) {
		const struct vm_iface *ifc = &vm->ifaces[i];
		json_object *t = json_object_new_object();

		json_object_object_add(t, "interface", json_object_new_string(ifc->label));
		json_object_object_add(t, "tap", json_object_new_string(ifc->tap));
		json_object_object_add(t, "measured", json_object_new_boolean(ifc->cov.measured));
		json_object_object_add(t, "reason", json_object_new_string(ifc->cov.reason));
		json_object_array_add(ifaces, t);
	}
	return ifaces;
}

int state_write(struct discovery *d)
{
	json_object *o = json_object_new_object(), *vms = json_object_new_array();
	struct probe_set *ps = d->probes;
	int err = 0;

	pthread_mutex_lock(&d->lock);
	for (const struct vm *vm = d->vms; vm; vm = vm->next) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "pid", json_object_new_int(vm->pid));
		json_object_object_add(j, "name", json_object_new_string(vm->name));
		json_object_object_add(j, "namespace", json_object_new_string(vm->ns));
		json_object_object_add(j, "drives", state_drives(vm));
		json_object_object_add(j, "interfaces", state_ifaces(vm));
		for (unsigned i = 0; i < ps->nr; i++)
			if (ps->probes[i].ops->state)
				ps->probes[i].ops->state(&ps->probes[i], vm, j);
		json_object_array_add(vms, j);
	}
	pthread_mutex_unlock(&d->lock);
	json_object_object_add(o, "vms", vms);
	/* Readers never see a half-written file. */
	if (json_object_to_file_ext(STATE_PATH ".tmp", o, JSON_C_TO_STRING_PLAIN) ||
	    rename(STATE_PATH ".tmp", STATE_PATH))
		err = -errno;
	json_object_put(o);
	return err;
}

int lock_take(const char *path, char *holder, size_t len)
{
	char pid[32];
	int fd, n;

	mkdir(RUN_DIR, 0755);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		n = (int)read(fd, holder, len - 1);
		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		if (!holder[0])
			snprintf(holder, len, "?");
		close(fd);
		return -EBUSY;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, n, 0) != n)
		log_warn("cannot write %s: %s", path, strerror(errno));
	return fd;
}

/* Is serve running? It holds its lock for as long as it lives. */
bool serve_running(void)
{
	int fd = open(SERVE_LOCK, O_RDONLY | O_CLOEXEC);
	bool held;

	if (fd < 0)
		return false;
	held = flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

void *pin_mmap_ro(const char *name, size_t elem, __u32 *entries, size_t *len)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	char path[256];
	void *p;
	int fd;

	*entries = 0;
	snprintf(path, sizeof(path), PIN_DIR "/%s", name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return NULL;
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len) || info.value_size != elem) {
		close(fd);
		return NULL;
	}
	*len = (size_t)info.max_entries * elem;
	p = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return NULL;
	*entries = info.max_entries;
	return p;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Serve's pins, their stamps and adoption, the state file, the host-wide locks (core/pin.h). */
#include "core/pin.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <json-c/json.h>
#include <limits.h>
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

#include "core/fault.h"
#include "core/storage.h"
#include "core/util.h"
#include "version.h"

#define BPFFS "/sys/fs/bpf"

/* bpffs at BPFFS, mounted if it is not (*mounted_now says so), and PIN_DIR; 0 or -errno. */
static int bpffs_ready(bool *mounted_now)
{
	struct statfs sf;

	*mounted_now = false;
	if (statfs(BPFFS, &sf) || sf.f_type != BPF_FS_MAGIC) {
		if (mount("bpf", BPFFS, "bpf", 0, NULL))
			return -errno;
		*mounted_now = true;
	}
	if (mkdir(PIN_DIR, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* PIN_DIR/PROBE made (pp->dir; "" on failure); 0 or -errno. */
static int pins_dir_make(struct probe_pins *pp, bool *mounted_now)
{
	int err = bpffs_ready(mounted_now);

	snprintf(pp->dir, sizeof(pp->dir), PIN_DIR "/%s", pp->probe);
	if (!err && mkdir(pp->dir, 0700) && errno != EEXIST)
		err = -errno;
	if (err)
		pp->dir[0] = '\0';
	return err;
}

/* Where a map of the probe is pinned: bpffs refuses names with a dot ("net_bpf.bss"): EPERM. */
static void map_pin_path(const struct probe_pins *pp, const struct bpf_map *m, char *path,
			 size_t size)
{
	char *name;

	snprintf(path, size, "%s/%s", pp->dir, bpf_map__name(m));
	for (name = path + strlen(pp->dir); *name; name++)
		*name = *name == '.' ? '_' : *name;
}

bool pins_on(const struct probe_pins *pp)
{
	return pp && pp->dir[0];
}

bool pins_persist(const struct probe_pins *pp)
{
	return pins_on(pp) && pp->persist;
}

/* Removes `path` and all below it (bpffs holds pins and directories only). */
static void tree_remove(const char *path, int depth)
{
	struct dirent *de;
	DIR *dir;

	if (unlink(path) == 0 || errno == ENOENT || depth > 4)
		return;
	dir = opendir(path);
	if (dir) {
		while ((de = readdir(dir))) {
			char sub[PATH_MAX];

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			tree_remove(sub, depth + 1);
		}
		closedir(dir);
	}
	if (rmdir(path) && errno != ENOENT)
		log_warn("cannot remove %s: %s", path, strerror(errno));
}

/* Empties a probe's directory: the stamp first, so that what is left is never adopted. */
static void dir_clear(const char *dir)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/stamp", dir) < (int)sizeof(path))
		unlink(path);
	tree_remove(dir, 0);
}

static bool dir_empty(const char *path)
{
	struct dirent *de;
	DIR *dir = opendir(path);
	bool empty = true;

	while (dir && empty && (de = readdir(dir)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	if (dir)
		closedir(dir);
	return empty;
}

static void hash_u32(gnutls_hash_hd_t h, __u32 v)
{
	gnutls_hash(h, &v, sizeof(v));
}

static void hash_str(gnutls_hash_hd_t h, const char *s)
{
	s = s ? s : "";
	gnutls_hash(h, s, strlen(s) + 1);
}

/*
 * The layout of BTF type `id` as readers and writers of a map must agree
 * on it: kinds, sizes, member names and offsets, element counts.
 */
static void hash_btf(gnutls_hash_hd_t h, const struct btf *btf, __u32 id, int depth)
{
	const struct btf_type *t = btf__type_by_id(btf, id);

	while (t && (btf_is_typedef(t) || btf_is_mod(t) || btf_is_var(t)))
		t = btf__type_by_id(btf, t->type);
	if (!t || depth > 8) {
		hash_u32(h, ~0u);
		return;
	}
	hash_u32(h, btf_kind(t));
	if (btf_is_int(t)) {
		hash_u32(h, t->size);
		hash_u32(h, btf_int_encoding(t) << 16 | btf_int_offset(t) << 8 | btf_int_bits(t));
	} else if (btf_is_any_enum(t) || btf_is_float(t)) {
		hash_u32(h, t->size);
	} else if (btf_is_array(t)) {
		hash_u32(h, btf_array(t)->nelems);
		hash_btf(h, btf, btf_array(t)->type, depth + 1);
	} else if (btf_is_composite(t)) {
		const struct btf_member *m = btf_members(t);

		hash_u32(h, t->size);
		for (int i = 0; i < btf_vlen(t); i++, m++) {
			hash_str(h, btf__name_by_offset(btf, m->name_off));
			hash_u32(h, btf_member_bit_offset(t, i));
			hash_u32(h, btf_member_bitfield_size(t, i));
			hash_btf(h, btf, m->type, depth + 1);
		}
	} else if (btf_is_datasec(t)) {
		const struct btf_var_secinfo *v = btf_var_secinfos(t);

		hash_u32(h, t->size);
		for (int i = 0; i < btf_vlen(t); i++, v++) {
			const struct btf_type *var = btf__type_by_id(btf, v->type);

			hash_str(h, var ? btf__name_by_offset(btf, var->name_off) : "");
			hash_u32(h, v->offset);
			hash_u32(h, v->size);
			hash_btf(h, btf, v->type, depth + 1);
		}
	}
}

/* Maps the programs write: pinned and reused. Read-only data is each load's own. */
static bool map_pinned(const struct bpf_map *m)
{
	return !(bpf_map__map_flags(m) & BPF_F_RDONLY_PROG);
}

/* The BTF type of a map's values; a global data section's is found by its name. */
static __u32 map_value_type(const struct btf *btf, const struct bpf_map *m)
{
	const char *sec = strchr(bpf_map__name(m), '.');
	__u32 id = bpf_map__btf_value_type_id(m);
	int found;

	if (id || !bpf_map__is_internal(m) || !sec)
		return id;
	found = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
	return found > 0 ? (__u32)found : 0;
}

void pin_stamp_compute(struct pin_stamp *st, struct bpf_object *obj, const void *elf,
		       size_t elf_size)
{
	const struct btf *btf = bpf_object__btf(obj);
	gnutls_hash_hd_t lay, code;
	struct bpf_program *prog;
	struct bpf_map *m;

	memset(st, 0, sizeof(*st));
	/* For the log only (what built the pins); a long development version is cut. */
	snprintf(st->version, sizeof(st->version), "%.*s", (int)sizeof(st->version) - 1,
		 VMPROBE_VERSION);
	st->pid = (__u32)getpid();
	if (gnutls_hash_init(&lay, GNUTLS_DIG_SHA256) ||
	    gnutls_hash_init(&code, GNUTLS_DIG_SHA256))
		return; /* an all-zero stamp matches no other */
	gnutls_hash(code, elf, elf_size);
	bpf_object__for_each_map(m, obj) {
		size_t size = 0;
		const void *init;

		if (!map_pinned(m)) {
			init = bpf_map__initial_value(m, &size);
			if (init)
				gnutls_hash(code, init, size);
			continue;
		}
		hash_str(lay, bpf_map__name(m));
		hash_u32(lay, bpf_map__type(m));
		hash_u32(lay, bpf_map__key_size(m));
		hash_u32(lay, bpf_map__value_size(m));
		hash_u32(lay, bpf_map__max_entries(m));
		hash_u32(lay, bpf_map__map_flags(m));
		if (btf && bpf_map__btf_key_type_id(m))
			hash_btf(lay, btf, bpf_map__btf_key_type_id(m), 0);
		if (btf && map_value_type(btf, m))
			hash_btf(lay, btf, map_value_type(btf, m), 0);
	}
	bpf_object__for_each_program(prog, obj) {
		hash_str(code, bpf_program__name(prog));
		hash_u32(code, bpf_program__autoload(prog));
	}
	gnutls_hash_deinit(lay, st->layout);
	gnutls_hash_deinit(code, st->code);
}

static int stamp_read(const char *dir, struct pin_stamp *st)
{
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/stamp", dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (bpf_map_lookup_elem(fd, &zero, st))
		err = -errno;
	close(fd);
	st->version[sizeof(st->version) - 1] = '\0';
	return err;
}

/* Why pins cannot be adopted: the label of vmprobe_pins_info's reason, and what the log says. */
struct pin_unfit {
	const char *reason;
	const char *why;
};

static const struct pin_unfit unfit_no_stamp = {
	"no_stamp", "they have no stamp (a serve that ended while pinning, or an older vmprobe)"
}, unfit_not_persisted = {
	"not_persisted", "the serve that pinned them did not persist them (it was killed)"
}, unfit_layout = {
	"layout", "their map layout is not this version's (another version, or other map sizes "
		  "in the configuration)"
};

/* Why the pins in pp->dir cannot be adopted, or NULL if they can (or there are none). */
static const struct pin_unfit *pins_unfit(const struct probe_pins *pp, struct pin_stamp *old)
{
	int err = stamp_read(pp->dir, old);

	if (err == -ENOENT && dir_empty(pp->dir))
		return NULL;
	if (err)
		return &unfit_no_stamp;
	if (!old->persist)
		return &unfit_not_persisted;
	if (memcmp(old->layout, pp->stamp.layout, sizeof(old->layout)))
		return &unfit_layout;
	return NULL;
}

/* What this serve did with an earlier serve's pins (vmprobe_pins_info). */
static void pins_outcome(struct probe_pins *pp, const char *state, const char *reason,
			 const struct pin_stamp *old)
{
	pp->state = state;
	pp->reason = reason;
	snprintf(pp->previous, sizeof(pp->previous), "%s", old->version);
}

void pins_prepare(struct probe_pins *pp, const char *probe, struct bpf_object *obj,
		  const void *(*elf_bytes)(size_t *size))
{
	static bool warned;
	const struct pin_unfit *why;
	struct pin_stamp old = {};
	size_t elf_size = 0;
	struct bpf_map *m;
	const void *elf;
	bool mounted;
	int err;

	if (!pp)
		return;
	pp->adopting = pp->code_changed = pp->keep = false;
	pp->probe = probe;
	pins_outcome(pp, "unpinned", "", &old);
	elf = elf_bytes(&elf_size);
	pin_stamp_compute(&pp->stamp, obj, elf, elf_size);
	err = pins_dir_make(pp, &mounted);
	if (err) {
		/* One fault for all the probes, said and counted once; serve tries again (pins_late). */
		if (!warned) {
			fault_count(FAULT_BPFFS);
			log_warn("cannot use bpffs at %s (%s): top and hist will load their own "
				 "probes; tried again every %d s (nothing pinned late outlives this "
				 "serve)", BPFFS, strerror(-err), PIN_RETRY_S);
		}
		warned = true;
		return;
	}
	if (mounted && pp->persist)
		log_warn("mounted bpffs at %s myself: the pins last as long as this mount "
			 "(in a container, mount the host's bpffs there)", BPFFS);
	why = pins_unfit(pp, &old);
	pins_outcome(pp, "new", "", &old);
	if (why) {
		bool demoted = log_demoted;

		/* Once, even from a down probe's retry (whose lines are demoted): the pins go now. */
		log_demoted = false;
		log_warn("%s probe: removing the pins left in %s by vmprobe %s (pid %u): %s; its "
			 "counters start from zero", probe, pp->dir,
			 old.version[0] ? old.version : "?", old.pid, why->why);
		log_demoted = demoted;
		pins_outcome(pp, "removed", why->reason, &old);
		dir_clear(pp->dir);
		if (mkdir(pp->dir, 0700) && errno != EEXIST)
			log_warn("cannot make %s: %s", pp->dir, strerror(errno));
	} else if (old.persist) {
		pp->adopting = true;
		pp->code_changed = memcmp(old.code, pp->stamp.code, sizeof(old.code)) != 0;
		pins_outcome(pp, "adopted", pp->code_changed ? "programs_replaced" : "", &old);
		log_info("%s probe: adopting the programs and counters of vmprobe %s (pid %u)%s",
			 probe, old.version, old.pid,
			 pp->code_changed ? "; its BPF programs differ from ours and are replaced" : "");
	}
	bpf_object__for_each_map(m, obj) {
		char path[PATH_MAX];

		if (!map_pinned(m))
			continue;
		map_pin_path(pp, m, path, sizeof(path));
		bpf_map__set_pin_path(m, path);
	}
}

int pins_late(struct probe_pins *pp, struct bpf_object *obj)
{
	struct pin_stamp old = {};
	struct bpf_map *m;
	bool mounted;
	int err;

	if (!pp || !pp->probe || pins_on(pp))
		return 0;
	err = pins_dir_make(pp, &mounted);
	if (err)
		return err;
	/* Our programs count in maps of their own already: an earlier serve's cannot be adopted. */
	if (!dir_empty(pp->dir)) {
		stamp_read(pp->dir, &old);
		log_warn("%s probe: removing the pins left in %s by vmprobe %s (pid %u): this serve "
			 "loaded before bpffs could be used and counts in maps of its own", pp->probe,
			 pp->dir, old.version[0] ? old.version : "?", old.pid);
		pins_outcome(pp, "removed", "loaded_unpinned", &old);
		dir_clear(pp->dir);
		if (mkdir(pp->dir, 0700) && errno != EEXIST)
			err = -errno;
	} else {
		pins_outcome(pp, "new", "", &old);
	}
	bpf_object__for_each_map(m, obj) {
		char path[PATH_MAX];

		if (err || !map_pinned(m))
			continue;
		map_pin_path(pp, m, path, sizeof(path));
		err = bpf_map__pin(m, path);
	}
	if (err) {
		log_warn("%s probe: cannot pin its maps in %s (%s): not tried again", pp->probe,
			 pp->dir, strerror(-err));
		dir_clear(pp->dir);
		pp->dir[0] = '\0';
		pp->probe = NULL;
		pp->state = "unpinned";
		return 0;
	}
	/* Its links were made unpinned: the next serve can adopt nothing of them. */
	if (pp->persist)
		log_warn("%s probe: its links were attached before bpffs could be used and are not "
			 "pinned: its counters do not outlive this serve (persist)", pp->probe);
	pp->persist = false;
	pins_commit(pp);
	return 0;
}

void pins_drop(struct probe_pins *pp)
{
	if (pins_on(pp))
		dir_clear(pp->dir);
}

void pins_commit(struct probe_pins *pp)
{
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd;

	if (!pins_on(pp))
		return;
	pp->stamp.persist = pp->persist;
	snprintf(path, sizeof(path), "%s/stamp", pp->dir);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "vmprobe_stamp", sizeof(zero),
				    sizeof(pp->stamp), 1, NULL);
		if (fd >= 0 && bpf_obj_pin(fd, path)) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0 || bpf_map_update_elem(fd, &zero, &pp->stamp, BPF_ANY))
		log_warn("cannot write the stamp %s (%s): the next serve starts from zero", path,
			 strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* PIN_DIR/PROBE/links/NAME; the links directory made when `make`. */
static void link_path(const struct probe_pins *pp, const char *name, char *path, size_t size,
		      bool make)
{
	snprintf(path, size, "%s/links", pp->dir);
	if (make)
		mkdir(path, 0700);
	snprintf(path, size, "%s/links/%s", pp->dir, name);
}

void pins_link_pin(struct probe_pins *pp, struct bpf_link *link, const char *name)
{
	char path[PATH_MAX];
	int err;

	if (!link || !pins_persist(pp))
		return;
	link_path(pp, name, path, sizeof(path), true);
	/* One left by a serve whose links were not adopted. */
	unlink(path);
	err = bpf_link__pin(link, path);
	if (err)
		log_warn("cannot pin %s (%s): it will not outlive this serve", path, strerror(-err));
}

struct bpf_link *pins_link_attach(struct probe_pins *pp, struct bpf_program *prog)
{
	struct bpf_link *link = bpf_program__attach(prog);

	pins_link_pin(pp, link, bpf_program__name(prog));
	return link;
}

struct bpf_link *pins_link_open(struct probe_pins *pp, const char *name)
{
	char path[PATH_MAX];

	if (!pins_on(pp) || !pp->adopting)
		return NULL;
	link_path(pp, name, path, sizeof(path), false);
	return access(path, F_OK) ? NULL : bpf_link__open(path);
}

struct bpf_link *pins_link_swap(struct probe_pins *pp, struct bpf_link *old,
				struct bpf_link *fresh, const char *name)
{
	if (!fresh) {
		log_warn("cannot attach %s (%s): the earlier serve's program stays", name,
			 strerror(errno));
		return old;
	}
	pins_link_end(pp, old);
	pins_link_pin(pp, fresh, name);
	return fresh;
}

struct bpf_link *pins_link_adopt(struct probe_pins *pp, struct bpf_program *prog)
{
	struct bpf_link *old = pins_link_open(pp, bpf_program__name(prog));

	if (!old || !pp->code_changed)
		return old;
	/*
	 * A tracepoint link cannot change its program: ours is attached
	 * beside the old one, which then goes. Events in between (a few
	 * microseconds) run both.
	 */
	return pins_link_swap(pp, old, bpf_program__attach(prog), bpf_program__name(prog));
}

void pins_link_end(struct probe_pins *pp, struct bpf_link *link)
{
	if (!link)
		return;
	if (pp && pp->keep && bpf_link__pin_path(link)) {
		/*
		 * Let go without detaching: libbpf would disable a perf event
		 * link's event on destroy, which its pin must keep. The fds go
		 * as the process ends.
		 */
		bpf_link__disconnect(link);
	} else if (bpf_link__pin_path(link)) {
		bpf_link__unpin(link);
	}
	bpf_link__destroy(link);
}

int pins_fd_pin(struct probe_pins *pp, int fd, const char *name)
{
	char path[PATH_MAX];

	if (!pins_persist(pp))
		return 0;
	link_path(pp, name, path, sizeof(path), true);
	unlink(path);
	return bpf_obj_pin(fd, path) ? -errno : 0;
}

int pins_fd_adopt(struct probe_pins *pp, const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (!pins_on(pp) || !pp->adopting)
		return -ENOENT;
	link_path(pp, name, path, sizeof(path), false);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

void pins_fd_end(struct probe_pins *pp, int fd, const char *name)
{
	char path[PATH_MAX];

	if (pins_on(pp) && !pp->keep) {
		link_path(pp, name, path, sizeof(path), false);
		unlink(path);
	}
	if (fd >= 0)
		close(fd);
}

int pins_links_foreach(struct probe_pins *pp, int (*fn)(const char *name, void *arg), void *arg)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	int ret = 0;

	if (!pins_on(pp))
		return 0;
	snprintf(path, sizeof(path), "%s/links", pp->dir);
	dir = opendir(path);
	while (dir && !ret && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			ret = fn(de->d_name, arg);
	if (dir)
		closedir(dir);
	return ret;
}

/* Removes PIN_DIR's entries but those named in keep; `why`, if set, logged for each. */
static void entries_remove(const char *const *keep, size_t nr, const char *why)
{
	struct dirent *de;
	DIR *dir = opendir(PIN_DIR);

	while (dir && (de = readdir(dir))) {
		char path[PATH_MAX];
		bool kept = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");

		for (size_t i = 0; !kept && i < nr; i++)
			kept = !strcmp(de->d_name, keep[i]);
		if (kept)
			continue;
		snprintf(path, sizeof(path), PIN_DIR "/%s", de->d_name);
		if (why)
			log_info("removing %s: %s", path, why);
		dir_clear(path);
	}
	if (dir)
		closedir(dir);
}

void pins_tidy(const char *const *probes, size_t nr)
{
	entries_remove(probes, nr, "not a probe this serve runs");
}

int pins_remove_all(void)
{
	entries_remove(NULL, 0, NULL);
	return rmdir(PIN_DIR) && errno != ENOENT ? -errno : 0;
}

bool pins_exist(void)
{
	return access(PIN_DIR, F_OK) == 0 && !dir_empty(PIN_DIR);
}

/* The VM's drives, with the map and slot of those a probe counts. */
static json_object *state_drives(const struct vm *vm)
{
	json_object *drives = json_object_new_array();

	for (int i = 0; i < vm->nr_disks; i++) {
		const struct vm_disk *disk = &vm->disks[i];
		json_object *t = json_object_new_object();
		const struct drive_store *s = NULL;
		const char *map = "";
		unsigned at;
		int slot = -1;

		if (disk->cov.measured && (s = drive_store_of(disk, &at)))
			map = s->map, slot = (int)at;
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

/*
 * Appends to `holder` (a PID) what that process runs, as "PID: COMMAND
 * LINE": which serve, top or hist, or a process that inherited the lock.
 */
static void holder_command(char *holder, size_t len)
{
	char path[64], cmd[LOCK_HOLDER_MAX];
	size_t at = strlen(holder);
	long n;

	snprintf(path, sizeof(path), "/proc/%s/cmdline", holder);
	n = read_file(path, cmd, sizeof(cmd));
	if (n <= 0)
		return;
	/* Another process's words, for a terminal: no control characters. */
	for (long i = 0; i < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
		else if ((unsigned char)cmd[i] < 0x20 || cmd[i] == 0x7f)
			cmd[i] = '?';
	while (n > 0 && cmd[n - 1] == ' ')
		cmd[--n] = '\0';
	snprintf(holder + at, len - at, ": %s", cmd);
}

/*
 * Why root may not write a lock: the file, or RUN_DIR, is another user's
 * (a systemd unit's RuntimeDirectory= left behind) and root without
 * CAP_DAC_OVERRIDE writes only its own. Said as " (...)", or "".
 */
static void owner_said(const char *path, char *out, size_t len)
{
	struct stat st;
	const char *what = path;

	if (stat(path, &st) || st.st_uid == geteuid()) {
		what = RUN_DIR;
		if (stat(RUN_DIR, &st) || st.st_uid == geteuid())
			return;
	}
	snprintf(out, len, " (%s is uid %u's, mode %04o%s)", what, (unsigned)st.st_uid,
		 (unsigned)(st.st_mode & 07777),
		 geteuid() ? "" : ": without CAP_DAC_OVERRIDE, remove it");
}

int lock_take(const char *path, char *holder, size_t len)
{
	char pid[32];
	int fd, n;

	holder[0] = '\0';
	mkdir(RUN_DIR, 0755);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int err = -errno;

		if (err == -EACCES)
			owner_said(path, holder, len);
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		n = (int)read(fd, holder, len - 1);
		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		/* A PID, or unknown: nothing else of a file another may write is said. */
		if (!holder[0] || strspn(holder, "0123456789") != strlen(holder))
			snprintf(holder, len, "?");
		else
			holder_command(holder, len);
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

/* The map pinned as PIN_DIR/name: its fd and info, or -errno. */
static int pin_map_get(const char *name, struct bpf_map_info *info)
{
	__u32 info_len = sizeof(*info);
	char path[256];
	int fd, err;

	memset(info, 0, sizeof(*info));
	snprintf(path, sizeof(path), PIN_DIR "/%s", name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, info, &info_len)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int pin_value_size(const char *name)
{
	struct bpf_map_info info;
	int fd = pin_map_get(name, &info);

	if (fd < 0)
		return fd;
	close(fd);
	return (int)info.value_size;
}

void *pin_mmap_ro(const char *name, size_t elem, __u32 *entries, size_t *len)
{
	struct bpf_map_info info;
	void *p;
	int fd;

	*entries = 0;
	fd = pin_map_get(name, &info);
	if (fd < 0)
		return NULL;
	if (info.value_size != elem) {
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

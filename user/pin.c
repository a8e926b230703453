// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "pin.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cmd.h"
#include "disk.skel.h"
#include "net.skel.h"
#include "util.h"

#define BPFFS "/sys/fs/bpf"

static const char *const pinned_names[] = { "net_stats", "net_ifaces", "drive_stats", "dev_stats" };

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

static int pin_one(struct bpf_map *map)
{
	char path[256];

	snprintf(path, sizeof(path), PIN_DIR "/%s", bpf_map__name(map));
	/* A pin left by a serve that was killed: serve's lock says it is ours now. */
	unlink(path);
	return bpf_map__pin(map, path);
}

int pin_maps(struct net_probe *np, struct disk_probe *dp)
{
	int err = bpffs_ready();

	if (err) {
		log_warn("cannot use bpffs at %s (%s): top and hist will load their own probes",
			 BPFFS, strerror(-err));
		return err;
	}
	if (np) {
		err = pin_one(np->skel->maps.net_stats);
		if (!err)
			err = pin_one(np->skel->maps.net_ifaces);
	}
	if (dp && !err) {
		err = pin_one(dp->skel->maps.drive_stats);
		if (!err)
			err = pin_one(dp->skel->maps.dev_stats);
	}
	if (err) {
		log_warn("cannot pin maps under %s (%s)", PIN_DIR, strerror(-err));
		pin_remove();
	}
	return err;
}

void pin_remove(void)
{
	char path[256];

	for (size_t i = 0; i < ARRAY_SIZE(pinned_names); i++) {
		snprintf(path, sizeof(path), PIN_DIR "/%s", pinned_names[i]);
		unlink(path);
	}
	rmdir(PIN_DIR);
	unlink(STATE_PATH);
}

int state_write(struct discovery *d)
{
	json_object *o = json_object_new_object(), *vms = json_object_new_array();
	int err = 0;

	pthread_mutex_lock(&d->lock);
	for (const struct vm *vm = d->vms; vm; vm = vm->next) {
		json_object *j = json_object_new_object(), *taps = json_object_new_array(),
			    *drives = json_object_new_array();

		json_object_object_add(j, "pid", json_object_new_int(vm->pid));
		json_object_object_add(j, "name", json_object_new_string(vm->name));
		json_object_object_add(j, "namespace", json_object_new_string(vm->ns));
		for (int i = 0; i < vm->nr_taps; i++) {
			json_object *t = json_object_new_object();

			json_object_object_add(t, "interface", json_object_new_string(vm->taps[i].ifname));
			json_object_object_add(t, "slot", json_object_new_int(vm->taps[i].slot));
			json_object_array_add(taps, t);
		}
		for (int i = 0; i < vm->spec.nr_drives; i++) {
			json_object *t = json_object_new_object();

			json_object_object_add(t, "drive", json_object_new_string(vm->spec.drives[i].label));
			json_object_object_add(t, "slot", json_object_new_int(vm->drives[i].slot));
			json_object_array_add(drives, t);
		}
		json_object_object_add(j, "taps", taps);
		json_object_object_add(j, "drives", drives);
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
static bool serve_running(void)
{
	int fd = open(SERVE_LOCK, O_RDONLY | O_CLOEXEC);
	bool held;

	if (fd < 0)
		return false;
	held = flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

/* Maps serve pinned, read-only; NULL (and *entries 0) if not pinned. */
static void *map_pinned(const char *name, size_t elem, __u32 *entries, size_t *len)
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

static int open_shared(struct view *v)
{
	int ncpus = libbpf_num_possible_cpus();
	__u32 n;

	if (ncpus <= 0)
		return -EINVAL;
	v->np.stats = map_pinned("net_stats", sizeof(struct net_stats), &n, &v->np.stats_len);
	v->np.nr_cpus = ncpus;
	v->np.max_ifaces = n / ((unsigned)ncpus * NET_DIR_MAX);
	v->net_on = v->np.stats != NULL;
	v->dp.stats = map_pinned("drive_stats", sizeof(struct drive_stats), &n, &v->dp.stats_len);
	v->dp.max_drives = n / DISK_OP_MAX;
	v->disk_on = v->dp.stats != NULL;
	if (!v->net_on && !v->disk_on) {
		fprintf(stderr, "vmprobe: serve runs but its maps are not pinned under %s "
				"(see its log)\n", PIN_DIR);
		return -ENOENT;
	}
	return 0;
}

static int open_own(struct view *v)
{
	char holder[32];
	int err;

	if (cmd_load_config(&v->cfg, NULL))
		return -EINVAL;
	/*
	 * Each vmprobe that attaches its own filters removes those an ended
	 * one left: two at once would remove each other's.
	 */
	v->attach_lock = lock_take(ATTACH_LOCK, holder, sizeof(holder));
	if (v->attach_lock == -EBUSY && serve_running())
		fprintf(stderr, "vmprobe: vmprobe serve (pid %s) started meanwhile: run the "
				"command again to read its counters\n", holder);
	else if (v->attach_lock == -EBUSY)
		fprintf(stderr, "vmprobe: another vmprobe (pid %s) has probes of its own attached; "
				"wait for it to end, or run vmprobe serve, whose counters any "
				"number of top and hist share\n", holder);
	if (v->attach_lock < 0)
		return v->attach_lock;
	err = net_probe_open(&v->np, v->cfg.max_interfaces, v->cfg.max_tcp_flows, v->cfg.tc_hook);
	if (err)
		return err;
	v->net_on = true;
	err = disk_probe_open(&v->dp, v->cfg.max_drives, false);
	if (err)
		return err;
	v->disk_on = true;
	err = discovery_init(&v->d, &v->cfg, &v->np, &v->dp);
	if (err)
		return err;
	return 0;
}

int view_open(struct view *v)
{
	int err;

	memset(v, 0, sizeof(*v));
	v->attach_lock = -1;
	v->shared = serve_running();
	err = v->shared ? open_shared(v) : open_own(v);
	if (!err)
		err = view_refresh(v);
	if (err) {
		/* open_own() said who holds the attach lock. */
		if (v->shared || v->attach_lock != -EBUSY)
			fprintf(stderr, "vmprobe: cannot read the counters (%s)%s\n", strerror(-err),
				v->shared ? "" : ": run as root (see vmprobe check)");
		view_close(v);
	}
	return err;
}

/* One {"<key>": NAME, "slot": N} entry of the state file. */
static void state_entry(json_object *t, const char *key, char *name, size_t size, int *slot)
{
	json_object *f;

	snprintf(name, size, "%s",
		 json_object_object_get_ex(t, key, &f) ? json_object_get_string(f) : "");
	*slot = json_object_object_get_ex(t, "slot", &f) ? json_object_get_int(f) : -1;
}

static int refresh_shared(struct view *v)
{
	json_object *o = json_object_from_file(STATE_PATH), *vms;
	size_t n;

	if (!o) {
		fprintf(stderr, "vmprobe: cannot read %s: %s\n", STATE_PATH, json_util_get_last_err());
		return -ENOENT;
	}
	if (!json_object_object_get_ex(o, "vms", &vms) || !json_object_is_type(vms, json_type_array)) {
		json_object_put(o);
		return -EINVAL;
	}
	n = json_object_array_length(vms);
	free(v->vms);
	v->vms = calloc(n ? n : 1, sizeof(*v->vms));
	v->nr_vms = 0;
	if (!v->vms) {
		json_object_put(o);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *j = json_object_array_get_idx(vms, i), *f, *arr;
		struct view_vm *vm = &v->vms[v->nr_vms++];

		if (json_object_object_get_ex(j, "pid", &f))
			vm->pid = json_object_get_int(f);
		if (json_object_object_get_ex(j, "name", &f))
			snprintf(vm->name, sizeof(vm->name), "%s", json_object_get_string(f));
		if (json_object_object_get_ex(j, "namespace", &f))
			snprintf(vm->ns, sizeof(vm->ns), "%s", json_object_get_string(f));
		if (json_object_object_get_ex(j, "taps", &arr))
			for (size_t k = 0; k < json_object_array_length(arr) && k < VM_MAX_NICS; k++) {
				state_entry(json_object_array_get_idx(arr, k), "interface",
					    vm->taps[k].ifname, IFNAMSIZ, &vm->taps[k].slot);
				vm->nr_taps++;
			}
		if (json_object_object_get_ex(j, "drives", &arr))
			for (size_t k = 0; k < json_object_array_length(arr) && k < VM_MAX_DRIVES; k++) {
				state_entry(json_object_array_get_idx(arr, k), "drive",
					    vm->drives[k].label, VM_ID_MAX, &vm->drives[k].slot);
				vm->nr_drives++;
			}
	}
	json_object_put(o);
	return 0;
}

static int refresh_own(struct view *v)
{
	int n = 0;

	discovery_scan(&v->d);
	pthread_mutex_lock(&v->d.lock);
	for (const struct vm *vm = v->d.vms; vm; vm = vm->next)
		n++;
	free(v->vms);
	v->vms = calloc(n ? n : 1, sizeof(*v->vms));
	v->nr_vms = 0;
	for (const struct vm *vm = v->d.vms; vm && v->vms; vm = vm->next) {
		struct view_vm *w = &v->vms[v->nr_vms++];

		w->pid = vm->pid;
		snprintf(w->name, sizeof(w->name), "%s", vm->name);
		snprintf(w->ns, sizeof(w->ns), "%s", vm->ns);
		for (int i = 0; i < vm->nr_taps; i++) {
			snprintf(w->taps[i].ifname, IFNAMSIZ, "%s", vm->taps[i].ifname);
			w->taps[i].slot = vm->taps[i].slot;
		}
		w->nr_taps = vm->nr_taps;
		for (int i = 0; i < vm->spec.nr_drives; i++) {
			snprintf(w->drives[i].label, VM_ID_MAX, "%s", vm->spec.drives[i].label);
			w->drives[i].slot = vm->drives[i].slot;
		}
		w->nr_drives = vm->spec.nr_drives;
	}
	pthread_mutex_unlock(&v->d.lock);
	return v->vms ? 0 : -ENOMEM;
}

int view_refresh(struct view *v)
{
	return v->shared ? refresh_shared(v) : refresh_own(v);
}

void view_close(struct view *v)
{
	if (v->shared) {
		if (v->np.stats)
			munmap(v->np.stats, v->np.stats_len);
		if (v->dp.stats)
			munmap(v->dp.stats, v->dp.stats_len);
	} else {
		if (v->d.cfg)
			discovery_fini(&v->d);
		if (v->net_on)
			net_probe_close(&v->np);
		if (v->disk_on)
			disk_probe_close(&v->dp);
		/* Only once the filters are gone. */
		if (v->attach_lock >= 0)
			close(v->attach_lock);
	}
	free(v->vms);
	memset(v, 0, sizeof(*v));
	v->attach_lock = -1;
}

bool view_arg(const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return !errno && end != s && !*end && *out >= min && *out <= max;
}

const struct view_vm *view_find(const struct view *v, const char *name)
{
	char full[2 * VM_NAME_MAX + 2];

	for (int i = 0; i < v->nr_vms; i++) {
		const struct view_vm *vm = &v->vms[i];

		snprintf(full, sizeof(full), "%s/%s", vm->ns, vm->name);
		if (!strcmp(vm->name, name) || (vm->ns[0] && !strcmp(full, name)) ||
		    atoi(name) == (int)vm->pid)
			return vm;
	}
	return NULL;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

void view_catch_signals(void)
{
	/* No SA_RESTART: poll() returns at once with EINTR. */
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

bool view_interrupted(void)
{
	return interrupted;
}

bool view_wait(int ms, int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (!interrupted)
		poll(&pfd, fd >= 0 ? 1 : 0, ms);
	return !interrupted;
}

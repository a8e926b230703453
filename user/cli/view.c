// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The counters top and hist read: serve's pinned maps when serve runs,
 * else probes of their own with a discovery of their own.
 */
#include "cli/view.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "core/pin.h"
#include "core/storage.h"
#include "core/util.h"

/* The counter maps serve pins for us, and the size of their values in this vmprobe. */
static const struct {
	const char *name;
	size_t elem;
} shared_maps[] = {
	{ "net/net_stats", sizeof(struct net_pkt_cell) },
	{ "net/net_tcp", sizeof(struct net_tcp_cell) },
	{ "disk/drive_stats", sizeof(struct drive_stats) },
	{ "netdisk/netdisk_stats", sizeof(struct drive_stats) },
};

/*
 * Whether serve's counters are laid out as this vmprobe reads them: a serve
 * of another version (during an upgrade, before its restart) may pin
 * values of another size, which would be read as zeros or garbage.
 */
static int shared_maps_fit(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(shared_maps); i++) {
		int size = pin_value_size(shared_maps[i].name);

		if (size < 0 || (size_t)size == shared_maps[i].elem)
			continue;
		fprintf(stderr, "vmprobe: serve's %s/%s holds values of %d bytes, this vmprobe's "
				"are %zu: serve is another version of vmprobe; restart it, or use its "
				"own vmprobe\n", PIN_DIR, shared_maps[i].name, size, shared_maps[i].elem);
		return -EPROTO;
	}
	return 0;
}

static int open_shared(struct view *v)
{
	int ncpus = libbpf_num_possible_cpus();
	__u32 n;

	if (ncpus <= 0)
		return -EINVAL;
	if (shared_maps_fit())
		return -EPROTO;
	v->shared_np.stats = pin_mmap_ro("net/net_stats", sizeof(struct net_pkt_cell), &n,
					 &v->shared_np.stats_len);
	v->shared_np.nr_cpus = ncpus;
	v->shared_np.max_ifaces = n / ((unsigned)ncpus * NET_DIR_MAX);
	v->shared_np.tcp = pin_mmap_ro("net/net_tcp", sizeof(struct net_tcp_cell), &n,
				       &v->shared_np.tcp_len);
	if (v->shared_np.tcp && n != v->shared_np.max_ifaces * NET_DIR_MAX) {
		munmap(v->shared_np.tcp, v->shared_np.tcp_len);
		v->shared_np.tcp = NULL;
	}
	if (!v->shared_np.tcp && v->shared_np.stats) {
		munmap(v->shared_np.stats, v->shared_np.stats_len);
		v->shared_np.stats = NULL;
	}
	v->np = v->shared_np.stats ? &v->shared_np : NULL;
	if (!v->np && access(PIN_DIR "/disk/drive_stats", F_OK)) {
		fprintf(stderr, "vmprobe: serve runs but its maps are not pinned under %s "
				"(see its log)\n", PIN_DIR);
		return -ENOENT;
	}
	return 0;
}

static int open_own(struct view *v)
{
	char holder[LOCK_HOLDER_MAX];
	int err;

	if (cmd_load_config(&v->cfg, NULL))
		return -EINVAL;
	if (pins_exist()) {
		/* Probes of our own would remove its clsact filters, and count beside its programs. */
		fprintf(stderr, "vmprobe: vmprobe serve left its programs counting under %s "
				"(persist) and is not running: start it to read them, or remove "
				"them with vmprobe uninstall\n", PIN_DIR);
		return -EEXIST;
	}
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
	else if (v->attach_lock < 0)
		fprintf(stderr, "vmprobe: cannot lock %s: %s%s\n", ATTACH_LOCK,
			strerror(-v->attach_lock), holder);
	if (v->attach_lock < 0)
		return v->attach_lock;
	/* Both columns' probes, whatever the configuration says. */
	v->cfg.net_enabled = v->cfg.disk_enabled = true;
	err = probes_open(&v->probes, &v->cfg, PROBE_CLI);
	v->said = err != 0; /* the probe named what it lacks */
	if (err)
		return err;
	v->own = true;
	v->net = probes_find(&v->probes, "net");
	v->disk = probes_find(&v->probes, "disk");
	v->np = v->net ? v->net->priv : NULL;
	return discovery_init(&v->d, &v->cfg, &v->probes);
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
		/* open_own() said who holds the attach lock, or what serve left. */
		if (v->shared || (v->attach_lock != -EBUSY && err != -EEXIST && !v->said))
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

/* The index in v->maps of serve's pinned map `name`, mapped at first use; -1 if none. */
static int map_index(struct view *v, const char *name)
{
	struct view_map *m;

	for (int i = 0; i < v->nr_maps; i++)
		if (!strcmp(v->maps[i].name, name))
			return i;
	if (v->nr_maps == VIEW_MAX_MAPS || !name[0])
		return -1;
	m = &v->maps[v->nr_maps];
	m->stats = pin_mmap_ro(name, sizeof(struct drive_stats), &m->entries, &m->len);
	if (!m->stats)
		return -1;
	snprintf(m->name, sizeof(m->name), "%s", name);
	return v->nr_maps++;
}

static void state_drive(struct view *v, json_object *t, struct view_drive *dr)
{
	json_object *f;

	state_entry(t, "drive", dr->label, sizeof(dr->label), &dr->slot);
	dr->map = map_index(v, json_object_object_get_ex(t, "map", &f) ? json_object_get_string(f)
									 : "");
	if (dr->map < 0 || dr->slot < 0 ||
	    (__u64)dr->slot * DISK_OP_MAX >= v->maps[dr->map].entries)
		dr->slot = -1;
}

void view_drive_read(const struct view *v, const struct view_drive *dr, unsigned op,
		     struct drive_stats *out)
{
	const struct drive_store *s;
	unsigned slot;

	memset(out, 0, sizeof(*out));
	if (dr->slot < 0)
		return;
	if (!v->shared) {
		if (dr->disk && (s = drive_store_of(dr->disk, &slot)))
			drive_stats_copy(s->stats, slot, op, out);
		return;
	}
	drive_stats_copy(v->maps[dr->map].stats, dr->slot, op, out);
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
					    vm->taps[k].ifname, sizeof(vm->taps[k].ifname),
					    &vm->taps[k].slot);
				if (vm->taps[k].slot >= (int)v->shared_np.max_ifaces)
					vm->taps[k].slot = -1;
				vm->nr_taps++;
			}
		if (json_object_object_get_ex(j, "drives", &arr))
			for (size_t k = 0; k < json_object_array_length(arr) && k < VM_MAX_DRIVES; k++) {
				state_drive(v, json_object_array_get_idx(arr, k), &vm->drives[k]);
				vm->nr_drives++;
			}
	}
	json_object_put(o);
	return 0;
}

static int refresh_own(struct view *v)
{
	int n = 0;

	/* What the probes asked for (a new session or fd to match) is done by this scan. */
	probes_events(&v->probes, &v->d);
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
		for (int i = 0; v->net && i < vm->nr_ifaces; i++) {
			snprintf(w->taps[i].ifname, sizeof(w->taps[i].ifname), "%s",
				 vm->ifaces[i].label);
			w->taps[i].slot = net_iface_slot(v->net, &vm->ifaces[i]);
		}
		w->nr_taps = v->net ? vm->nr_ifaces : 0;
		for (int i = 0; i < vm->nr_disks; i++) {
			const struct vm_disk *disk = &vm->disks[i];
			struct view_drive *dr = &w->drives[i];

			snprintf(dr->label, sizeof(dr->label), "%s", disk->spec.label);
			dr->disk = disk;
			dr->slot = disk->cov.measured ? 0 : -1;
		}
		w->nr_drives = vm->nr_disks;
	}
	pthread_mutex_unlock(&v->d.lock);
	return v->vms ? 0 : -ENOMEM;
}

int view_refresh(struct view *v)
{
	return v->shared ? refresh_shared(v) : refresh_own(v);
}

int view_settle(struct view *v)
{
	struct timespec grace = { .tv_nsec = 300 * 1000000L };
	int err;

	if (v->shared)
		return 0;
	err = view_refresh(v);
	/* Requests staged before a match are added once in-flight ones completed (0.1 s). */
	nanosleep(&grace, NULL);
	return err ? err : view_refresh(v);
}

void view_close(struct view *v)
{
	if (v->shared) {
		if (v->shared_np.stats)
			munmap(v->shared_np.stats, v->shared_np.stats_len);
		if (v->shared_np.tcp)
			munmap(v->shared_np.tcp, v->shared_np.tcp_len);
		for (int i = 0; i < v->nr_maps; i++)
			munmap(v->maps[i].stats, v->maps[i].len);
	} else {
		if (v->d.cfg)
			discovery_fini(&v->d);
		if (v->own)
			probes_close(&v->probes);
		/* Only once the filters are gone. */
		if (v->attach_lock >= 0)
			close(v->attach_lock);
	}
	free(v->vms);
	memset(v, 0, sizeof(*v));
	v->attach_lock = -1;
}

json_object *view_json_interval(const struct view *v, double secs)
{
	json_object *o = json_object_new_object();
	struct timespec ts;
	char when[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	time_rfc3339(when, sizeof(when), &ts);
	json_object_object_add(o, "time", json_object_new_string(when));
	json_object_object_add(o, "interval_seconds", json_object_new_double(secs));
	json_object_object_add(o, "counters", json_object_new_string(v->shared ? "serve" : "own"));
	return o;
}

json_object *view_json_seconds(double secs)
{
	return secs < 0 ? NULL : json_object_new_double(secs);
}

void view_json_print(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
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

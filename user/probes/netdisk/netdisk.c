// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The network-disk probe's programs and maps: loading (nothing attaches
 * here: vm.c hooks each QEMU process), slots, sessions, staged requests.
 */
#include "probes/netdisk/netdisk_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/bpfmap.h"
#include "core/caps.h"
#include "core/pin.h"
#include "core/storage.h"
#include "netdisk.skel.h"

static const char *const rbd_paths[] = {
	"/usr/lib/x86_64-linux-gnu/librbd.so.1", "/usr/lib64/librbd.so.1", "/usr/lib/librbd.so.1",
	NULL,
};
static const char *const iscsi_paths[] = {
	"/usr/lib/x86_64-linux-gnu/libiscsi.so.7", "/usr/lib64/libiscsi.so.9",
	"/usr/lib64/libiscsi.so.7", "/usr/lib/libiscsi.so.7", NULL,
};

const struct netdisk_lib netdisk_libs[NETDISK_KIND_MAX] = {
	[NETDISK_RBD] = { "librbd.so", rbd_paths, "rbd" },
	[NETDISK_ISCSI] = { "libiscsi.so", iscsi_paths, "iscsi" },
};

/*
 * The hooks of each library. Optional ones a library may lack: librbd
 * before Octopus has no rbd_aio_write_zeroes (QEMU built against it does
 * not call it either); without a close hook a handle reused by another
 * image is matched again only when user space sees the old one went.
 */
struct bpf_program *netdisk_prog(const struct netdisk_probe *np, unsigned kind, int i,
				 const char **func, bool *optional)
{
	struct netdisk_bpf *s = np->skel;
	const struct hook {
		struct bpf_program *prog;
		const char *func;
		bool optional;
	} rbd[] = {
		{ s->progs.rbd_readv, "rbd_aio_readv", false },
		{ s->progs.rbd_writev, "rbd_aio_writev", false },
		{ s->progs.rbd_discard, "rbd_aio_discard", false },
		{ s->progs.rbd_write_zeroes, "rbd_aio_write_zeroes", true },
		{ s->progs.rbd_flush, "rbd_aio_flush", false },
		{ s->progs.rbd_done, "rbd_aio_get_return_value", false },
		{ s->progs.rbd_close, "rbd_close", true },
	}, iscsi[] = {
		{ s->progs.iscsi_submit, "iscsi_scsi_command_async", false },
		{ s->progs.iscsi_done, "scsi_free_scsi_task", false },
		{ s->progs.iscsi_destroy, "iscsi_destroy_context", true },
	};
	const struct hook *h = NULL;
	_Static_assert(ARRAY_SIZE(rbd) <= NETDISK_MAX_LINKS, "rbd links fit");

	if (kind == NETDISK_RBD && i < (int)ARRAY_SIZE(rbd))
		h = &rbd[i];
	else if (kind == NETDISK_ISCSI && i < (int)ARRAY_SIZE(iscsi))
		h = &iscsi[i];
	if (!h)
		return NULL;
	*func = h->func;
	*optional = h->optional;
	return h->prog;
}

static int event_seen(void *ctx, void *data, size_t len)
{
	struct netdisk_probe *np = ctx;
	const struct netdisk_event *ev = data;

	if (len >= sizeof(*ev))
		netdisk_pending_push(np, ev);
	return 0;
}

void netdisk_pending_push(struct netdisk_probe *np, const struct netdisk_event *ev)
{
	/* Told twice after a restart: by the ring and by the staging map (pins.c). */
	for (int i = 0; i < np->nr_pending; i++)
		if (!memcmp(&np->pending[i].ev.sess, &ev->sess, sizeof(ev->sess)))
			return;
	if (netdisk_session_live(np, &ev->sess))
		return;
	if (np->nr_pending >= NETDISK_MAX_PENDING) {
		/* Not kept: with its staging entry gone, its next request tells again. */
		if (!np->events_dropped++)
			log_warn("more than %d rbd or iSCSI sessions wait to be matched to a drive",
				 NETDISK_MAX_PENDING);
		bpf_map_delete_elem(bpf_map__fd(np->skel->maps.netdisk_staged), &ev->sess);
		return;
	}
	np->pending[np->nr_pending++] = (struct netdisk_pending){ .ev = *ev };
}

int netdisk_maps_size(struct netdisk_bpf *skel, unsigned max_drives)
{
	skel->rodata->max_drives = max_drives;
	return bpf_map__set_max_entries(skel->maps.netdisk_stats, max_drives * DISK_OP_MAX) ?:
	       bpf_map__set_max_entries(skel->maps.netdisk_born, max_drives) ?:
	       bpf_map__set_max_entries(skel->maps.netdisk_owners, max_drives);
}

int netdisk_probe_open(struct netdisk_probe *np, unsigned max_drives, struct probe_pins *pins)
{
	struct netdisk_bpf *skel;
	int err;

	memset(np, 0, sizeof(*np));
	skel = netdisk_bpf__open();
	if (!skel)
		return -errno;
	np->skel = skel;
	np->pins = pins;
	err = netdisk_maps_size(skel, max_drives);
	if (!err)
		pins_prepare(pins, "netdisk", skel->obj, netdisk_bpf__elf_bytes);
	if (!err) {
		caps_load_note(skel->obj);
		err = netdisk_bpf__load(skel);
	}
	if (err)
		goto cleanup;
	pins_commit(pins);
	err = drive_store_open(&np->store, bpf_map__fd(skel->maps.netdisk_stats),
			       bpf_map__fd(skel->maps.netdisk_born), max_drives,
			       "netdisk/netdisk_stats");
	if (err)
		goto cleanup;
	np->events = ring_buffer__new(bpf_map__fd(skel->maps.netdisk_events), event_seen, np, NULL);
	if (!np->events) {
		err = -errno;
		goto cleanup;
	}
	err = netdisk_adopt_open(np);
	if (err)
		goto cleanup;
	log_info("network disks: rbd (librbd) and iSCSI (libiscsi) uprobes, per QEMU process");
	return 0;
cleanup:
	netdisk_probe_close(np);
	return err;
}

void netdisk_probe_close(struct netdisk_probe *np)
{
	ring_buffer__free(np->events);
	drive_store_close(&np->store);
	netdisk_adopt_free(np);
	netdisk_bpf__destroy(np->skel);
	memset(np, 0, sizeof(*np));
}

int netdisk_session_set(struct netdisk_probe *np, const struct netdisk_session *s, unsigned slot)
{
	__u32 v = slot;

	return bpf_map_update_elem(bpf_map__fd(np->skel->maps.netdisk_sessions), s, &v, BPF_ANY)
		       ? -errno : 0;
}

void netdisk_session_del(struct netdisk_probe *np, const struct netdisk_session *s)
{
	bpf_map_delete_elem(bpf_map__fd(np->skel->maps.netdisk_sessions), s);
	bpf_map_delete_elem(bpf_map__fd(np->skel->maps.netdisk_staged), s);
}

bool netdisk_session_live(const struct netdisk_probe *np, const struct netdisk_session *s)
{
	__u32 slot;

	return !bpf_map_lookup_elem(bpf_map__fd(np->skel->maps.netdisk_sessions), s, &slot);
}

bool netdisk_staged_live(const struct netdisk_probe *np, const struct netdisk_session *s)
{
	struct staged_stats st;

	return !bpf_map_lookup_elem(bpf_map__fd(np->skel->maps.netdisk_staged), s, &st);
}

int netdisk_staged_merge(struct netdisk_probe *np, const struct netdisk_session *s, unsigned slot)
{
	return staged_merge(bpf_map__fd(np->skel->maps.netdisk_staged), s, np->store.stats, slot,
			    0, 0);
}

void netdisk_staged_announce(struct netdisk_probe *np)
{
	int fd = bpf_map__fd(np->skel->maps.netdisk_staged);
	struct netdisk_session key, next, *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct netdisk_event ev = { .sess = next, .lun = NETDISK_LUN_ANY };

		key = next;
		prev = &key;
		netdisk_pending_push(np, &ev);
	}
}

int netdisk_events_consume(struct netdisk_probe *np, pid_t *pids, int max)
{
	int before = np->nr_pending, n = 0;
	__u64 lost;

	ring_buffer__consume(np->events);
	/*
	 * First requests the ring had no room for: their sessions are in the
	 * staging map (and each is told again at its next request).
	 */
	lost = netdisk_error_count(np, NETDISK_ERR_EVENT_LOST);
	if (lost != np->events_lost) {
		log_info("%llu rbd or iSCSI sessions' first requests did not fit the ring: "
			 "found in the staging map", (unsigned long long)(lost - np->events_lost));
		np->events_lost = lost;
		netdisk_staged_announce(np);
	}
	for (int i = before; i < np->nr_pending && n < max; i++)
		pids[n++] = (pid_t)np->pending[i].ev.sess.tgid;
	return n;
}

int netdisk_events_fd(const struct netdisk_probe *np)
{
	return ring_buffer__epoll_fd(np->events);
}

__u64 netdisk_error_count(const struct netdisk_probe *np, unsigned err)
{
	return bpf_percpu_sum(bpf_map__fd(np->skel->maps.netdisk_errors), err);
}

/* One sweep of the in-flight table: what goes, collected first and deleted after the walk. */
struct sweep_gone {
	struct netdisk_req key;
	__u64 start_ns; /* an old entry's: it goes only if it is still that request */
};

struct sweep {
	__u32 tgid;
	const char *proc_root;
	unsigned long long now;
	struct sweep_gone *gone;
	size_t nr, cap;
};

static int sweep_entry(const void *key, const void *value, void *arg)
{
	const struct netdisk_req *k = key;
	const struct netdisk_inflight *v = value;
	struct sweep *sw = arg;
	char path[PATH_MAX];
	bool old = false, gone;

	if (sw->tgid && k->tgid != sw->tgid)
		return 0;
	if (!sw->tgid) {
		snprintf(path, sizeof(path), "%s/%u", sw->proc_root, k->tgid);
		gone = access(path, F_OK) && errno == ENOENT;
		old = !gone && sw->now > v->start_ns && sw->now - v->start_ns > NETDISK_FORGET_NS;
		if (!gone && !old)
			return 0;
	}
	if (array_reserve((void **)&sw->gone, sw->nr, &sw->cap, sizeof(*sw->gone)))
		return -ENOMEM;
	sw->gone[sw->nr++] = (struct sweep_gone){ .key = *k, .start_ns = old ? v->start_ns : 0 };
	return 0;
}

int netdisk_inflight_sweep(struct netdisk_probe *np, __u32 tgid, const char *proc_root)
{
	int fd = bpf_map__fd(np->skel->maps.netdisk_inflight), n = 0, err;
	struct sweep sw = { .tgid = tgid, .proc_root = proc_root, .now = monotonic_ns() };
	struct netdisk_inflight v;
	__u64 old = 0;

	/* Read in batches (a bucket cursor): the programs' deletes meanwhile do not restart it. */
	err = bpf_hash_foreach(fd, sizeof(struct netdisk_req), sizeof(struct netdisk_inflight),
			       sweep_entry, &sw);
	if (err)
		log_warn("netdisk probe: the sweep of its in-flight table stopped: %s",
			 strerror(-err));
	for (size_t i = 0; i < sw.nr; i++) {
		const struct sweep_gone *g = &sw.gone[i];

		/* Completed since, its key another request's: that one stays. */
		if (g->start_ns && (bpf_map_lookup_elem(fd, &g->key, &v) ||
				    v.start_ns != g->start_ns))
			continue;
		if (!bpf_map_delete_elem(fd, &g->key)) {
			n++;
			old += g->start_ns != 0;
		}
	}
	if (old)
		netdisk_forgotten_add(np, old);
	free(sw.gone);
	return n;
}

void netdisk_forgotten_add(struct netdisk_probe *np, __u64 n)
{
	int fd = bpf_map__fd(np->skel->maps.netdisk_errors), cpus = libbpf_num_possible_cpus();
	__u32 key = NETDISK_ERR_FORGOTTEN;
	__u64 *v = cpus > 0 ? calloc((size_t)cpus, sizeof(*v)) : NULL;

	/* No program writes this count: user space's, on CPU 0; pinned, a restart keeps it. */
	if (v && !bpf_map_lookup_elem(fd, &key, v)) {
		v[0] += n;
		bpf_map_update_elem(fd, &key, v, BPF_ANY);
	}
	free(v);
}

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What top and hist read: serve's counters through its pins and state
 * file when serve runs (core/pin.h), else probes of their own.
 */
#ifndef VMPROBE_VIEW_H
#define VMPROBE_VIEW_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/discovery.h"
#include "core/qemu.h"
#include "probes/disk/disk_probe.h"
#include "probes/net/net_probe.h"

/* A drive's counters: in a map serve pinned, or (own probes) read through its probe. */
struct view_drive {
	char label[VM_ID_MAX];
	int slot;                   /* -1: not counted */
	int map;                    /* shared: index in view.maps */
	const struct vm_disk *disk; /* own: valid until the next view_refresh() */
};

struct view_vm {
	pid_t pid;
	char name[VM_NAME_MAX];
	char ns[VM_NAME_MAX];
	struct {
		char ifname[VM_ID_MAX]; /* the interface label */
		int slot;
	} taps[VM_MAX_NICS];
	int nr_taps;
	struct view_drive drives[VM_MAX_DRIVES];
	int nr_drives;
};

/* A drive_stats array serve pinned, mapped read-only. */
struct view_map {
	char name[32];
	struct drive_stats *stats;
	size_t len;
	__u32 entries;
};

#define VIEW_MAX_MAPS 4

struct view {
	bool shared;     /* reading serve's maps */
	bool own;        /* probes of its own are open */
	int attach_lock; /* own probes: ATTACH_LOCK, else -1 */
	bool said;       /* open's failure is said already (by the probe that failed) */
	/* shared mode: only the fields net_read() uses; the drives' maps */
	struct net_probe shared_np;
	struct view_map maps[VIEW_MAX_MAPS];
	int nr_maps;
	const struct net_probe *np; /* NULL: no network counters */
	struct config cfg;
	struct probe_set probes;
	struct probe *net, *disk; /* own mode */
	struct discovery d;
	struct view_vm *vms;
	int nr_vms;
};

/* 0, or -errno after saying on stderr what failed. */
int view_open(struct view *v);
/* Re-reads the VM table (serve's state file, or a rescan); 0 or -errno. */
int view_refresh(struct view *v);
/*
 * Own probes: refreshes twice, a moment apart, so that what the probes
 * found since the last refresh is matched and what it staged is added
 * (pointers into the view change). Serve's counters need none: 0.
 */
int view_settle(struct view *v);
void view_close(struct view *v);

/* The counters of one operation of a drive (zero when it is not counted). */
void view_drive_read(const struct view *v, const struct view_drive *dr, unsigned op,
		     struct drive_stats *out);

/* The intervals top and hist take (seconds). */
#define VIEW_MIN_INTERVAL 0.1
#define VIEW_MAX_INTERVAL 86400

/*
 * --json: an interval's object, {"time": RFC 3339 UTC now, "interval_seconds",
 * "counters": "serve" or "own"}, for the command to add to.
 */
struct json_object *view_json_interval(const struct view *v, double secs);
/* A duration in seconds; JSON null when < 0 (no sample). */
struct json_object *view_json_seconds(double secs);
/* Prints o on one line, flushed, and frees it. */
void view_json_print(struct json_object *o);

/* The VM named `name` (or "namespace/name", or its PID); NULL if none. */
const struct view_vm *view_find(const struct view *v, const char *name);

/* SIGINT, SIGTERM and SIGHUP end view_wait() early, so probes are detached on the way out. */
void view_catch_signals(void);
/* Sleeps ms (or until fd, if >= 0, is readable); false once a signal came. */
bool view_wait(int ms, int fd);
bool view_interrupted(void);

#endif

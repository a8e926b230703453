/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Serve's state shared with the CLI: its counter maps pinned in bpffs and
 * its VM table in a small JSON file, so `top` and `hist` read the counters
 * serve keeps instead of attaching a second set of probes.
 */
#ifndef VMPROBE_PIN_H
#define VMPROBE_PIN_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "discovery.h"
#include "disk.h"
#include "net.h"
#include "qemu.h"

#define PIN_DIR "/sys/fs/bpf/vmprobe"
#define RUN_DIR "/run/vmprobe"
#define STATE_PATH RUN_DIR "/state.json"
/* Held by serve for its life: one serve per host. */
#define SERVE_LOCK RUN_DIR "/serve.lock"
/* Held by whoever attaches filters: serve, or top/hist with probes of their own. */
#define ATTACH_LOCK RUN_DIR "/attach.lock"

/*
 * Takes the lock at `path` (made if missing) and writes our PID in it: its
 * fd, held until the process closes it or ends, or -EBUSY with the
 * holder's PID in `holder` ("?" if unknown), or another -errno.
 */
int lock_take(const char *path, char *holder, size_t len);

/* serve: pins the counter maps (mounting bpffs if needed); 0 or -errno. */
int pin_maps(struct net_probe *np, struct disk_probe *dp);
/* serve: removes the pins and the state file. */
void pin_remove(void);
/* serve: writes the VM table and its slots to STATE_PATH (atomically). */
int state_write(struct discovery *d);

struct view_vm {
	pid_t pid;
	char name[VM_NAME_MAX];
	char ns[VM_NAME_MAX];
	struct {
		char ifname[IFNAMSIZ];
		int slot;
	} taps[VM_MAX_NICS];
	int nr_taps;
	struct {
		char label[VM_ID_MAX];
		int slot;
	} drives[VM_MAX_DRIVES];
	int nr_drives;
};

/*
 * The CLI's view of the counters: serve's pinned maps when serve runs,
 * else probes of its own (and their discovery), detached on close.
 */
struct view {
	bool shared; /* reading serve's maps */
	int attach_lock; /* own probes: ATTACH_LOCK, else -1 */
	struct net_probe np; /* in shared mode only the fields net_read() uses */
	struct disk_probe dp; /* likewise for disk_read() */
	bool net_on, disk_on;
	struct config cfg;
	struct discovery d;
	struct view_vm *vms;
	int nr_vms;
};

/* 0, or -errno after saying on stderr what failed. */
int view_open(struct view *v);
/* Re-reads the VM table (serve's state file, or a rescan); 0 or -errno. */
int view_refresh(struct view *v);
void view_close(struct view *v);

/* Parses an interval or count option in [min, max]. */
bool view_arg(const char *s, long min, long max, long *out);

/* The VM named `name` (or "namespace/name", or its PID); NULL if none. */
const struct view_vm *view_find(const struct view *v, const char *name);

/* SIGINT, SIGTERM and SIGHUP end view_wait() early, so probes are detached on the way out. */
void view_catch_signals(void);
/* Sleeps ms (or until fd, if >= 0, is readable); false once a signal came. */
bool view_wait(int ms, int fd);
bool view_interrupted(void);

#endif

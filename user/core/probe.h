/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The seam between the VM table and the probes. A probe (user/probes/NAME/)
 * fills a struct probe_ops; the VM table, /metrics and serve's pins know
 * probes by nothing else. Probes are registered in user/probes/registry.c,
 * one line each.
 */
#ifndef VMPROBE_PROBE_H
#define VMPROBE_PROBE_H

#include <bpf/libbpf.h>
#include <linux/types.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct bpf_object;
struct config;
struct discovery;
struct expo_family;
struct json_object;
struct drive_stats;
struct drive_store;
struct expo;
struct strbuf;
struct vm;
struct vm_disk;

enum probe_mode {
	PROBE_SERVE, /* vmprobe serve: every source the configuration turns on */
	PROBE_CLI,   /* top and hist with probes of their own: what their columns show */
};

/* A regular file or block device a VM holds open. */
struct vm_file {
	int fd;
	dev_t dev; /* identity of the file, as stat(2) gives it */
	ino_t ino;
	__u64 btime_ns; /* its birth (statx), 0 if the filesystem does not say: a reused inode */
	mode_t mode;
	dev_t rdev;
	char path[512]; /* as QEMU sees it (readlink of the fd) */
};

/* A tun fd of the VM, and the tap it is. */
struct vm_tun {
	int fd;
	char ifname[16];
};

/* What one walk of a VM's fd table found, handed to every probe. */
struct vm_snapshot {
	bool fds_read;            /* false: the fd table was not read; only the spec */
	struct vm_file *files;    /* regular files and block devices */
	size_t nr_files;
	struct vm_tun *tuns;
	size_t nr_tuns;
	int *tun_fds;             /* every /dev/net/tun fd, a tap's or one whose tap was deleted */
	size_t nr_tun_fds;
	__u64 *socks;             /* inodes of sockets that may be TCP (sockfs's protocol name) */
	size_t nr_socks;
	int *macvtaps;            /* fds of macvtap devices (/dev/tapN): NICs without a tap */
	size_t nr_macvtaps;
	bool fds_opaque;          /* fds listed whose files could not be read (no CAP_SYS_PTRACE) */
	bool fds_partial;         /* an fd's link or file failed to read but for being closed */
	bool socks_partial;       /* socks may lack one: an fd's link failed to read (or ENOMEM) */
};

struct probe;

struct probe_ops {
	const char *name;
	const char *title; /* in the log: "the TITLE probe" */
	/* Whether the configuration turns the probe on in this mode. */
	bool (*wanted)(const struct config *cfg, enum probe_mode mode);
	/* Bytes of the probe's state: p->priv, zeroed before open, freed after close. */
	size_t priv_size;
	/* Opens, sizes, loads and attaches into p->priv; 0 or -errno (then closed). */
	int (*open)(struct probe *p, const struct config *cfg, enum probe_mode mode);
	void (*close)(struct probe *p);
	/* A VM was found: its state goes in vm->priv[p->id]. 0 or -errno. */
	int (*vm_add)(struct probe *p, struct discovery *d, struct vm *vm);
	/* Something of the VM waits to be counted: sync it at the next scan. */
	bool (*vm_pending)(struct probe *p, const struct vm *vm);
	/* The VM's taps, drives or fds may have changed. */
	void (*vm_sync)(struct probe *p, struct discovery *d, struct vm *vm,
			const struct vm_snapshot *snap);
	/* The VM is gone (or vmprobe stops): undo everything of vm_add and vm_sync. */
	void (*vm_del)(struct probe *p, struct discovery *d, struct vm *vm);
	/* Every family it may render (the docs' table, `vmprobe metrics`), *nr of them. */
	const struct expo_family *(*families)(size_t *nr);
	/*
	 * Optional: an fd that becomes readable when the probe saw something
	 * of a VM to sync at once (a request on an fd no drive has yet), and
	 * the handler that reads it and pokes those VMs (discovery_poke).
	 */
	int (*event_fd)(struct probe *p);
	void (*events)(struct probe *p, struct discovery *d);
	/* Its metric families, per VM and its own health (either NULL: none); the table is locked. */
	void (*render)(struct probe *p, struct discovery *d, struct expo *e);
	void (*render_self)(struct probe *p, struct discovery *d, struct expo *e);
	/*
	 * Storage probes, for the drives they measure (disk->cov.probe): the
	 * store of the drive's counters (core/storage.h; vmprobe_disk_* are
	 * rendered from it, whichever probe measures, and top and hist read its
	 * pinned map) and, in *slot, the drive's there; NULL when the drive has
	 * none. NULL for other probes.
	 */
	const struct drive_store *(*drive_store)(struct probe *p, const struct vm_disk *disk,
						 unsigned *slot);
	/*
	 * Whether the drive's `errors` in its store are measured:
	 * vmprobe_disk_errors_total only then. NULL: never.
	 */
	bool (*drive_errors)(const struct probe *p, const struct vm_disk *disk);
	/*
	 * serve, after its first scan, when it adopted an earlier serve's
	 * pins (p->pins->adopting): releases what no VM claimed (slots,
	 * links) and attaches or detaches hooks as the VMs now want them.
	 */
	void (*adopted)(struct probe *p, struct discovery *d);
	/* Its loaded BPF object: whose maps vmprobe_bpf_map_memory_bytes sums. */
	struct bpf_object *(*object)(struct probe *p);
	/* serve: the VM's slots, added to its object in the state file (NULL: none). */
	void (*state)(struct probe *p, const struct vm *vm, struct json_object *out);
	/*
	 * uninstall, after the pins' probes detached all they knew of: removes
	 * what the probe left attached that no pin leads to any more (a serve
	 * that cleared the pins, a detach that failed), the probe not open.
	 * The number removed, or -errno. NULL: nothing outlives its pins.
	 */
	int (*sweep)(const struct config *cfg);
};

struct probe_pins;

struct probe {
	const struct probe_ops *ops;
	unsigned id; /* index in its set, and in vm->priv */
	void *priv;  /* the probe's own state */
	struct probe_pins *pins; /* serve's pins of the probe (core/pin.h); NULL elsewhere */
	__u64 memlock_fixed;     /* its maps' memory that cannot change (bpf_object_memlock) */
};

#define PROBE_MAX 8

/*
 * A probe serve wants that could not load for a reason that may pass (no
 * kernel BTF yet, no memory for its maps): the others run without it,
 * and it is tried again, less and less often.
 */
struct probe_down {
	const struct probe_ops *ops;
	int err;         /* of the last try */
	char why[48];    /* for the reason of what it would measure */
	unsigned tries;
	double next_try; /* now_seconds() */
};

struct probe_set {
	struct probe probes[PROBE_MAX];
	unsigned nr;
	struct probe_down down[PROBE_MAX];
	unsigned nr_down;
	bool no_btf; /* the kernel's BTF was not readable at the last look */
};

/* Every probe, in the order they sync and render (user/probes/registry.c). */
extern const struct probe_ops *const probe_registry[];
extern const size_t probe_registry_len;

/*
 * Opens every registered probe the configuration wants in `mode`; 0, or
 * -errno after closing those it opened. serve's probes pin their maps,
 * and their links with cfg->persist, and adopt an earlier serve's. Each
 * failure is logged here. In PROBE_SERVE mode a probe that fails for a
 * reason that may pass (no kernel BTF, out of memory for its maps) is set
 * down instead, said once and counted (vmprobe_faults_total), and the
 * others open.
 */
int probes_open(struct probe_set *s, const struct config *cfg, enum probe_mode mode);
/*
 * libbpf's printer for every command (libbpf_set_print): its warnings in
 * vmprobe's log at its level and format (a command that logs errors alone
 * drops them: the probe's own error says what failed), the rest debug.
 */
int probe_log_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap);
/*
 * serve: tries again the down probes whose time has come; each that opens
 * is put in out[] (its id not set yet) and leaves the down list. How many.
 */
unsigned probes_retry(struct probe_set *s, const struct config *cfg, struct probe *out);
/* Seconds until the next down probe is due (0: now), or -1 when none is down. */
double probes_retry_in(const struct probe_set *s);
/*
 * Adds an opened probe (from probes_retry) to the set, as the last one;
 * what it adopts is claimed at its first sync, then probes_adopted().
 */
struct probe *probes_join(struct probe_set *s, const struct probe *p);
/* Why the probe called `name` is down ("no kernel BTF", ...), or NULL if it is not. */
const char *probes_down_why(const struct probe_set *s, const char *name);
/*
 * serve's first scan is done (or a probe that joined late had its first
 * sync): what an earlier serve left and no VM claimed is released.
 */
void probes_adopted(struct probe_set *s, struct discovery *d);
/*
 * Whether a probe pins its maps (serve with bpffs: the CLI reads them
 * then), or with `persist` whether one's pins persist (its links too).
 */
bool probes_pinned(const struct probe_set *s, bool persist);
/*
 * serve: pins the maps of the probes that loaded while bpffs could not be
 * used (pins_late); 0 when none is left unpinned, else -errno.
 */
int probes_pin_late(struct probe_set *s);
/*
 * serve with persist is leaving: from now on the probes let go of their
 * hooks and slots (vm_del, close) without detaching or forgetting any,
 * so that they go on counting for the next serve. Pins that do not
 * persist (made late, pins_late) are removed.
 */
void probes_keep(struct probe_set *s);
void probes_close(struct probe_set *s);
/* The open probe called `name`, or NULL. */
struct probe *probes_find(const struct probe_set *s, const char *name);
/* Reads every probe's events now (without waiting for its event_fd). */
void probes_events(struct probe_set *s, struct discovery *d);

#endif

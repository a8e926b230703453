/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What serve keeps in bpffs and /run: each probe's maps, and with
 * `persist` its links too, pinned under PIN_DIR/PROBE/ beside a stamp of
 * their layout, so that the next serve of a compatible version adopts
 * programs and counters (no gap, no reset) and top and hist read the
 * counters serve keeps; the VM table in a small JSON file
 * (probe_ops.state); and the locks that keep one attacher per host.
 */
#ifndef VMPROBE_PIN_H
#define VMPROBE_PIN_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/discovery.h"

#define PIN_DIR "/sys/fs/bpf/vmprobe"
#define RUN_DIR "/run/vmprobe"
#define STATE_PATH RUN_DIR "/state.json"
/* Held by serve for its life: one serve per host. */
#define SERVE_LOCK RUN_DIR "/serve.lock"
/* Held by whoever attaches filters: serve, or top/hist with probes of their own. */
#define ATTACH_LOCK RUN_DIR "/attach.lock"

struct bpf_link;
struct bpf_object;
struct bpf_program;

/* A lock's holder as lock_take says it: "PID: COMMAND LINE", cut. */
#define LOCK_HOLDER_MAX 160

/*
 * Takes the lock at `path` (made if missing) and writes our PID in it: its
 * fd, held until the process closes it or ends, or -EBUSY with the
 * holder's PID and command line in `holder` ("?" if unknown), or another
 * -errno (with -EACCES, `holder` may say whose file is in the way, as
 * " (...)"; else "").
 */
int lock_take(const char *path, char *holder, size_t len);
/* Is serve running? It holds SERVE_LOCK for as long as it lives. */
bool serve_running(void);

/* bpffs not usable (not mounted, not mountable) may be later: serve tries again this often. */
#define PIN_RETRY_S 10

/* serve: writes the VM table and the probes' slots to STATE_PATH (atomically). */
int state_write(struct discovery *d);

/*
 * The stamp beside a probe's pins (PIN_DIR/PROBE/stamp, a one-entry BPF
 * array): which serve pinned them and what they are, so that the next
 * serve knows whether it can adopt them.
 */
struct pin_stamp {
	char version[32]; /* vmprobe's */
	__u8 layout[32];  /* SHA-256 of the pinned maps' definitions and BTF layouts */
	__u8 code[32];    /* SHA-256 of the BPF object, its read-only data and programs */
	__u32 pid;        /* the serve that wrote it */
	__u32 persist;    /* 1: its links are pinned too, and outlive it */
};
_Static_assert(sizeof(struct pin_stamp) == 104, "pin_stamp layout");
/*
 * The stamp of an opened object (sized, not loaded) whose ELF image is
 * `elf`: the layout hash covers every map the programs write (name, type,
 * key and value sizes, entries, flags, and the BTF layout of keys and
 * values: member names, offsets, types), so that any change a reader
 * would misread changes it; the code hash covers the rest.
 */
void pin_stamp_compute(struct pin_stamp *st, struct bpf_object *obj, const void *elf,
		       size_t elf_size);

/* One probe's pins: serve's (probe->pins); elsewhere NULL, and nothing is pinned. */
struct probe_pins {
	char dir[64];      /* PIN_DIR/PROBE; "" when bpffs cannot be used */
	bool persist;      /* links pinned too, and left attached at exit */
	bool adopting;     /* maps of an earlier serve reused: its links and slots wait to be claimed */
	bool code_changed; /* ... and its programs are not ours: hooks move to ours */
	bool keep;         /* leaving with persist: the probes detach and forget nothing */
	const char *probe; /* its name, once pins_prepare ran: pins_late may pin it later */
	struct pin_stamp stamp; /* ours */
	/*
	 * What pins_prepare (or pins_late) did with what an earlier serve
	 * left, for vmprobe_pins_info: state "adopted", "removed", "new"
	 * (nothing was left) or "unpinned" (no bpffs); reason, a label value
	 * ("layout", "programs_replaced", ...) or ""; the earlier serve's
	 * version ("" if unknown).
	 */
	const char *state;
	const char *reason;
	char previous[32];
};

/*
 * Before loading an opened object: decides what to do with the probe's
 * pins and sets the pin path of every writable map (libbpf then reuses
 * the pinned map or pins the new one). Compatible pins of a persistent
 * serve (same layout) are adopted: pp->adopting. Other pins are removed,
 * their links detached, and the log says why the counters start from
 * zero. `elf_bytes` is the skeleton's X_bpf__elf_bytes, which gives the
 * object's ELF image and sets its size (called here:
 * `f(X_bpf__elf_bytes(&size), size)` may read the size before the call
 * sets it). Without bpffs the probe runs unpinned (logged; pins_on() is
 * false).
 */
void pins_prepare(struct probe_pins *pp, const char *probe, struct bpf_object *obj,
		  const void *(*elf_bytes)(size_t *size));
/* After a successful load: writes our stamp, the pins' last step. */
void pins_commit(struct probe_pins *pp);
/*
 * serve, for a probe that loaded while bpffs could not be used: pins its
 * maps now (what an earlier serve left there is removed, said why: our
 * programs count in maps of their own) and writes the stamp, so that top
 * and hist read serve's counters. Its links were not pinned when made:
 * these pins never persist (said once if persist was asked). 0 (also when
 * there is nothing to do, and when pinning failed: said, not tried again)
 * or -errno, quietly, while bpffs is still unusable.
 */
int pins_late(struct probe_pins *pp, struct bpf_object *obj);
/* Removes the probe's directory of pins (serve leaving with pins that do not persist). */
void pins_drop(struct probe_pins *pp);
/* Whether pp pins anything (serve with bpffs). */
bool pins_on(const struct probe_pins *pp);
/* Whether links are pinned: serve with persist. */
bool pins_persist(const struct probe_pins *pp);

/*
 * Attaches a program (bpf_program__attach) and, with persist, pins its
 * link as links/PROGRAM; NULL with errno set.
 */
struct bpf_link *pins_link_attach(struct probe_pins *pp, struct bpf_program *prog);
/* With persist, pins a link made elsewhere as links/NAME (logged if it cannot). */
void pins_link_pin(struct probe_pins *pp, struct bpf_link *link, const char *name);
/* While adopting: the link an earlier serve pinned as links/NAME, or NULL. */
struct bpf_link *pins_link_open(struct probe_pins *pp, const char *name);
/*
 * While adopting: the link of `prog` an earlier serve pinned, moved to
 * `prog` itself when the programs changed; NULL if there is none.
 */
struct bpf_link *pins_link_adopt(struct probe_pins *pp, struct bpf_program *prog);
/*
 * While adopting with pp->code_changed: `fresh`, our program attached
 * where `old` (the earlier serve's) is, replaces it (ended, its pin
 * links/NAME now fresh's with persist); old itself if fresh is NULL
 * (attaching failed: said).
 */
struct bpf_link *pins_link_swap(struct probe_pins *pp, struct bpf_link *old,
				struct bpf_link *fresh, const char *name);
/*
 * Ends a link: detached for good and its pin removed, or, when leaving
 * with persist (pp->keep), only let go of. NULL pp: destroyed.
 */
void pins_link_end(struct probe_pins *pp, struct bpf_link *link);

/*
 * The same for a link held as a bare fd (TCX): pin, adopt (-ENOENT if
 * none), end (fd -1: the pin alone, detaching a link no one holds).
 */
int pins_fd_pin(struct probe_pins *pp, int fd, const char *name);
int pins_fd_adopt(struct probe_pins *pp, const char *name);
void pins_fd_end(struct probe_pins *pp, int fd, const char *name);
/* Names of the links/ entries an earlier serve pinned, one call each; stops on non-zero. */
int pins_links_foreach(struct probe_pins *pp, int (*fn)(const char *name, void *arg), void *arg);

/*
 * Removes PIN_DIR's entries that are not the directory of one of `probes`
 * (a probe this serve does not run, pins of older versions), detaching
 * what they held.
 */
void pins_tidy(const char *const *probes, size_t nr);
/* Removes everything under PIN_DIR and PIN_DIR itself; 0 or -errno. */
int pins_remove_all(void);
/* Whether PIN_DIR holds anything. */
bool pins_exist(void);

/*
 * A map serve pinned as PIN_DIR/name ("net/net_stats"), mapped read-only,
 * if its values are `elem` bytes: its address (*len bytes, *entries
 * values), or NULL.
 */
void *pin_mmap_ro(const char *name, size_t elem, __u32 *entries, size_t *len);
/* The value size of the map pinned as PIN_DIR/name, or -errno (-ENOENT: none). */
int pin_value_size(const char *name);

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Serve's state shared with the CLI: the probes' counter maps pinned in
 * bpffs (probe_ops.pin) and the VM table in a small JSON file
 * (probe_ops.state), so `top` and `hist` read the counters serve keeps
 * instead of attaching a second set of probes; and the locks that keep
 * one attacher per host.
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

struct bpf_map;

/*
 * Takes the lock at `path` (made if missing) and writes our PID in it: its
 * fd, held until the process closes it or ends, or -EBUSY with the
 * holder's PID in `holder` ("?" if unknown), or another -errno.
 */
int lock_take(const char *path, char *holder, size_t len);
/* Is serve running? It holds SERVE_LOCK for as long as it lives. */
bool serve_running(void);

/* serve: pins every probe's maps (mounting bpffs if needed); 0 or -errno. */
int pins_create(struct probe_set *s);
/* serve: removes every registered probe's pins, PIN_DIR and the state file. */
void pins_remove(void);
/* serve: writes the VM table and the probes' slots to STATE_PATH (atomically). */
int state_write(struct discovery *d);

/* For probe_ops.pin: pins `map` as dir/NAME, replacing a pin left by a killed serve. */
int pin_map(struct bpf_map *map, const char *dir);
/* For probe_ops.unpin: removes dir/NAME for each name. */
void pin_unlink(const char *dir, const char *const *names, size_t n);

/*
 * A map serve pinned as PIN_DIR/name, mapped read-only, if its values are
 * `elem` bytes: its address (*len bytes, *entries values), or NULL.
 */
void *pin_mmap_ro(const char *name, size_t elem, __u32 *entries, size_t *len);

#endif

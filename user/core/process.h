/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * process_* metrics of vmprobe itself (CPU, memory, fds, start time), as
 * every Prometheus client library exports them for its process.
 */
#ifndef VMPROBE_PROCESS_H
#define VMPROBE_PROCESS_H

#include <stddef.h>

#include "core/expo.h"
#include "core/util.h"

const struct expo_family *process_families(size_t *nr);

/* When vmprobe started, seconds since the epoch (0 if unknown). */
double process_start_time(void);

/* Renders them from /proc/self; a family whose source cannot be read is left out. */
void process_render(struct expo *e);

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * process_* metrics of vmprobe itself (CPU, memory, fds, start time), as
 * every Prometheus client library exports them for its process; and the
 * parse of /proc/PID/stat, which discovery uses for other processes too.
 */
#ifndef VMPROBE_PROCESS_H
#define VMPROBE_PROCESS_H

#include <stddef.h>

#include "core/expo.h"
#include "core/util.h"

const struct expo_family *process_families(size_t *nr);

/* The fields of /proc/PID/stat vmprobe uses, by their number in proc(5). */
struct proc_stat {
	char state;                    /* 3: R, S, D, Z (zombie), X (dead), ... */
	unsigned long flags;           /* 9: the kernel's PF_* */
	unsigned long long utime, stime; /* 14, 15: clock ticks */
	unsigned long long start;      /* 22: clock ticks since boot */
	unsigned long long vsize;      /* 23: bytes */
	long long rss;                 /* 24: pages */
};

/*
 * Parses /proc/PID/stat text (NUL-terminated); 0, or -EINVAL if it is not
 * one. The command name (field 2) may hold anything, ')' and spaces too:
 * the fields are read after its last ')'.
 */
int proc_stat_parse(const char *text, struct proc_stat *st);

/* When vmprobe started, seconds since the epoch (0 if unknown). */
double process_start_time(void);

/* Renders them from /proc/self; a family whose source cannot be read is left out. */
void process_render(struct expo *e);

#endif

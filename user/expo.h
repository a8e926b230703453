/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Prometheus text exposition format (version 0.0.4). */
#ifndef VMPROBE_EXPO_H
#define VMPROBE_EXPO_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "util.h"

struct expo_label {
	const char *name;
	const char *value; /* NULL: the label is left out */
};

/*
 * Exported range of a log2 histogram whose slot i counts values in
 * (2^(i-1), 2^i] units. Buckets le=2^min..2^max are written; slots below
 * min fold into the first bucket, above max into +Inf.
 */
struct hist_range {
	unsigned min_slot;
	unsigned max_slot;
	/* slot units per base unit, e.g. 1000000000 for ns -> s; dividing
	 * (rather than multiplying by 1e-9) keeps le exactly 2^i / 1e9 */
	unsigned long long per_unit;
};

/* Appends `value` escaped for a label value: \\, \", \n; invalid UTF-8 -> U+FFFD. */
void expo_escape(struct strbuf *sb, const char *value);

/* Appends `name="v",...` (no braces) for the labels whose value is set. */
void expo_labels(struct strbuf *sb, const struct expo_label *labels, size_t n);

/* # HELP and # TYPE lines of a family. */
void expo_family(struct strbuf *sb, const char *name, const char *type, const char *help);

/* One sample: name{labels} value; `labels` is from expo_labels(), may be "". */
void expo_u64(struct strbuf *sb, const char *name, const char *labels, uint64_t v);
void expo_double(struct strbuf *sb, const char *name, const char *labels, double v);

/*
 * One histogram series from log2 slots: _bucket{le} for the range, +Inf,
 * _sum (sum, in slot units, over per_unit) and _count.
 */
void expo_histogram(struct strbuf *sb, const char *name, const char *labels,
		    const __u64 *slots, unsigned nr_slots, const struct hist_range *r,
		    uint64_t sum);

#endif

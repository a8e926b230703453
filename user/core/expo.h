/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Metric exposition, described once and written in the format a scraper
 * negotiated: Prometheus text 0.0.4, OpenMetrics 1.0.0 (# UNIT, _created,
 * # EOF), or protobuf MetricFamily messages with native histograms
 * (expo_pb.c). Renderers call the same functions whatever the format.
 */
#ifndef VMPROBE_EXPO_H
#define VMPROBE_EXPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "core/util.h"
#include "vmprobe/hist.h"

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
	/* slot units per base unit, e.g. TIME_SLOT_UNITS for durations; a
	 * power of two keeps every le an exact power of two */
	unsigned long long per_unit;
	/* units of the sum per base unit (1000000000: ns); 0: per_unit */
	unsigned long long sum_per_unit;
};

/* Appends `value` escaped for a label value: \\, \", \n; invalid UTF-8 -> U+FFFD. */
void expo_escape(struct strbuf *sb, const char *value);

/* Appends `name="v",...` (no braces) for the labels whose value is set. */
void expo_labels(struct strbuf *sb, const struct expo_label *labels, size_t n);

enum expo_type { EXPO_COUNTER, EXPO_GAUGE, EXPO_HISTOGRAM };

enum expo_format { EXPO_TEXT, EXPO_OPENMETRICS, EXPO_PROTOBUF, EXPO_FORMATS };

/* What each format is served as, and what Accept must name to get it. */
extern const char *const expo_media_types[EXPO_FORMATS];
extern const char *const expo_content_types[EXPO_FORMATS];

struct expo_family;
struct expo_pb;

/*
 * Where the text formats' response goes while it is written (a gzip made
 * meanwhile): between two samples, once the response holds `at` bytes or
 * more, take() gets them and leaves the buffer empty to write on into.
 */
struct expo_sink {
	void (*take)(void *arg, struct strbuf *out);
	void *arg;
	size_t at;
};

/* A response being written. */
struct expo {
	enum expo_format format;
	struct strbuf *out;
	bool native;     /* protobuf: native buckets in histograms */
	bool classic;    /* protobuf: classic buckets (always in the text formats) */
	bool om_created; /* OpenMetrics: _created samples */
	double start;   /* vmprobe's start (epoch s): created of its own and host-wide families */
	double created; /* _created of the counters and histograms that follow (epoch s); 0: none */
	const struct expo_family *family; /* the one being written */
	/* families left out (the config's series budget); NULL: none */
	bool (*family_off)(const struct expo_family *f, const void *arg);
	const void *family_off_arg;
	bool skip;                        /* the family being written is left out */
	struct hist_range time_range;     /* of every time histogram: expo_time_range by default */
	struct expo_pb *pb;               /* protobuf: the family being built */
	const struct expo_sink *sink;     /* text formats; NULL: the whole response stays in out */
};

/* Starts writing into out (kept by the caller); `start`: see struct expo. */
void expo_begin(struct expo *e, enum expo_format format, struct strbuf *out, double start);
/* Ends the response (# EOF; the last protobuf family); 0 or -ENOMEM. */
int expo_end(struct expo *e);

/*
 * A metric family, described once: the renderer writes its HELP and TYPE
 * from it, and `vmprobe metrics` lists it for the docs.
 */
struct expo_family {
	const char *name;
	enum expo_type type;
	const char *unit;   /* base unit ("seconds", "bytes"), "" if none */
	const char *labels; /* its labels, comma-separated (name,namespace: per VM) */
	const char *help;
	/*
	 * Left out unless exposition.enabled_families names it: the counters
	 * a histogram's _count and _sum repeat (the series budget).
	 */
	bool off_by_default;
};

extern const char *const expo_type_names[];

/*
 * Starts a family: # HELP and # TYPE (and # UNIT in OpenMetrics); a family
 * e->family_off() names is left out, its samples too.
 */
void expo_family(struct expo *e, const struct expo_family *f);

/*
 * When the series written next began to be counted (epoch s; 0: unknown,
 * then none is said): their _created (OpenMetrics with om_created,
 * protobuf's created_timestamp). expo_family() sets vmprobe's start for
 * its own and host-wide families and 0 for per-VM ones, whose renderers
 * give each series its tap's, drive's or VM's.
 */
void expo_created(struct expo *e, double t);

/* One sample: name{labels} value; `labels` is from expo_labels(), may be "". */
void expo_u64(struct expo *e, const char *name, const char *labels, uint64_t v);
void expo_double(struct expo *e, const char *name, const char *labels, double v);

/* A histogram's sum in its base unit. */
double expo_hist_sum(const struct hist_range *r, uint64_t sum);
/* The last slot exported as a bucket of its own: past it, only +Inf (the last slot has no bound). */
unsigned expo_hist_last(const struct hist_range *r, unsigned nr_slots);
/* The upper bound of slot i's bucket, in the base unit. */
double expo_hist_le(const struct hist_range *r, unsigned i);
/* The observations of a histogram: its slots' sum. */
uint64_t expo_hist_count(const __u64 *slots, unsigned nr_slots);

/* Time histograms (disk latency, RTT) by default: le 2^-20 s (0.95 us) .. 2^4 s (16 s). */
extern const struct hist_range expo_time_range;

/*
 * One histogram series from log2 slots: _bucket{le} for the range, +Inf,
 * _sum (sum, in slot units, over per_unit) and _count.
 */
void expo_histogram(struct expo *e, const char *name, const char *labels,
		    const __u64 *slots, unsigned nr_slots, const struct hist_range *r,
		    uint64_t sum);

#endif

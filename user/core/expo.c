// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Exposition: label escaping, and the text formats (0.0.4 and OpenMetrics). */
#include "core/expo.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/expo_pb.h"

void expo_escape(struct strbuf *sb, const char *value)
{
	const unsigned char *s = (const unsigned char *)value, *run = s;

	/* Bytes that stand as they are go out in runs, one copy each. */
	for (;;) {
		unsigned char c = *s;
		const char *esc;
		size_t n;

		if (c && c != '\\' && c != '"' && c != '\n' && c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0x80 && (n = utf8_len(s))) {
			s += n;
			continue;
		}
		sb_add(sb, (const char *)run, (size_t)(s - run));
		if (!c)
			return;
		/* Escaped; a byte that is not UTF-8 becomes U+FFFD. */
		esc = c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\n' ? "\\n" : "\xef\xbf\xbd";
		sb_add(sb, esc, strlen(esc));
		run = ++s;
	}
}

void expo_labels(struct strbuf *sb, const struct expo_label *labels, size_t n)
{
	bool first = true;

	for (size_t i = 0; i < n; i++) {
		if (!labels[i].value)
			continue;
		if (!first)
			sb_putc(sb, ',');
		first = false;
		sb_puts(sb, labels[i].name);
		sb_add(sb, "=\"", 2);
		expo_escape(sb, labels[i].value);
		sb_putc(sb, '"');
	}
}

const char *const expo_type_names[] = {
	[EXPO_COUNTER] = "counter", [EXPO_GAUGE] = "gauge", [EXPO_HISTOGRAM] = "histogram",
};

double expo_hist_sum(const struct hist_range *r, uint64_t sum)
{
	return (double)sum / (double)(r->sum_per_unit ? r->sum_per_unit : r->per_unit);
}

unsigned expo_hist_last(const struct hist_range *r, unsigned nr_slots)
{
	return r->max_slot < nr_slots - 1 ? r->max_slot : nr_slots - 2;
}

double expo_hist_le(const struct hist_range *r, unsigned i)
{
	return ldexp(1.0, (int)i) / (double)r->per_unit;
}

uint64_t expo_hist_count(const __u64 *slots, unsigned nr_slots)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < nr_slots; i++)
		total += slots[i];
	return total;
}

const struct hist_range expo_time_range = { .min_slot = 10, .max_slot = 34,
					    .per_unit = TIME_SLOT_UNITS,
					    .sum_per_unit = 1000000000ULL };

const char *const expo_media_types[EXPO_FORMATS] = {
	[EXPO_TEXT] = "text/plain; version=0.0.4",
	[EXPO_OPENMETRICS] = "application/openmetrics-text; version=1.0.0",
	[EXPO_PROTOBUF] = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
			  "encoding=delimited",
};

const char *const expo_content_types[EXPO_FORMATS] = {
	[EXPO_TEXT] = "text/plain; version=0.0.4; charset=utf-8",
	[EXPO_OPENMETRICS] = "application/openmetrics-text; version=1.0.0; charset=utf-8",
	[EXPO_PROTOBUF] = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
			  "encoding=delimited",
};

void expo_begin(struct expo *e, enum expo_format format, struct strbuf *out, double start)
{
	memset(e, 0, sizeof(*e));
	e->format = format;
	e->out = out;
	e->native = e->classic = true;
	e->start = e->created = start;
	e->time_range = expo_time_range;
}

int expo_end(struct expo *e)
{
	int err = 0;

	if (e->format == EXPO_OPENMETRICS)
		sb_puts(e->out, "# EOF\n");
	else if (e->format == EXPO_PROTOBUF)
		err = expo_pb_flush(e);
	expo_pb_end(e);
	return err ? err : e->out->oom ? -ENOMEM : 0;
}

/* HELP text: backslash and newline escaped; in OpenMetrics the double quote too. */
static void help_text(struct strbuf *sb, const char *help, bool quote)
{
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			sb_add(sb, "\\\\", 2);
		else if (*p == '\n')
			sb_add(sb, "\\n", 2);
		else if (*p == '"' && quote)
			sb_add(sb, "\\\"", 2);
		else
			sb_putc(sb, *p);
	}
}

/* A counter's OpenMetrics family name: its sample name without _total. */
static size_t om_name_len(const struct expo_family *f)
{
	size_t n = strlen(f->name);

	if (f->type == EXPO_COUNTER && n > 6 && !strcmp(f->name + n - 6, "_total"))
		n -= 6;
	return n;
}

/* Between two samples: the response so far to the sink, once it holds enough. */
static void sink_check(struct expo *e)
{
	if (e->sink && e->format != EXPO_PROTOBUF && e->out->len >= e->sink->at)
		e->sink->take(e->sink->arg, e->out);
}

void expo_family(struct expo *e, const struct expo_family *f)
{
	struct strbuf *sb = e->out; /* the sink swaps its contents, never the struct */
	int n = (int)strlen(f->name);

	sink_check(e);
	e->family = f;
	e->skip = e->family_off && e->family_off(f, e->family_off_arg);
	if (e->skip) {
		/* protobuf: the family before is complete */
		if (e->format == EXPO_PROTOBUF && expo_pb_flush(e))
			e->out->oom = true;
		return;
	}
	/* vmprobe's own and host-wide series began with vmprobe; a VM's: expo_created(). */
	e->created = strncmp(f->labels, "name,", 5) ? e->start : 0;
	switch (e->format) {
	case EXPO_PROTOBUF:
		expo_pb_family(e, f);
		return;
	case EXPO_OPENMETRICS:
		n = (int)om_name_len(f);
		sb_printf(sb, "# TYPE %.*s %s\n", n, f->name, expo_type_names[f->type]);
		/* OpenMetrics wants the unit as the name's suffix: said only where it is. */
		if (f->unit[0] && n > (int)strlen(f->unit) &&
		    !strncmp(f->name + n - strlen(f->unit), f->unit, strlen(f->unit)) &&
		    f->name[n - strlen(f->unit) - 1] == '_')
			sb_printf(sb, "# UNIT %.*s %s\n", n, f->name, f->unit);
		sb_printf(sb, "# HELP %.*s ", n, f->name);
		help_text(sb, f->help, true);
		sb_putc(sb, '\n');
		return;
	default:
		sb_printf(sb, "# HELP %s ", f->name);
		help_text(sb, f->help, false);
		sb_printf(sb, "\n# TYPE %s %s\n", f->name, expo_type_names[f->type]);
	}
}

/* Whether %.{prec}g of v reads back as exactly v; the text in buf. */
static bool round_trips(char *buf, size_t size, double v, int prec)
{
	snprintf(buf, size, "%.*g", prec, v);
	return strtod(buf, NULL) == v;
}

/*
 * The shortest decimal that reads back as exactly v. More digits never
 * stop a decimal from reading back, but for a power of two (whose lower
 * neighbour is nearer than its upper one): elsewhere the least precision
 * is found by bisection, 4 or 5 tries rather than up to 17.
 */
static void fmt_double(char *buf, size_t size, double v)
{
	int lo = 1, hi = 17, exp;

	if (!isfinite(v) || fabs(frexp(v, &exp)) == 0.5) {
		for (int prec = 1; prec <= 17; prec++)
			if (round_trips(buf, size, v, prec))
				return;
		return;
	}
	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (round_trips(buf, size, v, mid))
			hi = mid;
		else
			lo = mid + 1;
	}
	round_trips(buf, size, v, lo);
}

/* v in decimal, then a newline: printf costs more than the rest of a sample. */
static void put_u64_line(struct strbuf *sb, uint64_t v)
{
	char buf[24], *p = buf + sizeof(buf);

	*--p = '\n';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sb_add(sb, p, (size_t)(buf + sizeof(buf) - p));
}

/*
 * The le text of slot i's bucket. Every histogram of a unit has the same
 * few dozen, so each is formatted once per thread and unit.
 */
static const char *le_text(const struct hist_range *r, unsigned i)
{
	static __thread struct le_cache {
		unsigned long long per_unit; /* 0: empty */
		char le[64][32];
	} cache[4];
	static __thread unsigned next;
	struct le_cache *c = NULL;

	for (unsigned k = 0; k < ARRAY_SIZE(cache) && !c; k++)
		if (cache[k].per_unit == r->per_unit)
			c = &cache[k];
	if (!c) {
		c = &cache[next++ % ARRAY_SIZE(cache)];
		c->per_unit = r->per_unit;
		for (unsigned k = 0; k < ARRAY_SIZE(c->le); k++) {
			if (r->per_unit == 1)
				snprintf(c->le[k], sizeof(c->le[k]), "%" PRIu64, (uint64_t)1 << k);
			else
				fmt_double(c->le[k], sizeof(c->le[k]), expo_hist_le(r, k));
		}
	}
	return c->le[i];
}

static void sample_head(struct strbuf *sb, const char *name, const char *suffix,
			const char *labels)
{
	sb_puts(sb, name);
	sb_puts(sb, suffix);
	if (!labels || !*labels) {
		sb_putc(sb, ' ');
		return;
	}
	sb_putc(sb, '{');
	sb_puts(sb, labels);
	sb_add(sb, "} ", 2);
}

void expo_created(struct expo *e, double t)
{
	e->created = t;
}

/* OpenMetrics: a counter's or histogram's name_created sample, when known. */
static void om_created(struct expo *e, const char *labels)
{
	char buf[32];

	if (e->format != EXPO_OPENMETRICS || !e->om_created || e->created <= 0 || !e->family ||
	    e->family->type == EXPO_GAUGE)
		return;
	fmt_double(buf, sizeof(buf), e->created);
	sb_add(e->out, e->family->name, om_name_len(e->family));
	sample_head(e->out, "", "_created", labels);
	sb_printf(e->out, "%s\n", buf);
}

void expo_u64(struct expo *e, const char *name, const char *labels, uint64_t v)
{
	if (e->skip)
		return;
	sink_check(e);
	if (e->format == EXPO_PROTOBUF) {
		expo_pb_sample(e, labels, (double)v);
		return;
	}
	sample_head(e->out, name, "", labels);
	put_u64_line(e->out, v);
	om_created(e, labels);
}

void expo_double(struct expo *e, const char *name, const char *labels, double v)
{
	char buf[32];

	if (e->skip)
		return;
	sink_check(e);
	if (e->format == EXPO_PROTOBUF) {
		expo_pb_sample(e, labels, v);
		return;
	}
	fmt_double(buf, sizeof(buf), v);
	sample_head(e->out, name, "", labels);
	sb_printf(e->out, "%s\n", buf);
	om_created(e, labels);
}

/* Where the response holds `name_bucket{labels,le="`, once written. */
struct bucket_head {
	size_t off, len; /* len 0: not written yet */
};

/*
 * name_bucket{labels,le="LE"} COUNT: the part before LE, the same on every
 * line of a histogram, is copied from its first line.
 */
static void bucket_line(struct strbuf *sb, const char *name, const char *labels,
			struct bucket_head *h, const char *le, uint64_t count)
{
	if (!h->len) {
		h->off = sb->len;
		sb_puts(sb, name);
		sb_add(sb, "_bucket{", 8);
		if (labels && *labels) {
			sb_puts(sb, labels);
			sb_putc(sb, ',');
		}
		sb_add(sb, "le=\"", 4);
		h->len = sb->len - h->off;
	} else if (sb_reserve(sb, h->len)) {
		memcpy(sb->buf + sb->len, sb->buf + h->off, h->len);
		sb->len += h->len;
	}
	sb_puts(sb, le);
	sb_add(sb, "\"} ", 3);
	put_u64_line(sb, count);
}

void expo_histogram(struct expo *e, const char *name, const char *labels,
		    const __u64 *slots, unsigned nr_slots, const struct hist_range *r,
		    uint64_t sum)
{
	struct strbuf *sb = e->out;
	unsigned max = expo_hist_last(r, nr_slots);
	struct bucket_head head = { 0 };
	uint64_t cum = 0, total;
	char le[32];

	if (e->skip)
		return;
	sink_check(e);
	if (e->format == EXPO_PROTOBUF) {
		expo_pb_histogram(e, labels, slots, nr_slots, r, sum);
		return;
	}
	total = expo_hist_count(slots, nr_slots);
	for (unsigned i = 0; i <= max; i++) {
		cum += slots[i];
		if (i >= r->min_slot)
			bucket_line(sb, name, labels, &head, le_text(r, i), cum);
	}
	bucket_line(sb, name, labels, &head, "+Inf", total);
	sample_head(sb, name, "_sum", labels);
	if ((r->sum_per_unit ? r->sum_per_unit : r->per_unit) == 1) {
		put_u64_line(sb, sum);
	} else {
		fmt_double(le, sizeof(le), expo_hist_sum(r, sum));
		sb_puts(sb, le);
		sb_putc(sb, '\n');
	}
	sample_head(sb, name, "_count", labels);
	put_u64_line(sb, total);
	om_created(e, labels);
}

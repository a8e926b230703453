// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "core/expo.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s, 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void expo_escape(struct strbuf *sb, const char *value)
{
	const unsigned char *s = (const unsigned char *)value;
	size_t n;

	while (*s) {
		switch (*s) {
		case '\\':
			sb_add(sb, "\\\\", 2);
			s++;
			continue;
		case '"':
			sb_add(sb, "\\\"", 2);
			s++;
			continue;
		case '\n':
			sb_add(sb, "\\n", 2);
			s++;
			continue;
		}
		n = utf8_len(s);
		if (n == 0) {
			sb_add(sb, "\xef\xbf\xbd", 3);
			s++;
			continue;
		}
		sb_add(sb, (const char *)s, n);
		s += n;
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

const struct hist_range expo_time_range = { .min_slot = 10, .max_slot = 34,
					    .per_unit = TIME_SLOT_UNITS,
					    .sum_per_unit = 1000000000ULL };

void expo_family(struct strbuf *sb, const struct expo_family *f)
{
	sb_printf(sb, "# HELP %s ", f->name);
	/* HELP text escapes only backslash and newline. */
	for (const char *p = f->help; *p; p++) {
		if (*p == '\\')
			sb_add(sb, "\\\\", 2);
		else if (*p == '\n')
			sb_add(sb, "\\n", 2);
		else
			sb_putc(sb, *p);
	}
	sb_printf(sb, "\n# TYPE %s %s\n", f->name, expo_type_names[f->type]);
}

/* The shortest decimal that reads back as exactly v. */
static void fmt_double(char *buf, size_t size, double v)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static void sample_head(struct strbuf *sb, const char *name, const char *suffix,
			const char *labels, const char *le)
{
	bool has_labels = labels && *labels;

	sb_puts(sb, name);
	sb_puts(sb, suffix);
	if (!has_labels && !le) {
		sb_putc(sb, ' ');
		return;
	}
	sb_putc(sb, '{');
	if (has_labels)
		sb_puts(sb, labels);
	if (le) {
		if (has_labels)
			sb_putc(sb, ',');
		sb_printf(sb, "le=\"%s\"", le);
	}
	sb_add(sb, "} ", 2);
}

void expo_u64(struct strbuf *sb, const char *name, const char *labels, uint64_t v)
{
	sample_head(sb, name, "", labels, NULL);
	sb_printf(sb, "%" PRIu64 "\n", v);
}

void expo_double(struct strbuf *sb, const char *name, const char *labels, double v)
{
	char buf[32];

	fmt_double(buf, sizeof(buf), v);
	sample_head(sb, name, "", labels, NULL);
	sb_printf(sb, "%s\n", buf);
}

void expo_histogram(struct strbuf *sb, const char *name, const char *labels,
		    const __u64 *slots, unsigned nr_slots, const struct hist_range *r,
		    uint64_t sum)
{
	unsigned max = r->max_slot < nr_slots - 1 ? r->max_slot : nr_slots - 2;
	uint64_t cum = 0, total = 0;
	unsigned long long sum_unit;
	char le[32];
	unsigned i;

	for (i = 0; i < nr_slots; i++)
		total += slots[i];
	for (i = 0; i <= max; i++) {
		cum += slots[i];
		if (i < r->min_slot)
			continue;
		if (r->per_unit == 1)
			snprintf(le, sizeof(le), "%" PRIu64, (uint64_t)1 << i);
		else
			fmt_double(le, sizeof(le), ldexp(1.0, i) / (double)r->per_unit);
		sample_head(sb, name, "_bucket", labels, le);
		sb_printf(sb, "%" PRIu64 "\n", cum);
	}
	sample_head(sb, name, "_bucket", labels, "+Inf");
	sb_printf(sb, "%" PRIu64 "\n", total);
	sample_head(sb, name, "_sum", labels, NULL);
	sum_unit = r->sum_per_unit ? r->sum_per_unit : r->per_unit;
	if (sum_unit == 1)
		sb_printf(sb, "%" PRIu64 "\n", sum);
	else {
		fmt_double(le, sizeof(le), (double)sum / (double)sum_unit);
		sb_printf(sb, "%s\n", le);
	}
	sample_head(sb, name, "_count", labels, NULL);
	sb_printf(sb, "%" PRIu64 "\n", total);
}

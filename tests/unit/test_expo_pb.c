// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The protobuf exposition, decoded again with libprotobuf-c: label values
 * (tenant input) survive escaping both ways; histograms carry native
 * buckets of schema 0 whose spans and deltas give back the log2 slots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include "core/expo.h"
#include "core/expo_pb.h"
#include "metrics.pb-c.h"

static void labels_come_back_unescaped(void **state)
{
	struct strbuf sb;
	const char *names[4], *values[4];
	char buf[256];
	struct expo_label l[] = { { "name", "web \"01\" \\ prod\nx" }, { "drive", "vda" } };
	int n;

	sb_init(&sb);
	expo_labels(&sb, l, 2);
	n = expo_pb_split_labels(sb.buf, buf, sizeof(buf), names, values, 4);
	expect_int("labels", 2, n);
	expect_str("first name", "name", names[0]);
	expect_str("first value", "web \"01\" \\ prod\nx", values[0]);
	expect_str("second", "vda", values[1]);
	expect_int("empty", 0, expo_pb_split_labels("", buf, sizeof(buf), names, values, 4));
	expect_int("no quote", -1, expo_pb_split_labels("a=b", buf, sizeof(buf), names, values, 4));
	expect_int("unterminated", -1, expo_pb_split_labels("a=\"b", buf, sizeof(buf), names, values, 4));
	expect_int("too many", -1, expo_pb_split_labels("a=\"1\",b=\"2\"", buf, sizeof(buf), names, values, 1));
	sb_free(&sb);
}

/* The first length-delimited MetricFamily of out. */
static Io__Prometheus__Client__MetricFamily *first_family(const struct strbuf *out)
{
	const uint8_t *p = (const uint8_t *)out->buf;
	size_t len = 0, shift = 0, i = 0;

	do
		len |= (size_t)(p[i] & 0x7f) << shift, shift += 7;
	while (p[i++] & 0x80);
	assert_true(i + len == out->len);
	return io__prometheus__client__metric_family__unpack(NULL, len, p + i);
}

static bool off_b(const struct expo_family *f, const void *arg)
{
	return !strcmp(f->name, arg);
}

/* Families a, b (left out), c in FORMAT: what was written. */
static void write_abc(struct strbuf *sb, enum expo_format format)
{
	static const struct expo_family f[] = { { "a_total", EXPO_COUNTER, "", "", "A.", false },
						{ "b_seconds", EXPO_HISTOGRAM, "seconds", "", "B.", false },
						{ "c", EXPO_GAUGE, "", "", "C.", false } };
	__u64 slots[38] = { [20] = 4 };
	struct expo e;

	sb_init(sb);
	expo_begin(&e, format, sb, 1000.5);
	e.family_off = off_b;
	e.family_off_arg = "b_seconds";
	expo_family(&e, &f[0]);
	expo_u64(&e, f[0].name, "", 7);
	expo_family(&e, &f[1]);
	expo_histogram(&e, f[1].name, "", slots, 38, &e.time_range, 99);
	expo_family(&e, &f[2]);
	expo_double(&e, f[2].name, "", 1.5);
	expect_int("expo_end", 0, expo_end(&e));
}

/* exposition.disabled_families: a family left out leaves no trace, in every format. */
static void a_disabled_family_is_left_out(void **state)
{
	Io__Prometheus__Client__MetricFamily *m[3] = { 0 };
	const uint8_t *p;
	struct strbuf sb;
	size_t off = 0;
	int n = 0;

	write_abc(&sb, EXPO_TEXT);
	expect_str("text", "# HELP a_total A.\n# TYPE a_total counter\na_total 7\n"
			   "# HELP c C.\n# TYPE c gauge\nc 1.5\n", sb.buf);
	sb_free(&sb);
	write_abc(&sb, EXPO_OPENMETRICS);
	assert_null(strstr(sb.buf, "b_seconds"));
	assert_non_null(strstr(sb.buf, "a_total 7\n"));
	assert_non_null(strstr(sb.buf, "c 1.5\n# EOF\n"));
	sb_free(&sb);
	write_abc(&sb, EXPO_PROTOBUF);
	p = (const uint8_t *)sb.buf;
	while (off < sb.len && n < 3) {
		size_t len = 0, shift = 0;

		do
			len |= (size_t)(p[off] & 0x7f) << shift, shift += 7;
		while (p[off++] & 0x80);
		m[n++] = io__prometheus__client__metric_family__unpack(NULL, len, p + off);
		off += len;
	}
	expect_int("protobuf: two families", 2, n);
	expect_int("protobuf: all of the body", (int)sb.len, (int)off);
	assert_non_null(m[0]);
	assert_non_null(m[1]);
	expect_str("first", "a_total", m[0]->name);
	expect_int("a_total's value", 7, (int)m[0]->metric[0]->counter->value);
	expect_str("second", "c", m[1]->name);
	for (int i = 0; i < n; i++)
		io__prometheus__client__metric_family__free_unpacked(m[i], NULL);
	sb_free(&sb);
}

static void a_histogram_decodes_to_its_slots(void **state)
{
	static const struct expo_family f = { "t_seconds", EXPO_HISTOGRAM, "seconds", "drive", "T.", false };
	__u64 slots[38] = { 0 }, back[38] = { 0 };
	struct strbuf sb;
	struct expo e;
	Io__Prometheus__Client__MetricFamily *m;
	Io__Prometheus__Client__Histogram *h;
	int index;
	int64_t count = 0;
	size_t d = 0;

	slots[0] = 1;  /* the zero bucket */
	slots[20] = 3; /* 2^-10 s */
	slots[21] = 5;
	slots[25] = 2; /* after a gap */
	slots[37] = 1; /* the last slot */
	sb_init(&sb);
	expo_begin(&e, EXPO_PROTOBUF, &sb, 1000.5);
	expo_family(&e, &f);
	expo_histogram(&e, f.name, "drive=\"a\\\"b\"", slots, 38, &expo_time_range, 123456789);
	assert_int_equal(0, expo_end(&e));
	m = first_family(&sb);
	assert_non_null(m);
	expect_str("name", "t_seconds", m->name);
	expect_str("unit", "seconds", m->unit);
	expect_int("type", IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM, m->type);
	assert_int_equal(1, m->n_metric);
	expect_str("label value", "a\"b", m->metric[0]->label[0]->value);
	h = m->metric[0]->histogram;
	assert_non_null(h);
	expect_int("count", 12, h->sample_count);
	assert_true(h->sample_sum == 0.123456789);
	expect_int("schema", 0, h->schema);
	assert_true(h->zero_threshold == 1.0 / (1 << 30));
	expect_int("zero count", 1, h->zero_count);
	expect_int("created", 1000, h->created_timestamp->seconds);
	expect_int("spans", 3, h->n_positive_span);
	/* Walk spans and deltas back into slots: index i is slot i + 30. */
	index = 0;
	for (size_t s = 0; s < h->n_positive_span; s++) {
		index += h->positive_span[s]->offset;
		for (unsigned k = 0; k < h->positive_span[s]->length; k++, index++) {
			count += h->positive_delta[d++];
			back[index + 30] = (__u64)count;
		}
	}
	back[0] = h->zero_count;
	for (int i = 0; i < 38; i++) {
		char what[32];

		snprintf(what, sizeof(what), "slot %d", i);
		expect_int(what, slots[i], back[i]);
	}
	/* And the classic buckets, as the text format has them. */
	assert_true(h->n_bucket > 0);
	assert_true(h->bucket[0]->upper_bound == 1.0 / (1 << 20));
	io__prometheus__client__metric_family__free_unpacked(m, NULL);
	sb_free(&sb);
}

/*
 * A family is packed a metric at a time behind room for its length: with
 * one, a few hundred or thousands of metrics (lengths of one to three
 * varint bytes), it decodes to all of them, in order, with its unit.
 */
static void a_family_of_many_metrics_decodes_whole(void **state)
{
	static const struct expo_family f = { "n_bytes", EXPO_COUNTER, "bytes", "vm", "N.", false };
	static const int counts[] = { 1, 3, 300, 5000 };

	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		Io__Prometheus__Client__MetricFamily *m;
		struct strbuf sb;
		struct expo e;
		char labels[32], what[64];

		sb_init(&sb);
		expo_begin(&e, EXPO_PROTOBUF, &sb, 1000.5);
		expo_family(&e, &f);
		for (int i = 0; i < counts[c]; i++) {
			snprintf(labels, sizeof(labels), "vm=\"v%d\"", i);
			expo_u64(&e, f.name, labels, (uint64_t)i * 3);
		}
		assert_int_equal(0, expo_end(&e));
		m = first_family(&sb);
		snprintf(what, sizeof(what), "%d metrics: decoded", counts[c]);
		assert_non_null(m);
		expect_int(what, counts[c], m->n_metric);
		expect_str(what, "n_bytes", m->name);
		expect_str(what, "N.", m->help);
		expect_str(what, "bytes", m->unit);
		for (int i = 0; i < counts[c]; i++) {
			snprintf(labels, sizeof(labels), "v%d", i);
			expect_str(what, labels, m->metric[i]->label[0]->value);
			expect_int(what, i * 3, (long long)m->metric[i]->counter->value);
		}
		io__prometheus__client__metric_family__free_unpacked(m, NULL);
		sb_free(&sb);
	}
}

/* A per-VM series' created_timestamp is the one its renderer gives; none where it gives none. */
static void created_timestamp_is_per_series(void **state)
{
	static const struct expo_family c = { "v_total", EXPO_COUNTER, "", "name,namespace", "V.", false },
					 h = { "l_seconds", EXPO_HISTOGRAM, "seconds", "name,namespace",
					       "L.", false };
	__u64 slots[38] = { [20] = 1 };
	Io__Prometheus__Client__MetricFamily *m;
	struct strbuf sb;
	struct expo e;

	for (int f = 0; f < 2; f++) {
		sb_init(&sb);
		expo_begin(&e, EXPO_PROTOBUF, &sb, 1000.5);
		expo_family(&e, f ? &h : &c);
		for (int i = 0; i < 2; i++) {
			if (f)
				expo_histogram(&e, h.name, i ? "name=\"a\"" : "name=\"u\"", slots, 38,
					       &expo_time_range, 5);
			else
				expo_u64(&e, c.name, i ? "name=\"a\"" : "name=\"u\"", 9);
			expo_created(&e, 1700000000.25);
		}
		assert_int_equal(0, expo_end(&e));
		m = first_family(&sb);
		assert_non_null(m);
		assert_int_equal(2, m->n_metric);
		for (int i = 0; i < 2; i++) {
			const Io__Prometheus__Client__Timestamp *t =
				f ? m->metric[i]->histogram->created_timestamp :
				    m->metric[i]->counter->created_timestamp;

			if (!i) {
				assert_null(t);
				continue;
			}
			assert_non_null(t);
			expect_int("created seconds", 1700000000, t->seconds);
			expect_int("created nanos", 250000000, t->nanos);
		}
		io__prometheus__client__metric_family__free_unpacked(m, NULL);
		sb_free(&sb);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(labels_come_back_unescaped),
		cmocka_unit_test(a_family_of_many_metrics_decodes_whole),
		cmocka_unit_test(a_histogram_decodes_to_its_slots),
		cmocka_unit_test(created_timestamp_is_per_series),
		cmocka_unit_test(a_disabled_family_is_left_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Prometheus text exposition: escaping, labels, families, log2 histograms, OpenMetrics _created. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include "core/expo.h"
#include "vmprobe/disk.h"

#define FFFD "\xef\xbf\xbd"

/* A text-format writer into sb (its state matters only to the other formats). */
static struct expo *text_of(struct strbuf *sb)
{
	static struct expo e;

	expo_begin(&e, EXPO_TEXT, sb, 0);
	return &e;
}

static const char *text(const struct strbuf *sb)
{
	return sb->buf ? sb->buf : "";
}

struct escape_case {
	const char *what, *in, *out;
};

static void expect_escapes(const struct escape_case *cases, size_t n)
{
	struct strbuf sb;

	for (size_t i = 0; i < n; i++) {
		sb_init(&sb);
		expo_escape(&sb, cases[i].in);
		expect_str(cases[i].what, cases[i].out, text(&sb));
		sb_free(&sb);
	}
}

static void test_escape_keeps_valid_text_and_escapes_quote_backslash_newline(void **state)
{
	static const struct escape_case cases[] = {
		{ "empty", "", "" },
		{ "plain", "web01", "web01" },
		{ "double quote", "a\"b", "a\\\"b" },
		{ "backslash", "a\\b", "a\\\\b" },
		{ "newline", "a\nb", "a\\nb" },
		{ "mixed", "\"C:\\x\"\n", "\\\"C:\\\\x\\\"\\n" },
		{ "tab and other controls pass", "a\tb\rc", "a\tb\rc" },
		{ "2-byte UTF-8", "caf\xc3\xa9", "caf\xc3\xa9" },
		{ "3-byte UTF-8", "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac" },
		{ "4-byte UTF-8", "vm-\xf0\x9f\x98\x80", "vm-\xf0\x9f\x98\x80" },
		{ "U+D7FF, just below the surrogates", "\xed\x9f\xbf", "\xed\x9f\xbf" },
		{ "U+10FFFF, the last code point", "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf" },
	};

	expect_escapes(cases, ARRAY_SIZE(cases));
}

static void test_escape_replaces_each_invalid_utf8_byte_with_fffd(void **state)
{
	static const struct escape_case cases[] = {
		{ "lone 0xff", "a\xff" "b", "a" FFFD "b" },
		{ "stray continuation byte", "a\x80" "b", "a" FFFD "b" },
		{ "0xc0 0xaf: overlong '/'", "\xc0\xaf", FFFD FFFD },
		{ "0xe0 0x80 0xaf: overlong 3-byte", "\xe0\x80\xaf", FFFD FFFD FFFD },
		{ "0xf0 0x80 0x80 0xaf: overlong 4-byte", "\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD },
		{ "U+D800: high surrogate", "\xed\xa0\x80", FFFD FFFD FFFD },
		{ "U+DFFF: low surrogate", "\xed\xbf\xbf", FFFD FFFD FFFD },
		{ "U+110000: past the last code point", "\xf4\x90\x80\x80",
		  FFFD FFFD FFFD FFFD },
		{ "0xf5 lead byte", "\xf5\x80", FFFD FFFD },
		{ "sequence cut by an ASCII byte", "\xe2\x82" "a", FFFD FFFD "a" },
		{ "sequence cut by the end of the string", "ab\xe2\x82", "ab" FFFD FFFD },
		{ "invalid byte next to an escape", "\xff\"", FFFD "\\\"" },
	};

	expect_escapes(cases, ARRAY_SIZE(cases));
}

static void test_labels_keep_order_skip_null_values_and_escape(void **state)
{
	static const struct expo_label all[] = {
		{ "name", "web01" },
		{ "namespace", NULL },
		{ "interface", "vnet3" },
		{ "direction", "rx" },
	};
	static const struct expo_label first_null[] = {
		{ "namespace", NULL },
		{ "name", "a\"b" },
	};
	static const struct expo_label last_null[] = {
		{ "name", "x" },
		{ "namespace", NULL },
	};
	static const struct expo_label none_set[] = {
		{ "namespace", NULL },
	};
	static const struct expo_label empty_value[] = {
		{ "uuid", "" },
	};
	static const struct {
		const char *what;
		const struct expo_label *l;
		size_t n;
		const char *out;
	} cases[] = {
		{ "NULL in the middle", all, ARRAY_SIZE(all),
		  "name=\"web01\",interface=\"vnet3\",direction=\"rx\"" },
		{ "NULL first, value escaped", first_null, ARRAY_SIZE(first_null),
		  "name=\"a\\\"b\"" },
		{ "NULL last", last_null, ARRAY_SIZE(last_null), "name=\"x\"" },
		{ "every value NULL", none_set, ARRAY_SIZE(none_set), "" },
		{ "empty value is kept", empty_value, ARRAY_SIZE(empty_value), "uuid=\"\"" },
		{ "no labels", all, 0, "" },
	};
	struct strbuf sb;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		sb_init(&sb);
		expo_labels(&sb, cases[i].l, cases[i].n);
		expect_str(cases[i].what, cases[i].out, text(&sb));
		sb_free(&sb);
	}
}

static void test_family_writes_help_then_type(void **state)
{
	struct strbuf sb;

	sb_init(&sb);
	expo_family(text_of(&sb), &(struct expo_family){ "vmprobe_network_bytes_total", EXPO_COUNTER, "bytes",
				      "interface,direction", "Frame bytes seen on the tap.", false });
	assert_string_equal("# HELP vmprobe_network_bytes_total Frame bytes seen on the tap.\n"
			    "# TYPE vmprobe_network_bytes_total counter\n",
			    text(&sb));
	sb_free(&sb);
}

static void test_samples_put_braces_only_around_labels(void **state)
{
	struct strbuf sb;

	sb_init(&sb);
	expo_u64(text_of(&sb), "a_total", "name=\"x\"", 18446744073709551615ULL);
	expo_u64(text_of(&sb), "b_total", "", 0);
	expo_u64(text_of(&sb), "c_total", NULL, 7);
	expo_double(text_of(&sb), "d_seconds", "", 0.25);
	expo_double(text_of(&sb), "e_seconds", "k=\"v\"", 1e-9);
	assert_string_equal("a_total{name=\"x\"} 18446744073709551615\n"
			    "b_total 0\n"
			    "c_total 7\n"
			    "d_seconds 0.25\n"
			    "e_seconds{k=\"v\"} 1e-09\n",
			    text(&sb));
	sb_free(&sb);
}

/* slot i counts (2^(i-1), 2^i]; the last slot is the overflow. */
static const __u64 eight_slots[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

static void test_histogram_folds_low_slots_into_first_bucket_and_high_into_inf(void **state)
{
	const struct hist_range r = { .min_slot = 2, .max_slot = 5, .per_unit = 1 };
	struct strbuf sb;

	sb_init(&sb);
	expo_histogram(text_of(&sb), "h_bytes", "vm=\"a\"", eight_slots, 8, &r, 1234);
	assert_string_equal("h_bytes_bucket{vm=\"a\",le=\"4\"} 6\n"
			    "h_bytes_bucket{vm=\"a\",le=\"8\"} 10\n"
			    "h_bytes_bucket{vm=\"a\",le=\"16\"} 15\n"
			    "h_bytes_bucket{vm=\"a\",le=\"32\"} 21\n"
			    "h_bytes_bucket{vm=\"a\",le=\"+Inf\"} 36\n"
			    "h_bytes_sum{vm=\"a\"} 1234\n"
			    "h_bytes_count{vm=\"a\"} 36\n",
			    text(&sb));
	sb_free(&sb);
}

static void test_histogram_overflow_slot_feeds_only_inf_even_when_max_is_past_it(void **state)
{
	/* max_slot 7 is the overflow slot of 8: the last bucket written is le=64. */
	const struct hist_range r = { .min_slot = 5, .max_slot = 7, .per_unit = 1 };
	struct strbuf sb;

	sb_init(&sb);
	expo_histogram(text_of(&sb), "h", "vm=\"a\"", eight_slots, 8, &r, 99);
	assert_string_equal("h_bucket{vm=\"a\",le=\"32\"} 21\n"
			    "h_bucket{vm=\"a\",le=\"64\"} 28\n"
			    "h_bucket{vm=\"a\",le=\"+Inf\"} 36\n"
			    "h_sum{vm=\"a\"} 99\n"
			    "h_count{vm=\"a\"} 36\n",
			    text(&sb));
	sb_free(&sb);
}

static void test_histogram_without_labels_has_braces_only_for_le(void **state)
{
	const __u64 slots[4] = { 0, 3, 0, 1 };
	const struct hist_range r = { .min_slot = 0, .max_slot = 2, .per_unit = 1 };
	struct strbuf sb;

	sb_init(&sb);
	expo_histogram(text_of(&sb), "h", "", slots, 4, &r, 10);
	assert_string_equal("h_bucket{le=\"1\"} 0\n"
			    "h_bucket{le=\"2\"} 3\n"
			    "h_bucket{le=\"4\"} 3\n"
			    "h_bucket{le=\"+Inf\"} 4\n"
			    "h_sum 10\n"
			    "h_count 4\n",
			    text(&sb));
	sb_free(&sb);
}

static void test_histogram_of_zeros_writes_every_bucket_with_zero(void **state)
{
	const __u64 slots[5] = { 0 };
	const struct hist_range r = { .min_slot = 3, .max_slot = 3, .per_unit = 1 };
	struct strbuf sb;

	sb_init(&sb);
	expo_histogram(text_of(&sb), "h", NULL, slots, 5, &r, 0);
	assert_string_equal("h_bucket{le=\"8\"} 0\n"
			    "h_bucket{le=\"+Inf\"} 0\n"
			    "h_sum 0\n"
			    "h_count 0\n",
			    text(&sb));
	sb_free(&sb);
}

/* _sum in seconds is the shortest decimal that reads back as the same double. */
static void test_histogram_sum_is_the_shortest_decimal_that_reads_back(void **state)
{
	static const struct {
		__u64 ns;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ 1, "1e-09" },
		{ 3, "3e-09" },
		{ 1500, "1.5e-06" },
		{ 123456789, "0.123456789" },
		{ 500000000, "0.5" },   /* powers of two: */
		{ 250000000, "0.25" },  /* their lower neighbour is nearer */
		{ 1000000000, "1" },
		{ 2000000000, "2" },
		{ 4294967296000000000ULL, "4294967296" },
		{ 18446744073709551615ULL, "18446744073.709553" },
		{ 987654321012345678ULL, "987654321.0123457" },
		{ 100000000000000001ULL, "1e+08" },
	};
	const __u64 slots[2] = { 0, 1 };
	const struct hist_range r = { .min_slot = 1, .max_slot = 0, .per_unit = 1,
				      .sum_per_unit = 1000000000 };

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct strbuf sb;
		char what[64], got[64];
		const char *sum;

		sb_init(&sb);
		expo_histogram(text_of(&sb), "h", "", slots, 2, &r, cases[i].ns);
		snprintf(what, sizeof(what), "sum of %llu ns", (unsigned long long)cases[i].ns);
		sum = strstr(text(&sb), "h_sum ");
		assert_non_null(sum);
		snprintf(got, sizeof(got), "%.*s", (int)strcspn(sum + 6, "\n"), sum + 6);
		expect_str(what, cases[i].text, got);
		sb_free(&sb);
	}
}

static void test_histogram_in_ns_writes_le_and_sum_in_seconds(void **state)
{
	__u64 slots[13] = { 0 };
	const struct hist_range r = { .min_slot = 10, .max_slot = 11, .per_unit = 1000000000 };
	struct strbuf sb;

	slots[3] = 4;  /* (4, 8] ns: below min, folds into le=1.024e-06 */
	slots[10] = 1; /* (512, 1024] ns */
	slots[11] = 2;
	slots[12] = 3; /* overflow */
	sb_init(&sb);
	expo_histogram(text_of(&sb), "io_seconds", "drive=\"vda\"", slots, 13, &r, 1500);
	assert_string_equal("io_seconds_bucket{drive=\"vda\",le=\"1.024e-06\"} 5\n"
			    "io_seconds_bucket{drive=\"vda\",le=\"2.048e-06\"} 7\n"
			    "io_seconds_bucket{drive=\"vda\",le=\"+Inf\"} 10\n"
			    "io_seconds_sum{drive=\"vda\"} 1.5e-06\n"
			    "io_seconds_count{drive=\"vda\"} 10\n",
			    text(&sb));
	sb_free(&sb);
}

static void test_histogram_in_ns_writes_exact_le_of_second_sized_buckets(void **state)
{
	/* 2^30 ns = 1.073741824 s and 2^34 ns = 17.179869184 s: ten and eleven digits. */
	__u64 slots[36] = { 0 };
	const struct hist_range r = { .min_slot = 30, .max_slot = 34, .per_unit = 1000000000 };
	struct strbuf sb;
	char got[512];

	sb_init(&sb);
	expo_histogram(text_of(&sb), "io_seconds", "", slots, 36, &r, 0);
	snprintf(got, sizeof(got), "%s", text(&sb));
	sb_free(&sb);
	if (!strstr(got, "{le=\"1.073741824\"}") || !strstr(got, "{le=\"17.179869184\"}"))
		fail_msg("expected le=\"1.073741824\" and le=\"17.179869184\", got:\n%s", got);
}

static void test_time_histograms_are_powers_of_two_of_a_second_with_the_sum_in_ns(void **state)
{
	__u64 slots[DISK_LAT_SLOTS] = { 0 };
	struct strbuf sb;
	char got[4096];

	slots[10] = 1; /* (2^-21, 2^-20] s */
	slots[34] = 2; /* (8, 16] s */
	sb_init(&sb);
	expo_histogram(text_of(&sb), "t_seconds", "", slots, DISK_LAT_SLOTS, &expo_time_range, 1500);
	snprintf(got, sizeof(got), "%s", text(&sb));
	sb_free(&sb);
	/* 2^-20 and 2^4, exactly; the sum's 1500 ns is 1.5e-06 s. */
	if (!strstr(got, "t_seconds_bucket{le=\"9.5367431640625e-07\"} 1\n") ||
	    !strstr(got, "t_seconds_bucket{le=\"16\"} 3\n") ||
	    !strstr(got, "t_seconds_sum 1.5e-06\n") || strstr(got, "le=\"32\""))
		fail_msg("expected le from 9.5367431640625e-07 (2^-20) to 16 (2^4) and the sum "
			 "1.5e-06, got:\n%s", got);
}

/*
 * OpenMetrics with om_created: a host-wide counter's _created is vmprobe's
 * start; a per-VM series has the one its renderer gives (its tap's or
 * drive's), none where it gives none, and gauges never have one.
 */
static void test_openmetrics_created_is_per_series_and_never_made_up(void **state)
{
	static const struct expo_family host = { "h_total", EXPO_COUNTER, "", "", "H.", false },
					 vm = { "v_total", EXPO_COUNTER, "", "name,namespace,drive", "V.", false },
					 lat = { "l_seconds", EXPO_HISTOGRAM, "seconds", "name,namespace", "L.", false },
					 g = { "g", EXPO_GAUGE, "", "name,namespace", "G.", false };
	const __u64 slots[4] = { 0, 1, 0, 0 };
	const struct hist_range r = { .min_slot = 1, .max_slot = 1, .per_unit = 1 };
	struct strbuf sb;
	struct expo e;

	sb_init(&sb);
	expo_begin(&e, EXPO_OPENMETRICS, &sb, 1000.5);
	e.om_created = true;
	expo_family(&e, &host);
	expo_u64(&e, host.name, "", 3);
	expo_family(&e, &vm);
	expo_u64(&e, vm.name, "name=\"unknown\"", 1);
	expo_created(&e, 1700000000.25);
	expo_u64(&e, vm.name, "name=\"a\"", 2);
	expo_created(&e, 1700000123.5);
	expo_u64(&e, vm.name, "name=\"b\"", 4);
	/* A new family: the last one's _created is not carried over. */
	expo_family(&e, &lat);
	expo_histogram(&e, lat.name, "name=\"u\"", slots, 4, &r, 2);
	expo_created(&e, 1700000001);
	expo_histogram(&e, lat.name, "name=\"a\"", slots, 4, &r, 2);
	expo_family(&e, &g);
	expo_created(&e, 1700000002);
	expo_u64(&e, g.name, "name=\"a\"", 1);
	expect_int("expo_end", 0, expo_end(&e));
	expect_str("OpenMetrics",
		   "# TYPE h counter\n# HELP h H.\nh_total 3\nh_created 1000.5\n"
		   "# TYPE v counter\n# HELP v V.\nv_total{name=\"unknown\"} 1\n"
		   "v_total{name=\"a\"} 2\nv_created{name=\"a\"} 1700000000.25\n"
		   "v_total{name=\"b\"} 4\nv_created{name=\"b\"} 1700000123.5\n"
		   "# TYPE l_seconds histogram\n# UNIT l_seconds seconds\n# HELP l_seconds L.\n"
		   "l_seconds_bucket{name=\"u\",le=\"2\"} 1\nl_seconds_bucket{name=\"u\",le=\"+Inf\"} 1\n"
		   "l_seconds_sum{name=\"u\"} 2\nl_seconds_count{name=\"u\"} 1\n"
		   "l_seconds_bucket{name=\"a\",le=\"2\"} 1\nl_seconds_bucket{name=\"a\",le=\"+Inf\"} 1\n"
		   "l_seconds_sum{name=\"a\"} 2\nl_seconds_count{name=\"a\"} 1\n"
		   "l_seconds_created{name=\"a\"} 1700000001\n"
		   "# TYPE g gauge\n# HELP g G.\ng{name=\"a\"} 1\n# EOF\n",
		   text(&sb));
	sb_free(&sb);
	/* Off (exposition.openmetrics_created: false): none at all. */
	sb_init(&sb);
	expo_begin(&e, EXPO_OPENMETRICS, &sb, 1000.5);
	expo_family(&e, &vm);
	expo_created(&e, 1700000000.25);
	expo_u64(&e, vm.name, "name=\"a\"", 2);
	expo_end(&e);
	assert_null(strstr(text(&sb), "_created"));
	sb_free(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_keeps_valid_text_and_escapes_quote_backslash_newline),
		cmocka_unit_test(test_escape_replaces_each_invalid_utf8_byte_with_fffd),
		cmocka_unit_test(test_labels_keep_order_skip_null_values_and_escape),
		cmocka_unit_test(test_family_writes_help_then_type),
		cmocka_unit_test(test_samples_put_braces_only_around_labels),
		cmocka_unit_test(test_histogram_folds_low_slots_into_first_bucket_and_high_into_inf),
		cmocka_unit_test(test_time_histograms_are_powers_of_two_of_a_second_with_the_sum_in_ns),
		cmocka_unit_test(test_histogram_overflow_slot_feeds_only_inf_even_when_max_is_past_it),
		cmocka_unit_test(test_histogram_without_labels_has_braces_only_for_le),
		cmocka_unit_test(test_histogram_of_zeros_writes_every_bucket_with_zero),
		cmocka_unit_test(test_histogram_sum_is_the_shortest_decimal_that_reads_back),
		cmocka_unit_test(test_histogram_in_ns_writes_le_and_sum_in_seconds),
		cmocka_unit_test(test_histogram_in_ns_writes_exact_le_of_second_sized_buckets),
		cmocka_unit_test(test_openmetrics_created_is_per_series_and_never_made_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

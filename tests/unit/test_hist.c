// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The BPF programs' slot math (bpf/hist.bpf.h), run here on the CPU: a
 * duration's time slot is exactly the power of two of a second above it,
 * checked against exact integer arithmetic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <linux/types.h>

#include "unit.h"

#ifndef __always_inline /* glibc's cdefs.h has it */
#define __always_inline inline __attribute__((always_inline))
#endif
#include "hist.bpf.h"
#include "vmprobe/disk.h"
#include "drive.bpf.h"

/* The slot by definition: the least i with ns / 10^9 <= 2^(i-30), i.e. ns * 2^30 <= 10^9 * 2^i. */
static __u32 exact_slot(__u64 ns, __u32 nr)
{
	unsigned __int128 v = (unsigned __int128)ns << 30;
	__u32 i = 0;

	while (i < nr - 1 && v > ((unsigned __int128)1000000000 << i))
		i++;
	return i;
}

static void every_duration_up_to_64_ms_lands_in_its_power_of_two(void **state)
{
	for (__u64 ns = 0; ns <= (1ULL << 26); ns++)
		if (time_slot(ns, DISK_LAT_SLOTS) != exact_slot(ns, DISK_LAT_SLOTS))
			fail_msg("%llu ns: slot %u, expected %u", (unsigned long long)ns,
				 time_slot(ns, DISK_LAT_SLOTS), exact_slot(ns, DISK_LAT_SLOTS));
}

static void the_boundaries_and_long_durations_too(void **state)
{
	char what[64];

	/* Around each 2^k s, k = -20..6 (the last slots), and random long ones. */
	for (int k = -20; k <= 6; k++) {
		__u64 edge = (__u64)(1e9 * (k < 0 ? 1.0 / (1ULL << -k) : (double)(1ULL << k)));

		for (__u64 ns = edge > 2 ? edge - 2 : 0; ns <= edge + 2; ns++) {
			snprintf(what, sizeof(what), "%llu ns", (unsigned long long)ns);
			expect_int(what, exact_slot(ns, DISK_LAT_SLOTS), time_slot(ns, DISK_LAT_SLOTS));
		}
	}
	srand(1);
	for (int i = 0; i < 1000000; i++) {
		__u64 ns = ((__u64)rand() << 31 ^ (__u64)rand()) & ((1ULL << 40) - 1);

		snprintf(what, sizeof(what), "%llu ns", (unsigned long long)ns);
		expect_int(what, exact_slot(ns, DISK_LAT_SLOTS), time_slot(ns, DISK_LAT_SLOTS));
	}
}

/*
 * Start and end stamped on two CPUs whose clocks disagree: the end may
 * read before the start. The request counts, with latency 0, not 2^64 ns.
 */
static void a_request_that_ends_before_it_starts_counts_with_latency_0(void **state)
{
	struct drive_stats st = { 0 };
	__u64 start = 1000000000, end = start - 3000;
	__u64 total = 0;

	expect_int("said, to be counted", 1, drive_stats_add(&st, 4096, end - start));
	expect_int("an ordinary one is not", 0, drive_stats_add(&st, 4096, 2000));
	for (int i = 0; i < DISK_LAT_SLOTS; i++)
		total += st.lat_slots[i];
	expect_int("requests", 2, (int)total);
	expect_int("latency sum (ns)", 2000, (int)st.lat_sum_ns);
	expect_int("in the first slot", 1, (int)st.lat_slots[0]);
	expect_int("in the last slot", 0, (int)st.lat_slots[DISK_LAT_SLOTS - 1]);
	expect_int("bytes", 8192, (int)st.bytes);
}

/* Every time difference the programs take (a drive's latency, a TCP RTT, a reorder gap). */
static void a_negative_time_difference_is_0_and_said(void **state)
{
	__u64 start = 5000000000ULL, ns;

	ns = (start - 1) - start;
	expect_int("the end a nanosecond before the start: said", 1, unskew_ns(&ns));
	expect_int("... and 0", 0, (int)(ns != 0));
	ns = 0;
	expect_int("0 is no skew", 0, unskew_ns(&ns));
	ns = (1ULL << 63) - 1;
	expect_int("the longest duration is kept", 0, unskew_ns(&ns));
	expect_int("... as it is", 1, (int)(ns == (1ULL << 63) - 1));
	ns = 1ULL << 63;
	expect_int("2^63 ns is a negative difference", 1, unskew_ns(&ns));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_duration_up_to_64_ms_lands_in_its_power_of_two),
		cmocka_unit_test(the_boundaries_and_long_durations_too),
		cmocka_unit_test(a_request_that_ends_before_it_starts_counts_with_latency_0),
		cmocka_unit_test(a_negative_time_difference_is_0_and_said),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

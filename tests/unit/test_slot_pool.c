// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The slot pool (core/util.c): when each slot's counting began, the
 * per-VM series' _created: set when a slot is given, kept by a slot an
 * earlier serve left (taken from a pinned map's memory), forgotten when it
 * is freed, new when it is given again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "unit.h"

#include "core/util.h"

static double now_real(void)
{
	return (double)realtime_ns() / 1e9;
}

static void a_slot_is_born_when_given_and_forgotten_when_freed(void **state)
{
	struct timespec rest = { 0, 2000000 };
	struct slot_pool p;
	double before, first, after;
	int slot;

	assert_int_equal(0, slot_pool_init(&p, 1, NULL));
	expect_int("unused slot", 0, slot_pool_born(&p, 0) != 0);
	before = now_real();
	slot = slot_pool_get(&p);
	after = now_real();
	expect_int("slot", 0, slot);
	first = slot_pool_born(&p, slot);
	if (first < before || first > after)
		fail_msg("born %.9f, expected within [%.9f, %.9f]", first, before, after);
	expect_int("out of range", 0, slot_pool_born(&p, 1) != 0);
	expect_int("no slot", 0, slot_pool_born(&p, -1) != 0);
	slot_pool_put(&p, 0);
	expect_int("freed", 0, slot_pool_born(&p, 0) != 0);
	nanosleep(&rest, NULL);
	/* Given again (a new VM): a new birth. */
	expect_int("again", 0, slot_pool_get(&p));
	if (!(slot_pool_born(&p, 0) > first))
		fail_msg("reused slot born %.9f, not after its first birth %.9f",
			 slot_pool_born(&p, 0), first);
	slot_pool_fini(&p);
}

static void a_slot_taken_from_an_earlier_serve_keeps_its_birth(void **state)
{
	__u64 pinned[4] = { 0 };
	struct slot_pool old, p;
	double born;

	assert_int_equal(0, slot_pool_init(&old, 4, pinned));
	expect_int("old serve's slot", 0, slot_pool_get(&old));
	born = slot_pool_born(&old, 0);
	assert_true(born > 0);
	/* It leaves with persist: the slot is not freed; the map outlives it. */
	slot_pool_fini(&old);
	assert_int_equal(0, slot_pool_init(&p, 4, pinned));
	expect_int("taken", 0, slot_pool_take(&p, 0));
	assert_true(slot_pool_born(&p, 0) == born);
	/* A slot it never used has no birth, even taken. */
	expect_int("taken unused", 0, slot_pool_take(&p, 2));
	expect_int("never born", 0, slot_pool_born(&p, 2) != 0);
	/* Released (no VM claimed it): forgotten in the map too. */
	slot_pool_put(&p, 0);
	expect_int("map cleared", 0, (long long)pinned[0]);
	slot_pool_fini(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_slot_is_born_when_given_and_forgotten_when_freed),
		cmocka_unit_test(a_slot_taken_from_an_earlier_serve_keeps_its_birth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

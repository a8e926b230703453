// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Basic authentication (core/auth.c) against real bcrypt hashes
 * (libxcrypt): who passes, and that a 401 costs the same whether the user
 * exists or not, measured in CPU time (not elapsed time: the work done).
 */
#include <crypt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "unit.h"

#include "core/auth.h"

/* A bcrypt hash of `password` at `cost`, as htpasswd -B -C cost makes. */
static void hash(const char *password, unsigned long cost, char *out, size_t size)
{
	static struct crypt_data cd;
	char salt[64];
	const char *h;

	assert_non_null(crypt_gensalt_rn("$2y$", cost, NULL, 0, salt, sizeof(salt)));
	h = crypt_r(password, salt, &cd);
	assert_true(h && h[0] == '$');
	snprintf(out, size, "%s", h);
}

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU time of a check that fails, the best of three (the least disturbed). */
static double cost_of(const struct web_config *wc, const char *user)
{
	double best = 1e9;

	for (int i = 0; i < 3; i++) {
		double t0 = cpu_seconds();

		assert_false(auth_check(wc, user, "wrong"));
		if (cpu_seconds() - t0 < best)
			best = cpu_seconds() - t0;
	}
	return best;
}

static void test_known_user_right_password_only(void **state)
{
	char h[128];
	struct web_pair users[] = { { "prometheus", h } };
	struct web_config wc = { .users = users, .nr_users = 1 };

	hash("secret", 4, h, sizeof(h));
	expect_int("the right password", 1, auth_check(&wc, "prometheus", "secret"));
	expect_int("again (remembered)", 1, auth_check(&wc, "prometheus", "secret"));
	expect_int("a wrong password", 0, auth_check(&wc, "prometheus", "secret2"));
	expect_int("another user with that password", 0, auth_check(&wc, "eve", "secret"));
	expect_int("an empty user", 0, auth_check(&wc, "", "secret"));
}

/*
 * With the cost htpasswd -B uses by default (5) or any other, an unknown
 * user's 401 took a bcrypt of cost 10: far longer or shorter than a known
 * user's, which told who exists. Cost 12 here: a known user's check is 4
 * times a cost-10 one.
 */
static void test_unknown_user_costs_as_much_as_a_wrong_password(void **state)
{
	char h[128];
	struct web_pair users[] = { { "prometheus", h } };
	struct web_config wc = { .users = users, .nr_users = 1 };
	double known, unknown;

	hash("secret", 12, h, sizeof(h));
	known = cost_of(&wc, "prometheus");
	unknown = cost_of(&wc, "eve");
	if (unknown < known * 0.6 || unknown > known / 0.6)
		fail_msg("CPU time of a 401: known user %.3f s, unknown user %.3f s: expected within "
			 "a factor 0.6 of each other", known, unknown);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_user_right_password_only),
		cmocka_unit_test(test_unknown_user_costs_as_much_as_a_wrong_password),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

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

/*
 * CPU time of a check that fails, the best of three (the least disturbed);
 * each a password not tried before, as a remembered failure costs nothing.
 */
static double cost_of(const struct web_config *wc, const char *user)
{
	static unsigned tries;
	double best = 1e9;

	for (int i = 0; i < 3; i++) {
		char wrong[32];
		double t0;

		snprintf(wrong, sizeof(wrong), "wrong%u", tries++);
		t0 = cpu_seconds();
		assert_false(auth_check(wc, user, wrong));
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

/*
 * A failure is remembered as a success is: a client repeating a wrong
 * password (a Prometheus with an old one) does not cost a bcrypt at each
 * request, the one thread that serves them all. CPU time, with a margin of
 * a hundred times: a cost-12 bcrypt takes about a quarter of a second.
 */
static void test_a_failure_is_remembered_until_the_hash_changes(void **state)
{
	char h[128], h2[128];
	struct web_pair users[] = { { "prometheus", h } };
	struct web_config wc = { .users = users, .nr_users = 1 };
	double first, again, t0;

	hash("secret", 12, h, sizeof(h));
	t0 = cpu_seconds();
	expect_int("an old password", 0, auth_check(&wc, "prometheus", "old"));
	first = cpu_seconds() - t0;
	t0 = cpu_seconds();
	expect_int("again: still refused", 0, auth_check(&wc, "prometheus", "old"));
	again = cpu_seconds() - t0;
	if (again > first / 100)
		fail_msg("a remembered failure took %.6f s of CPU, the first %.6f s", again, first);
	/* The file changed: the user's password is now that one. */
	hash("old", 4, h2, sizeof(h2));
	users[0].value = h2;
	expect_int("a new hash is not answered from the old one's failures", 1,
		   auth_check(&wc, "prometheus", "old"));
	expect_int("an unknown user's failure is remembered too", 0, auth_check(&wc, "eve", "x"));
	expect_int("... and stays one", 0, auth_check(&wc, "eve", "x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_user_right_password_only),
		cmocka_unit_test(test_unknown_user_costs_as_much_as_a_wrong_password),
		cmocka_unit_test(test_a_failure_is_remembered_until_the_hash_changes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

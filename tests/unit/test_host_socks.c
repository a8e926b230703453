// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * QEMU's host TCP sockets sorted (probes/net/vm.c host_socks_sort): watched
 * (established), listening (never watched), or not listed yet; the TCP
 * tables (/proc/PID/net/tcp, tcp6: the whole namespace's, slow on a busy
 * host, not read atomically) read only for sockets not sorted before, so
 * that a socket once watched stays watched while QEMU holds it, whatever a
 * later listing shows; a walk that missed fds drops none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit.h"

#include "probes/net/net_probe.h"

enum { ESTABLISHED = 0x01, LISTEN = 0x0A };

static char dir[] = "/tmp/vmprobe-host-socks.XXXXXX";

/* Writes DIR/NAME as /proc/net/tcp lists sockets: `n` (state, inode) pairs. */
static void table(const char *name, const unsigned (*rows)[2], size_t n)
{
	char path[sizeof(dir) + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
		   "   uid  timeout inode\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%4zu: 0100007F:%04X 0100007F:9C40 %02X 00000000:00000000 00:00000000 "
			   "00000000     0        0 %u 1 0000000000000000 20 4 30 10 -1\n",
			i, 40000 + (unsigned)i, rows[i][0], rows[i][1]);
	fclose(f);
}

static void no_tables(void)
{
	char path[sizeof(dir) + 16];

	snprintf(path, sizeof(path), "%s/tcp", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/tcp6", dir);
	unlink(path);
}

static void expect_set(const char *what, const __u64 *v, size_t n, const __u64 *exp, size_t ne)
{
	expect_int(what, ne, n);
	for (size_t i = 0; i < n; i++)
		if (v[i] != exp[i])
			fail_msg("%s[%zu]: expected %llu, actual %llu", what, i,
				 (unsigned long long)exp[i], (unsigned long long)v[i]);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	no_tables();
	return rmdir(dir);
}

static void sorted_by_the_tables_then_kept_without_them(void **state)
{
	/* 100 listed twice (a listing read while the table changed) */
	static const unsigned v4[][2] = { { LISTEN, 300 }, { ESTABLISHED, 100 }, { 0x06, 900 },
					  { ESTABLISHED, 100 } };
	static const unsigned v6[][2] = { { ESTABLISHED, 200 } };
	/* 400: not connected, no table lists it; 200 held by two fds */
	const __u64 walk[] = { 400, 300, 200, 100, 200 };
	const __u64 watch[] = { 100, 200 }, listen[] = { 300 };
	struct host_socks none = {}, first, second, third;

	(void)state;
	table("tcp", v4, 4);
	table("tcp6", v6, 1);
	expect_int("tables read for new sockets", 2, host_socks_sort(dir, &none, walk, 5, false, &first));
	expect_set("watched", first.watch, first.nr_watch, watch, 2);
	expect_set("listening", first.listen, first.nr_listen, listen, 1);

	/* The same sockets, the tables gone (a listing that missed them): kept, none read. */
	no_tables();
	expect_int("tables read for known sockets", 0,
		   host_socks_sort(dir, &first, walk + 1, 4, false, &second));
	expect_set("still watched", second.watch, second.nr_watch, watch, 2);
	expect_set("still listening", second.listen, second.nr_listen, listen, 1);

	/* 400 is still unknown: the tables are read for it (none here: no error). */
	expect_int("tables read for the unlisted one", 2,
		   host_socks_sort(dir, &second, walk, 5, false, &third));
	expect_set("watched, 400 not", third.watch, third.nr_watch, watch, 2);
	expect_set("listening, 400 not", third.listen, third.nr_listen, listen, 1);
	host_socks_free(&first);
	host_socks_free(&second);
	host_socks_free(&third);
}

static void a_closed_socket_goes_but_not_after_a_partial_walk(void **state)
{
	const __u64 w[] = { 100, 200 }, l[] = { 300 }, walk[] = { 300 }, one[] = { 200 };
	struct host_socks was = { .watch = (__u64 *)w, .nr_watch = 2, .listen = (__u64 *)l,
				  .nr_listen = 1 };
	struct host_socks now;

	(void)state;
	no_tables();
	expect_int("complete walk", 0, host_socks_sort(dir, &was, walk, 1, false, &now));
	expect_set("closed ones are no longer watched", now.watch, now.nr_watch, NULL, 0);
	expect_set("the listening one stays known", now.listen, now.nr_listen, l, 1);
	host_socks_free(&now);

	expect_int("partial walk", 0, host_socks_sort(dir, &was, one, 1, true, &now));
	expect_set("a partial walk drops none", now.watch, now.nr_watch, w, 2);
	expect_set("nor a listening one it did not see", now.listen, now.nr_listen, NULL, 0);
	host_socks_free(&now);

	/* A partial walk still sorts a new socket. */
	static const unsigned v4[][2] = { { ESTABLISHED, 500 } };
	const __u64 fresh[] = { 500, 200 }, three[] = { 100, 200, 500 };

	table("tcp", v4, 1);
	expect_int("partial walk with a new socket", 2, host_socks_sort(dir, &was, fresh, 2, true, &now));
	expect_set("the new one watched too", now.watch, now.nr_watch, three, 3);
	host_socks_free(&now);
	no_tables();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sorted_by_the_tables_then_kept_without_them),
		cmocka_unit_test(a_closed_socket_goes_but_not_after_a_partial_walk),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

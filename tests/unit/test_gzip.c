// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * gzip of response bodies: what gzipper_run makes, in one piece or in
 * several deflated at once, is one gzip member that zlib's own reader
 * inflates to exactly the body, CRC and length checked by zlib.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <zlib.h>

#include "unit.h"

#include "core/gzip.h"
#include "core/util.h"

/* A body like /metrics: lines of series with varying values. */
static char *body_of(size_t len)
{
	char *b = malloc(len + 64);
	size_t n = 0;

	for (unsigned i = 0; n < len; i++)
		n += (size_t)sprintf(b + n, "vmprobe_disk_operations_total{name=\"vm-%u\"} %u\n",
				     i % 977, i * 7919u);
	return b;
}

/* Inflates `z` as gzip (one member, all of it): the body, or NULL. */
static char *gunzip(const struct strbuf *z, size_t want, size_t *got)
{
	z_stream zs = { .next_in = (Bytef *)z->buf, .avail_in = (uInt)z->len };
	char *out = malloc(want + 1);
	int ret;

	if (inflateInit2(&zs, 16 + 15) != Z_OK)
		return NULL;
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)want + 1;
	ret = inflate(&zs, Z_FINISH);
	*got = zs.total_out;
	inflateEnd(&zs);
	if (ret != Z_STREAM_END || zs.avail_in) {
		free(out);
		return NULL;
	}
	return out;
}

/* Whether `z` is not what one piece makes of the body: proof that it was cut. */
static bool differs_from_one_piece(const char *body, size_t len, const struct strbuf *z)
{
	struct gzipper one;
	struct strbuf z1;
	bool differs;

	gzipper_init(&one, 1);
	sb_init(&z1);
	gzipper_run(&one, body, len, &z1);
	differs = z1.len != z->len || memcmp(z1.buf, z->buf, z->len);
	sb_free(&z1);
	gzipper_free(&one);
	return differs;
}

static void round_trip(const char *what, unsigned pieces, size_t len)
{
	struct gzipper g;
	struct strbuf z;
	char *body = body_of(len), *back;
	size_t got = 0;
	char msg[160];

	snprintf(msg, sizeof(msg), "%s (%zu bytes, up to %u pieces)", what, len, pieces);
	gzipper_init(&g, pieces);
	sb_init(&z);
	for (int run = 0; run < 2; run++) { /* the second reuses the parts */
		sb_reset(&z);
		if (!gzipper_run(&g, body, len, &z))
			fail_msg("%s: gzipper_run failed", msg);
		back = gunzip(&z, len, &got);
		if (!back)
			fail_msg("%s: zlib does not read it as one whole gzip member", msg);
		expect_int(msg, (long long)len, (long long)got);
		if (memcmp(back, body, len))
			fail_msg("%s: inflated to other bytes", msg);
		free(back);
	}
	if (len > 1000 && z.len * 4 > len)
		fail_msg("%s: %zu bytes compressed to %zu", msg, len, z.len);
	if (pieces > 1 && len >= 2 * GZIP_PIECE_MIN && !differs_from_one_piece(body, len, &z))
		fail_msg("%s: the same bytes as in one piece: it was not cut", msg);
	sb_free(&z);
	gzipper_free(&g);
	free(body);
}

static void one_piece(void **state)
{
	round_trip("empty body", 1, 0);
	round_trip("one byte", 1, 1);
	round_trip("small body", 4, 4000);
	round_trip("big body, one piece", 1, 3 * 1024 * 1024 + 17);
	round_trip("below two pieces' minimum", 4, 2 * GZIP_PIECE_MIN - 1);
}

/* A gzip while another holds the gzipper: one piece, with a deflate state of its own. */
static void while_another_runs(void **state)
{
	struct gzipper g;
	struct strbuf z;
	size_t len = 2 * GZIP_PIECE_MIN + 5, got = 0;
	char *body = body_of(len), *back;

	gzipper_init(&g, 2);
	sb_init(&z);
	pthread_mutex_lock(&g.lock);
	if (!gzipper_run(&g, body, len, &z))
		fail_msg("gzipper_run failed while the gzipper was busy");
	pthread_mutex_unlock(&g.lock);
	back = gunzip(&z, len, &got);
	if (!back || got != len || memcmp(back, body, len))
		fail_msg("a gzip made while the gzipper was busy does not read back as the body");
	if (differs_from_one_piece(body, len, &z))
		fail_msg("a gzip made while the gzipper was busy was cut in pieces");
	free(back);
	sb_free(&z);
	gzipper_free(&g);
	free(body);
}

/* One gzipper for bodies of every size in turn: its kept deflate states serve them all. */
static void sizes_in_turn(void **state)
{
	static const size_t lens[] = { 3 * GZIP_PIECE_MIN + 7, 100, 0, 2 * GZIP_PIECE_MIN, 5000,
				       4 * GZIP_PIECE_MIN + 1 };
	struct gzipper g;
	struct strbuf z;

	gzipper_init(&g, 4);
	sb_init(&z);
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		char *body = body_of(lens[i]), *back;
		size_t got = 0;

		sb_reset(&z);
		if (!gzipper_run(&g, body, lens[i], &z))
			fail_msg("body %zu (%zu bytes): gzipper_run failed", i, lens[i]);
		back = gunzip(&z, lens[i], &got);
		if (!back || got != lens[i] || memcmp(back, body, lens[i]))
			fail_msg("body %zu (%zu bytes) does not read back", i, lens[i]);
		free(back);
		free(body);
	}
	sb_free(&z);
	gzipper_free(&g);
}

static void pieces(void **state)
{
	round_trip("two pieces", 2, 2 * GZIP_PIECE_MIN);
	round_trip("four pieces, uneven cut", 4, 4 * GZIP_PIECE_MIN + 12345);
	round_trip("more pieces asked than the most", 64, 9 * GZIP_PIECE_MIN + 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_piece),
		cmocka_unit_test(pieces),
		cmocka_unit_test(while_another_runs),
		cmocka_unit_test(sizes_in_turn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

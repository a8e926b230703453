// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * gzip of response bodies: what gzipper_run makes, in one piece or in
 * several deflated at once, is one gzip member that zlib's own reader
 * inflates to exactly the body, CRC and length checked by zlib. So is
 * what a gzip stream makes of a body handed over in segments while it is
 * written, by hand and by the exposition's sink.
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

#include "core/expo.h"
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

/* z reads back, as one whole gzip member, as exactly body[0, len). */
static void expect_gunzip(const char *msg, const struct strbuf *z, const char *body, size_t len)
{
	size_t got = 0;
	char *back = gunzip(z, len, &got);

	if (!back)
		fail_msg("%s: zlib does not read it as one whole gzip member", msg);
	expect_int(msg, (long long)len, (long long)got);
	if (memcmp(back, body, len))
		fail_msg("%s: inflated to other bytes", msg);
	free(back);
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
	char *body = body_of(len);
	char msg[160];

	snprintf(msg, sizeof(msg), "%s (%zu bytes, up to %u pieces)", what, len, pieces);
	gzipper_init(&g, pieces);
	sb_init(&z);
	for (int run = 0; run < 2; run++) { /* the second reuses the parts */
		sb_reset(&z);
		if (!gzipper_run(&g, body, len, &z))
			fail_msg("%s: gzipper_run failed", msg);
		expect_gunzip(msg, &z, body, len);
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

/*
 * A body written `chunk` bytes at a time into a buffer handed over to a
 * gzip stream whenever it holds `at` bytes; the stream's gzip. The number
 * of segments handed over into *segments.
 */
static bool stream_body(struct gzipper *g, const char *body, size_t len, size_t chunk, size_t at,
			struct strbuf *z, unsigned *segments)
{
	struct gzip_stream st;
	struct strbuf *cur;

	*segments = 0;
	if (!gzip_stream_begin(&st, g, z))
		fail_msg("gzip_stream_begin refused an idle gzipper");
	cur = st.body;
	if (cur->len)
		fail_msg("a stream began with %zu bytes in its body", cur->len);
	for (size_t off = 0; off < len; off += chunk) {
		if (cur->len >= at) {
			gzip_stream_take(&st, cur);
			(*segments)++;
			if (cur->len)
				fail_msg("a take left %zu bytes in the buffer", cur->len);
		}
		sb_add(cur, body + off, len - off < chunk ? len - off : chunk);
	}
	return gzip_stream_end(&st);
}

static void stream_round_trip(const char *what, unsigned pieces, size_t len, size_t chunk,
			      size_t at, unsigned min_segments)
{
	struct gzipper g;
	struct strbuf z;
	char *body = body_of(len);
	unsigned segments = 0;
	char msg[200];

	snprintf(msg, sizeof(msg), "%s (%zu bytes in %zu-byte writes, cut at %zu, %u threads)",
		 what, len, chunk, at, pieces);
	gzipper_init(&g, pieces);
	sb_init(&z);
	for (int run = 0; run < 2; run++) { /* the second reuses the slots and deflate states */
		sb_reset(&z);
		if (!stream_body(&g, body, len, chunk, at, &z, &segments))
			fail_msg("%s: gzip_stream_end failed", msg);
		if (segments < min_segments)
			fail_msg("%s: %u segments handed over, %u at least expected", msg, segments,
				 min_segments);
		expect_gunzip(msg, &z, body, len);
	}
	if (len > 10000 && z.len * 4 > len)
		fail_msg("%s: %zu bytes compressed to %zu", msg, len, z.len);
	/* Never cut: what gzipper_run makes of the whole body, byte for byte. */
	if (!segments && pieces == 1 && differs_from_one_piece(body, len, &z))
		fail_msg("%s: never cut, yet not what one piece makes", msg);
	sb_free(&z);
	gzipper_free(&g);
	free(body);
}

static void streamed(void **state)
{
	stream_round_trip("empty body", 2, 0, 1, 1000, 0);
	stream_round_trip("never cut", 1, 5000, 100, 1 << 20, 0);
	stream_round_trip("one cut, one thread", 1, 3000, 100, 2000, 1);
	/* Many more segments than the ring holds: the writer waits for the threads. */
	stream_round_trip("segments past the ring, two threads", 2, 400000, 37, 1000,
			  10 * GZIP_RING);
	stream_round_trip("segments past the ring, four threads", 4, 400000, 4096, 5000,
			  4 * GZIP_RING);
	stream_round_trip("one byte at a time, cut at every byte", 2, 3000, 1, 1, 2000);
	stream_round_trip("segments the size of the real ones", 2, 5 * GZIP_SEGMENT + 99, 65536,
			  GZIP_CUT_AT, 4);
}

/* Empty segments, a failed one, a gzipper another holds: said, and nothing stays locked. */
static void stream_edges(void **state)
{
	struct gzipper g;
	struct gzip_stream st;
	struct strbuf z;
	size_t got = 0;
	char *back;

	gzipper_init(&g, 2);
	sb_init(&z);
	if (!gzip_stream_begin(&st, &g, &z))
		fail_msg("gzip_stream_begin refused an idle gzipper");
	gzip_stream_take(&st, st.body); /* empty */
	sb_puts(st.body, "abc");
	gzip_stream_take(&st, st.body);
	gzip_stream_take(&st, st.body); /* empty again */
	if (!gzip_stream_end(&st)) /* and an empty tail */
		fail_msg("a stream with empty segments failed");
	back = gunzip(&z, 3, &got);
	if (!back || got != 3 || memcmp(back, "abc", 3))
		fail_msg("a stream with empty segments does not read back as its three bytes");
	free(back);

	pthread_mutex_lock(&g.lock);
	if (gzip_stream_begin(&st, &g, &z))
		fail_msg("gzip_stream_begin took a gzipper another holds");
	pthread_mutex_unlock(&g.lock);

	sb_reset(&z);
	if (!gzip_stream_begin(&st, &g, &z))
		fail_msg("gzip_stream_begin refused the gzipper after a stream ended");
	sb_puts(st.body, "written");
	st.body->oom = true; /* a write into the segment failed */
	gzip_stream_take(&st, st.body);
	sb_puts(st.body, "tail");
	if (gzip_stream_end(&st))
		fail_msg("a stream whose segment ran out of memory said it succeeded");
	if (pthread_mutex_trylock(&g.lock))
		fail_msg("a failed stream left the gzipper locked");
	pthread_mutex_unlock(&g.lock);

	sb_reset(&z);
	if (!gzip_stream_begin(&st, &g, &z))
		fail_msg("gzip_stream_begin refused the gzipper after a failed stream");
	sb_puts(st.body, "never cut");
	st.body->oom = true;
	if (gzip_stream_end(&st))
		fail_msg("a stream never cut whose body ran out of memory said it succeeded");
	sb_free(&z);
	gzipper_free(&g);
}

#define T_SLOTS 36

/* Families of counters and histograms, as a renderer writes them. */
static void render_families(struct expo *e)
{
	static const struct expo_family fams[] = {
		{ "t_ops_total", EXPO_COUNTER, "", "name,op", "Operations.", false },
		{ "t_latency_seconds", EXPO_HISTOGRAM, "seconds", "name,op", "Latency.", false },
		{ "t_up", EXPO_GAUGE, "", "name", "Up.", false },
	};
	__u64 slots[T_SLOTS] = { 0 };
	char labels[64];

	for (unsigned f = 0; f < ARRAY_SIZE(fams); f++) {
		expo_family(e, &fams[f]);
		for (unsigned vm = 0; vm < 300; vm++) {
			snprintf(labels, sizeof(labels), "name=\"vm-%u\",op=\"read\"", vm);
			expo_created(e, 1.6e9 + vm); /* OpenMetrics: a _created line after each */
			slots[(vm * 7) % T_SLOTS] += vm + 1;
			if (fams[f].type == EXPO_HISTOGRAM)
				expo_histogram(e, fams[f].name, labels, slots, T_SLOTS,
					       &expo_time_range, vm * 1000003ull);
			else
				expo_u64(e, fams[f].name, labels, vm * 31ull);
		}
	}
}

/* The exposition hands its text over between samples: the gzip reads back as the plain render. */
static void expo_sink_gzip(void **state)
{
	for (int format = EXPO_TEXT; format <= EXPO_OPENMETRICS; format++) {
		for (size_t at = 1; at <= 100000; at *= 10) {
			struct gzipper g;
			struct gzip_stream st;
			const struct expo_sink sink = { gzip_stream_take, &st, at };
			struct strbuf plain, z;
			struct expo e;
			size_t got = 0;
			char *back;

			gzipper_init(&g, 2);
			sb_init(&plain);
			sb_init(&z);
			expo_begin(&e, (enum expo_format)format, &plain, 1.5e9);
			e.om_created = true;
			render_families(&e);
			if (expo_end(&e))
				fail_msg("plain render failed");
			if (!gzip_stream_begin(&st, &g, &z))
				fail_msg("gzip_stream_begin refused an idle gzipper");
			expo_begin(&e, (enum expo_format)format, st.body, 1.5e9);
			e.om_created = true;
			e.sink = &sink;
			render_families(&e);
			if (expo_end(&e))
				fail_msg("render into the sink failed");
			if (!gzip_stream_end(&st))
				fail_msg("format %d, cut at %zu: gzip_stream_end failed", format, at);
			back = gunzip(&z, plain.len, &got);
			if (format == EXPO_OPENMETRICS && !strstr(plain.buf, "t_ops_created{"))
				fail_msg("the OpenMetrics render has no _created lines to cut between");
			if (!back || got != plain.len || memcmp(back, plain.buf, plain.len))
				fail_msg("format %d, cut at %zu: the gzip does not read back as the "
					 "plain render (%zu of %zu bytes)", format, at, got, plain.len);
			free(back);
			sb_free(&plain);
			sb_free(&z);
			gzipper_free(&g);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(streamed),
		cmocka_unit_test(stream_edges),
		cmocka_unit_test(expo_sink_gzip),
		cmocka_unit_test(one_piece),
		cmocka_unit_test(pieces),
		cmocka_unit_test(while_another_runs),
		cmocka_unit_test(sizes_in_turn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

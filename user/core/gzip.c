// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * gzip of response bodies (core/gzip.h). A big body is cut into pieces
 * that threads deflate at once, each a raw deflate stream that ends on a
 * byte boundary (Z_SYNC_FLUSH; the last one Z_FINISH), so that the pieces
 * laid end to end are one deflate stream; their CRCs combine into the
 * member's (crc32_combine). Readers see one ordinary gzip member.
 */
#define _GNU_SOURCE
#include "core/gzip.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* One piece: its input, where its deflate goes, its CRC, how it went. */
struct piece {
	const char *in;
	size_t len;
	bool last;
	struct strbuf *out;
	z_stream *zs; /* the gzipper's, reset; NULL: one made and ended here */
	uLong crc;
	bool ok;
};

/* A raw deflate stream, level 1 (speed first); 0 or a zlib error. */
static int deflate_start(z_stream *zs)
{
	return deflateInit2(zs, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
}

/* Raw deflate of one piece, appended to p->out; ends on a byte boundary. */
static void *deflate_piece(void *arg)
{
	struct piece *p = arg;
	z_stream own = { 0 }, *z = p->zs ? p->zs : &own;
	int flush_end = p->last ? Z_FINISH : Z_SYNC_FLUSH;
	size_t left = p->len;
	int ret = Z_OK;

	p->crc = crc32_z(0, (const Bytef *)p->in, p->len);
	p->ok = false;
	if ((p->zs ? deflateReset(z) : deflate_start(z)) != Z_OK)
		return NULL;
	z->next_in = (Bytef *)p->in;
	for (;;) {
		uInt in_now = left < UINT_MAX ? (uInt)left : UINT_MAX;
		size_t room;

		if (!sb_reserve(p->out, 65536))
			break;
		room = p->out->cap - p->out->len - 1;
		z->next_out = (Bytef *)p->out->buf + p->out->len;
		z->avail_out = room < UINT_MAX ? (uInt)room : UINT_MAX;
		z->avail_in = in_now;
		ret = deflate(z, in_now == left ? flush_end : Z_NO_FLUSH);
		left -= in_now - z->avail_in;
		p->out->len = (size_t)(z->next_out - (Bytef *)p->out->buf);
		/* Z_FINISH is done at the stream's end; a sync flush when it left output room. */
		if (p->last ? ret == Z_STREAM_END : ret == Z_OK && !left && z->avail_out) {
			p->ok = true;
			break;
		}
		if (ret != Z_OK && ret != Z_BUF_ERROR)
			break;
	}
	if (!p->zs)
		deflateEnd(z);
	return NULL;
}

/* The gzipper's deflate state for piece i, made the first time; NULL if it cannot be. */
static z_stream *piece_stream(struct gzipper *g, unsigned i)
{
	if (!g->zs[i]) {
		g->zs[i] = calloc(1, sizeof(z_stream));
		if (g->zs[i] && deflate_start(g->zs[i]) != Z_OK) {
			free(g->zs[i]);
			g->zs[i] = NULL;
		}
	}
	return g->zs[i];
}

/* Ends piece i's kept deflate state, if it has one: made anew when next wanted. */
static void piece_stream_end(struct gzipper *g, unsigned i)
{
	if (!g->zs[i])
		return;
	deflateEnd(g->zs[i]);
	free(g->zs[i]);
	g->zs[i] = NULL;
}

void gzipper_init(struct gzipper *g, unsigned pieces)
{
	cpu_set_t cpus;

	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	for (unsigned i = 0; i < GZIP_MAX_PIECES; i++)
		sb_init(&g->part[i]);
	if (!pieces)
		pieces = sched_getaffinity(0, sizeof(cpus), &cpus) ? 1 : (unsigned)CPU_COUNT(&cpus);
	g->pieces = pieces < 1 ? 1 : pieces > GZIP_MAX_PIECES ? GZIP_MAX_PIECES : pieces;
}

void gzipper_free(struct gzipper *g)
{
	for (unsigned i = 0; i < GZIP_MAX_PIECES; i++) {
		sb_free(&g->part[i]);
		piece_stream_end(g, i);
	}
	pthread_mutex_destroy(&g->lock);
}

static void put_le32(struct strbuf *sb, uLong v)
{
	const char b[4] = { (char)(v & 0xff), (char)((v >> 8) & 0xff), (char)((v >> 16) & 0xff),
			    (char)((v >> 24) & 0xff) };

	sb_add(sb, b, sizeof(b));
}

/* Deflates the n pieces of p: piece 0 here, the others on threads of their own. */
static void deflate_pieces(struct piece *p, unsigned n)
{
	pthread_t tid[GZIP_MAX_PIECES];
	bool started[GZIP_MAX_PIECES] = { false };

	for (unsigned i = 1; i < n; i++)
		started[i] = !pthread_create(&tid[i], NULL, deflate_piece, &p[i]);
	deflate_piece(&p[0]);
	for (unsigned i = 1; i < n; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			deflate_piece(&p[i]);
	}
}

bool gzipper_run(struct gzipper *g, const char *in, size_t len, struct strbuf *out)
{
	/* Magic, deflate, no flags, no time, fastest (XFL 4), Unix. */
	static const char header[10] = { 0x1f, (char)0x8b, 8, 0, 0, 0, 0, 0, 4, 3 };
	struct piece p[GZIP_MAX_PIECES];
	unsigned n = (unsigned)(len / GZIP_PIECE_MIN);
	bool ok = true, locked;

	if (n > g->pieces)
		n = g->pieces;
	locked = !pthread_mutex_trylock(&g->lock);
	if (!locked || !n)
		n = 1;
	sb_add(out, header, sizeof(header));
	for (unsigned i = 0; i < n; i++) {
		size_t from = len / n * i, to = i + 1 == n ? len : len / n * (i + 1);

		p[i] = (struct piece){ .in = in + from, .len = to - from, .last = i + 1 == n,
				       .out = i ? &g->part[i] : out,
				       .zs = locked ? piece_stream(g, i) : NULL };
		if (i)
			sb_reset(&g->part[i]);
	}
	deflate_pieces(p, n);
	for (unsigned i = 0; i < n; i++) {
		/* Whatever state a failed deflate left goes. */
		if (!p[i].ok && p[i].zs)
			piece_stream_end(g, i);
		ok = ok && p[i].ok;
		if (i) {
			sb_add(out, g->part[i].buf, g->part[i].len);
			p[0].crc = crc32_combine(p[0].crc, p[i].crc, (z_off_t)p[i].len);
		}
	}
	if (locked)
		pthread_mutex_unlock(&g->lock);
	put_le32(out, p[0].crc);
	put_le32(out, (uLong)(len & 0xffffffffu));
	return ok && !out->oom;
}

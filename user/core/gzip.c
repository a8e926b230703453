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
#include <string.h>
#include <zlib.h>

/* One piece: its input, where its deflate goes, its CRC, how it went. */
struct piece {
	const char *in;
	size_t len;
	bool last;
	struct strbuf *out;
	uLong crc;
	bool ok;
};

/* Raw deflate of one piece, appended to p->out; ends on a byte boundary. */
static void *deflate_piece(void *arg)
{
	struct piece *p = arg;
	z_stream zs = { .next_in = (Bytef *)p->in };
	int flush_end = p->last ? Z_FINISH : Z_SYNC_FLUSH;
	size_t left = p->len;
	int ret = Z_OK;

	p->crc = crc32_z(0, (const Bytef *)p->in, p->len);
	p->ok = false;
	if (deflateInit2(&zs, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	for (;;) {
		uInt in_now = left < UINT_MAX ? (uInt)left : UINT_MAX;
		size_t room;

		if (!sb_reserve(p->out, 65536))
			break;
		room = p->out->cap - p->out->len - 1;
		zs.next_out = (Bytef *)p->out->buf + p->out->len;
		zs.avail_out = room < UINT_MAX ? (uInt)room : UINT_MAX;
		zs.avail_in = in_now;
		ret = deflate(&zs, in_now == left ? flush_end : Z_NO_FLUSH);
		left -= in_now - zs.avail_in;
		p->out->len = (size_t)(zs.next_out - (Bytef *)p->out->buf);
		/* Z_FINISH is done at the stream's end; a sync flush when it left output room. */
		if (p->last ? ret == Z_STREAM_END : ret == Z_OK && !left && zs.avail_out) {
			p->ok = true;
			break;
		}
		if (ret != Z_OK && ret != Z_BUF_ERROR)
			break;
	}
	deflateEnd(&zs);
	return NULL;
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
	for (unsigned i = 0; i < GZIP_MAX_PIECES; i++)
		sb_free(&g->part[i]);
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
	locked = n > 1 && !pthread_mutex_trylock(&g->lock);
	if (!locked)
		n = 1;
	sb_add(out, header, sizeof(header));
	for (unsigned i = 0; i < n; i++) {
		size_t from = len / n * i, to = i + 1 == n ? len : len / n * (i + 1);

		p[i] = (struct piece){ .in = in + from, .len = to - from, .last = i + 1 == n,
				       .out = i ? &g->part[i] : out };
		if (i)
			sb_reset(&g->part[i]);
	}
	deflate_pieces(p, n);
	for (unsigned i = 0; i < n; i++) {
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

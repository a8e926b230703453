// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * gzip of response bodies (core/gzip.h), deflated by ISA-L's igzip at
 * its level 1 (some five times zlib's level 1 on /metrics text, and
 * smaller). A big body is cut into pieces that threads deflate at once,
 * each a raw deflate stream that ends on a byte boundary (a sync flush;
 * the last one with the final block), so that the pieces laid end to end
 * are one deflate stream; their CRCs combine into the member's (zlib's
 * crc32_combine). Readers see one ordinary gzip member.
 *
 * A body being rendered is deflated the same way, in segments handed over
 * while the rest is written (gzip_stream_*): a ring of slots between the
 * renderer and one thread per CPU, the deflates added in order.
 */
#define _GNU_SOURCE
#include "core/gzip.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <zlib.h>

/* A deflate state of ISA-L's level 1, with the memory that level needs. */
struct deflater {
	struct isal_zstream z;
	uint8_t level_buf[ISAL_DEF_LVL1_DEFAULT];
};

/* One piece: its input, where its deflate goes, its CRC, how it went. */
struct piece {
	const char *in;
	size_t len;
	bool last;
	struct strbuf *out;
	struct deflater *df; /* the gzipper's; NULL: one made and freed here */
	uLong crc;
	bool ok;
};

/*
 * A segment of a streamed body: the rendered bytes handed over (the slot
 * keeps the buffer from one gzip to the next) and their deflate.
 */
struct gzip_slot {
	struct strbuf in;
	struct strbuf out;
	struct piece p;
	bool done;
};

/* A slot's input buffer grown past this (a big body's) is given back, not kept. */
#define SLOT_KEEP (4 * GZIP_SEGMENT)

/* A raw deflate stream, level 1 (speed first), from its start. */
static void deflater_reset(struct deflater *df)
{
	isal_deflate_init(&df->z);
	df->z.level = 1;
	df->z.level_buf = df->level_buf;
	df->z.level_buf_size = sizeof(df->level_buf);
	df->z.gzip_flag = IGZIP_DEFLATE;
}

/*
 * Raw deflate of one piece, appended to p->out; ends on a byte boundary
 * (a sync flush), the last piece with the final block.
 */
static void *deflate_piece(void *arg)
{
	struct piece *p = arg;
	struct deflater *df = p->df ? p->df : malloc(sizeof(*df));
	struct isal_zstream *z = &df->z;
	size_t left = p->len;

	p->ok = false;
	if (!df)
		return NULL;
	p->crc = crc32_gzip_refl(0, (const unsigned char *)p->in, p->len);
	deflater_reset(df);
	z->next_in = (uint8_t *)p->in;
	for (;;) {
		uint32_t in_now = left < UINT32_MAX ? (uint32_t)left : UINT32_MAX;
		size_t room;

		if (!sb_reserve(p->out, 65536))
			break;
		room = p->out->cap - p->out->len - 1;
		z->next_out = (uint8_t *)p->out->buf + p->out->len;
		z->avail_out = room < UINT32_MAX ? (uint32_t)room : UINT32_MAX;
		z->avail_in = in_now;
		/* The end or the flush only once the piece's last input is in. */
		z->end_of_stream = p->last && in_now == left;
		z->flush = !p->last && in_now == left ? SYNC_FLUSH : NO_FLUSH;
		if (isal_deflate(z) != COMP_OK)
			break;
		left -= in_now - z->avail_in;
		p->out->len = (size_t)(z->next_out - (uint8_t *)p->out->buf);
		/* The last piece is done at the final block; a flush when it left output room. */
		if (p->last ? z->internal_state.state == ZSTATE_END : !left && z->avail_out) {
			p->ok = true;
			break;
		}
	}
	if (!p->df)
		free(df);
	return NULL;
}

/* The gzipper's deflate state for piece i, made the first time; NULL if it cannot be. */
static struct deflater *piece_stream(struct gzipper *g, unsigned i)
{
	if (!g->df[i])
		g->df[i] = malloc(sizeof(*g->df[i]));
	return g->df[i];
}

/* Frees piece i's kept deflate state, if it has one: made anew when next wanted. */
static void piece_stream_end(struct gzipper *g, unsigned i)
{
	free(g->df[i]);
	g->df[i] = NULL;
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
	sb_free(&g->body);
	for (unsigned i = 0; g->slot && i < GZIP_RING; i++) {
		sb_free(&g->slot[i].in);
		sb_free(&g->slot[i].out);
	}
	free(g->slot);
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

/* Magic, deflate, no flags, no time, fastest (XFL 4), Unix. */
static const char gzip_header[10] = { 0x1f, (char)0x8b, 8, 0, 0, 0, 0, 0, 4, 3 };

/* The gzip trailer: the CRC and length (mod 2^32) of what was deflated. */
static void put_trailer(struct strbuf *out, uLong crc, size_t len)
{
	put_le32(out, crc);
	put_le32(out, (uLong)(len & 0xffffffffu));
}

/* gzipper_run's work; `locked`: the gzipper's parts and states are this gzip's. */
static bool gzip_whole(struct gzipper *g, bool locked, const char *in, size_t len,
		       struct strbuf *out)
{
	struct piece p[GZIP_MAX_PIECES];
	unsigned n = (unsigned)(len / GZIP_PIECE_MIN);
	bool ok = true;

	if (n > g->pieces)
		n = g->pieces;
	if (!locked || !n)
		n = 1;
	sb_add(out, gzip_header, sizeof(gzip_header));
	for (unsigned i = 0; i < n; i++) {
		size_t from = len / n * i, to = i + 1 == n ? len : len / n * (i + 1);

		p[i] = (struct piece){ .in = in + from, .len = to - from, .last = i + 1 == n,
				       .out = i ? &g->part[i] : out,
				       .df = locked ? piece_stream(g, i) : NULL };
		if (i)
			sb_reset(&g->part[i]);
	}
	deflate_pieces(p, n);
	for (unsigned i = 0; i < n; i++) {
		/* Whatever state a failed deflate left goes. */
		if (!p[i].ok && p[i].df)
			piece_stream_end(g, i);
		ok = ok && p[i].ok;
		if (i) {
			sb_add(out, g->part[i].buf, g->part[i].len);
			p[0].crc = crc32_combine(p[0].crc, p[i].crc, (z_off_t)p[i].len);
		}
	}
	put_trailer(out, p[0].crc, len);
	return ok && !out->oom;
}

bool gzipper_run(struct gzipper *g, const char *in, size_t len, struct strbuf *out)
{
	bool locked = !pthread_mutex_trylock(&g->lock), ok;

	ok = gzip_whole(g, locked, in, len, out);
	if (locked)
		pthread_mutex_unlock(&g->lock);
	return ok;
}

bool gzip_stream_begin(struct gzip_stream *st, struct gzipper *g, struct strbuf *out)
{
	memset(st, 0, sizeof(*st));
	if (pthread_mutex_trylock(&g->lock))
		return false;
	if (!g->slot) {
		g->slot = calloc(GZIP_RING, sizeof(*g->slot));
		if (!g->slot) {
			pthread_mutex_unlock(&g->lock);
			return false;
		}
	}
	st->g = g;
	st->out = out;
	st->body = &g->body;
	sb_reset(st->body);
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->work, NULL);
	pthread_cond_init(&st->done, NULL);
	return true;
}

/* Adds the deflated segments, in order, up to the first not yet done. Under st->lock. */
static void emit_done(struct gzip_stream *st)
{
	while (st->emitted < st->queued) {
		struct gzip_slot *s = &st->g->slot[st->emitted % GZIP_RING];

		if (!s->done)
			break;
		st->failed = st->failed || !s->p.ok;
		sb_add(st->out, s->out.buf, s->out.len);
		st->crc = crc32_combine(st->crc, s->p.crc, (z_off_t)s->p.len);
		st->total += s->p.len;
		st->emitted++;
	}
}

/*
 * Deflates the segments handed over, with deflate state i; `wait`: and
 * those handed over later, until the stream ends (a worker thread).
 */
static void stream_work(struct gzip_stream *st, unsigned i, bool wait)
{
	struct gzipper *g = st->g;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		struct gzip_slot *s;

		while (wait && st->taken == st->queued && !st->closing)
			pthread_cond_wait(&st->work, &st->lock);
		if (st->taken == st->queued)
			break;
		s = &g->slot[st->taken++ % GZIP_RING];
		pthread_mutex_unlock(&st->lock);
		s->p.df = piece_stream(g, i);
		deflate_piece(&s->p);
		if (!s->p.ok && s->p.df)
			piece_stream_end(g, i);
		if (s->in.cap > SLOT_KEEP)
			sb_free(&s->in);
		pthread_mutex_lock(&st->lock);
		s->done = true;
		pthread_cond_broadcast(&st->done);
	}
	pthread_mutex_unlock(&st->lock);
}

static void *stream_worker(void *arg)
{
	struct gzip_worker *w = arg;

	stream_work(w->st, w->i, true);
	return NULL;
}

/* Hands body over into the next slot (waiting for one); body gets the slot's old buffer. */
static void stream_queue(struct gzip_stream *st, struct strbuf *body, bool last)
{
	struct gzip_slot *s;
	struct strbuf old;

	pthread_mutex_lock(&st->lock);
	emit_done(st);
	while (st->queued - st->emitted == GZIP_RING) {
		pthread_cond_wait(&st->done, &st->lock);
		emit_done(st);
	}
	s = &st->g->slot[st->queued % GZIP_RING];
	old = s->in;
	s->in = *body;
	*body = old;
	sb_reset(body);
	st->failed = st->failed || s->in.oom;
	sb_reset(&s->out);
	s->p = (struct piece){ .in = s->in.buf, .len = s->in.len, .last = last, .out = &s->out };
	s->done = false;
	st->queued++;
	pthread_cond_signal(&st->work);
	pthread_mutex_unlock(&st->lock);
	if (!st->nr_workers)
		stream_work(st, 0, false);
}

void gzip_stream_take(void *arg, struct strbuf *body)
{
	struct gzip_stream *st = arg;

	if (!st->cut) {
		st->cut = true;
		sb_add(st->out, gzip_header, sizeof(gzip_header));
		for (unsigned i = 0; i < st->g->pieces; i++) {
			struct gzip_worker *w = &st->worker[st->nr_workers];

			*w = (struct gzip_worker){ .st = st, .i = st->nr_workers };
			if (!pthread_create(&w->tid, NULL, stream_worker, w))
				st->nr_workers++;
		}
	}
	stream_queue(st, body, false);
}

bool gzip_stream_end(struct gzip_stream *st)
{
	struct gzipper *g = st->g;
	struct strbuf *tail = st->body;
	bool ok;

	if (!st->cut) {
		/* Never cut: the body is all here, deflated in pieces as gzipper_run does. */
		ok = gzip_whole(g, true, tail->buf, tail->len, st->out) && !tail->oom;
		sb_reset(tail);
	} else {
		stream_queue(st, tail, true);
		pthread_mutex_lock(&st->lock);
		st->closing = true;
		pthread_cond_broadcast(&st->work);
		for (emit_done(st); st->emitted < st->queued; emit_done(st))
			pthread_cond_wait(&st->done, &st->lock);
		pthread_mutex_unlock(&st->lock);
		for (unsigned i = 0; i < st->nr_workers; i++)
			pthread_join(st->worker[i].tid, NULL);
		put_trailer(st->out, st->crc, st->total);
		ok = !st->failed && !st->out->oom;
	}
	pthread_cond_destroy(&st->done);
	pthread_cond_destroy(&st->work);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_unlock(&g->lock);
	return ok;
}

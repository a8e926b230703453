/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * gzip of response bodies (ISA-L's igzip): one gzip member, deflated in
 * pieces on several CPUs at once when the body is big, as pigz does.
 */
#ifndef VMPROBE_CORE_GZIP_H
#define VMPROBE_CORE_GZIP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"

/* At most this many pieces, each of at least GZIP_PIECE_MIN bytes. */
#define GZIP_MAX_PIECES 4
#define GZIP_PIECE_MIN (512 * 1024)
/*
 * A gzip made while its body is rendered (gzip_stream_*): the renderer
 * hands the body over in segments of about GZIP_SEGMENT bytes, at most
 * GZIP_RING of them handed over and not yet added to the gzip.
 */
#define GZIP_SEGMENT (2 * 1024 * 1024)
#define GZIP_RING 8
/*
 * Handed over once this much is written (struct expo_sink's at): the
 * sample that follows fits, and a buffer (4 KiB, doubled as it grows)
 * stays at GZIP_SEGMENT.
 */
#define GZIP_CUT_AT (GZIP_SEGMENT - GZIP_SEGMENT / 16)

struct deflater;
struct gzip_slot;

struct gzipper {
	pthread_mutex_t lock;			/* the parts and streams: one gzip at a time */
	struct strbuf part[GZIP_MAX_PIECES];	/* pieces 1.., kept from one gzip to the next */
	/* Each piece's deflate state (some 300 KiB), reset rather than made anew each time. */
	struct deflater *df[GZIP_MAX_PIECES];
	unsigned pieces;			/* the most pieces, 1..GZIP_MAX_PIECES */
	struct gzip_slot *slot;			/* GZIP_RING of them, made at the first stream */
	struct strbuf body;			/* what a stream's renderer writes into */
};

/* `pieces` 0: one per CPU this process may run on (at most GZIP_MAX_PIECES). */
void gzipper_init(struct gzipper *g, unsigned pieces);
void gzipper_free(struct gzipper *g);
/*
 * Appends the gzip of in[0, len) to *out (level 1: speed first). A body
 * too small to split is deflated in one piece here, and a gzip while
 * another runs in one piece with a deflate state of its own. False on
 * out of memory or a deflate error (*out is then to be dropped).
 */
bool gzipper_run(struct gzipper *g, const char *in, size_t len, struct strbuf *out);

/*
 * A gzip made while the body is rendered: the renderer hands each segment
 * over as soon as it is written (gzip_stream_take), and threads deflate
 * the segments while it writes the next ones, one per CPU, as gzipper_run
 * does for the pieces of a finished body. Segments are deflated as pieces
 * are; the gzip reads as one member.
 */
struct gzip_stream;
struct gzip_worker {
	struct gzip_stream *st;
	unsigned i; /* its deflate state: the gzipper's df[i] */
	pthread_t tid;
};
struct gzip_stream {
	struct gzipper *g;
	struct strbuf *out;	/* the gzip, appended to */
	/*
	 * Where the body is to be rendered (the gzipper's): segments handed
	 * over swap their buffer for one of a slot's, so that no buffer is
	 * made or freed from one stream to the next.
	 */
	struct strbuf *body;
	pthread_mutex_t lock;	/* the counts below and the slots' done */
	pthread_cond_t work;	/* a segment handed over, or the end */
	pthread_cond_t done;	/* a segment deflated */
	size_t queued, taken, emitted; /* segments handed over, being deflated, added to out */
	bool closing, failed;
	bool cut;		/* a segment was handed over */
	unsigned nr_workers;	/* threads started; 0 (none could be): the renderer deflates */
	struct gzip_worker worker[GZIP_MAX_PIECES];
	unsigned long crc;	/* of the bytes added to out */
	size_t total;		/* their length */
};

/*
 * Starts a gzip, appended to *out, of a body to be rendered into
 * st->body. False if the gzipper is busy with another (then render
 * elsewhere, and use gzipper_run).
 */
bool gzip_stream_begin(struct gzip_stream *st, struct gzipper *g, struct strbuf *out);
/*
 * Hands the bytes of st->body over (the renderer's `struct expo_sink`
 * take, `body` being st->body): it is left empty to write on into.
 */
void gzip_stream_take(void *st, struct strbuf *body);
/*
 * The rest of st->body; waits for the deflates and ends the gzip. False
 * on out of memory (in the body too) or a deflate error: *out is then to
 * be dropped. Always to be called after a begin that returned true.
 */
bool gzip_stream_end(struct gzip_stream *st);

#endif

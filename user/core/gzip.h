/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * gzip of response bodies (zlib): one gzip member, deflated in pieces on
 * several CPUs at once when the body is big, as pigz does.
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

struct z_stream_s;

struct gzipper {
	pthread_mutex_t lock;			/* the parts and streams: one gzip at a time */
	struct strbuf part[GZIP_MAX_PIECES];	/* pieces 1.., kept from one gzip to the next */
	/* Each piece's deflate state (some 300 KiB), reset rather than made anew each time. */
	struct z_stream_s *zs[GZIP_MAX_PIECES];
	unsigned pieces;			/* the most pieces, 1..GZIP_MAX_PIECES */
};

/* `pieces` 0: one per CPU this process may run on (at most GZIP_MAX_PIECES). */
void gzipper_init(struct gzipper *g, unsigned pieces);
void gzipper_free(struct gzipper *g);
/*
 * Appends the gzip of in[0, len) to *out (level 1: speed first). A body
 * too small to split is deflated in one piece here, and a gzip while
 * another runs in one piece with a deflate state of its own. False on
 * out of memory or a zlib error (*out is then to be dropped).
 */
bool gzipper_run(struct gzipper *g, const char *in, size_t len, struct strbuf *out);

#endif

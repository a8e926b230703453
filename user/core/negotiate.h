/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * HTTP content negotiation (RFC 9110 §12.5): which of the representations
 * the server offers a request's Accept or Accept-Encoding header prefers.
 * Pure parsing, no I/O.
 */
#ifndef VMPROBE_NEGOTIATE_H
#define VMPROBE_NEGOTIATE_H

#include <stddef.h>

/*
 * The offer Accept prefers among `offers`, each a media type with its
 * parameters ("text/plain; version=0.0.4"), in the server's order of
 * preference. A media range matches an offer when its type (or type/STAR,
 * or STAR/STAR, STAR being '*') and every parameter it names (q aside,
 * and escaping, which every offer meets) match; of the ranges
 * matching an offer, the most specific gives its weight (q, 0..1, three
 * decimals). The offer with the highest non-zero weight wins; ties go to
 * the earlier offer. NULL or empty header: 0 (the first offer). -1 when
 * the header accepts no offer (q=0 or no match).
 */
int negotiate_accept(const char *header, const char *const *offers, size_t nr);

/*
 * Whether to answer in `coding` ("gzip") rather than identity, per
 * Accept-Encoding: its weight (exact or `*`) must be above 0 and at least
 * identity's (identity is acceptable unless refused, by `identity;q=0` or
 * by `*;q=0` without identity named). No header: identity.
 */
int negotiate_encoding(const char *header, const char *coding);

#endif

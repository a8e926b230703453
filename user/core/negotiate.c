// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* HTTP content negotiation: Accept and Accept-Encoding (RFC 9110 §12.5). */
#include "core/negotiate.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

#define MAX_PARAMS 8
#define TOKEN_MAX 96

/* One element of a list header: "type/sub;p=v;q=0.5" or "gzip;q=0". */
struct element {
	char type[TOKEN_MAX]; /* the media type or coding */
	char sub[TOKEN_MAX];  /* the media subtype ("" for a coding) */
	struct {
		char name[32];
		char value[TOKEN_MAX];
	} params[MAX_PARAMS]; /* media type parameters (before q) */
	int nr_params;
	int q; /* 0..1000 */
};

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A token or quoted string into out (cut to size), up to one of `stop`. */
static const char *word(const char *p, char *out, size_t size, const char *stop)
{
	size_t n = 0;
	bool quoted = *p == '"';

	if (quoted)
		p++;
	while (*p && (quoted ? *p != '"' : !strchr(stop, *p) && *p != ' ' && *p != '\t')) {
		if (quoted && *p == '\\' && p[1])
			p++;
		if (n + 1 < size)
			out[n++] = *p;
		p++;
	}
	if (quoted && *p == '"')
		p++;
	out[n] = '\0';
	return p;
}

/* weight = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ); -1 if not one. */
static int parse_q(const char *s)
{
	int q, scale = 100;

	if (s[0] != '0' && s[0] != '1')
		return -1;
	q = (s[0] - '0') * 1000;
	s++;
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s) && scale; s++, scale /= 10)
			q += (*s - '0') * scale;
	}
	return *s || q > 1000 ? -1 : q;
}

/*
 * Parses the element at p (up to the next top-level comma) into e; returns
 * where the next one starts. e->type is "" when the element is malformed
 * (then ignored).
 */
static const char *parse_element(const char *p, struct element *e, bool media)
{
	bool after_q = false;

	memset(e, 0, sizeof(*e));
	e->q = 1000;
	p = word(skip_ws(p), e->type, sizeof(e->type), media ? "/,;" : ",;");
	if (media) {
		if (*p == '/')
			p = word(p + 1, e->sub, sizeof(e->sub), ",;");
		if (!e->sub[0])
			e->type[0] = '\0';
	}
	for (p = skip_ws(p); *p == ';'; p = skip_ws(p)) {
		char name[32], value[TOKEN_MAX] = "";

		p = word(skip_ws(p + 1), name, sizeof(name), "=,;");
		p = skip_ws(p);
		if (*p == '=')
			p = word(skip_ws(p + 1), value, sizeof(value), ",;");
		if (!strcasecmp(name, "q")) {
			e->q = parse_q(value);
			if (e->q < 0)
				e->type[0] = '\0';
			after_q = true; /* what follows is accept-ext, not the type's */
		} else if (!after_q && e->nr_params < MAX_PARAMS && name[0]) {
			str_copy(e->params[e->nr_params].name, sizeof(e->params[0].name), name);
			str_copy(e->params[e->nr_params].value, sizeof(e->params[0].value), value);
			e->nr_params++;
		}
	}
	/* Anything else up to the comma is junk: the element is malformed. */
	if (*p && *p != ',') {
		e->type[0] = '\0';
		while (*p && *p != ',')
			p++;
	}
	return *p == ',' ? p + 1 : p;
}

static bool has_param(const struct element *offer, const char *name, const char *value)
{
	for (int i = 0; i < offer->nr_params; i++)
		if (!strcasecmp(offer->params[i].name, name) &&
		    !strcasecmp(offer->params[i].value, value))
			return true;
	return false;
}

/*
 * Range parameters every offer satisfies: escaping (Prometheus 3 adds
 * escaping=allow-utf-8 or another scheme to what it asks for) says how
 * names outside [a-zA-Z0-9_:] are to be written, and every name vmprobe
 * writes is within that set, so it reads the same under each scheme.
 */
static bool any_offer_has(const char *name)
{
	return !strcasecmp(name, "escaping");
}

/* How specifically `range` names `offer`: -1 no match, higher more specific. */
static int specificity(const struct element *range, const struct element *offer)
{
	bool any_type = !strcmp(range->type, "*"), any_sub = !strcmp(range->sub, "*");

	if (any_type && !any_sub)
		return -1; /* "* /plain" is no media range */
	if (!any_type && strcasecmp(range->type, offer->type))
		return -1;
	if (!any_sub && strcasecmp(range->sub, offer->sub))
		return -1;
	for (int i = 0; i < range->nr_params; i++)
		if (!any_offer_has(range->params[i].name) &&
		    !has_param(offer, range->params[i].name, range->params[i].value))
			return -1;
	return (any_type ? 0 : 1000) + (any_sub ? 0 : 100) + range->nr_params;
}

int negotiate_accept(const char *header, const char *const *offers, size_t nr)
{
	int best = -1, best_q = 0;

	if (!header || !*skip_ws(header))
		return 0;
	for (size_t i = 0; i < nr; i++) {
		struct element offer, range;
		int spec = -1, q = 0;

		parse_element(offers[i], &offer, true);
		for (const char *p = header; *p;) {
			int s;

			p = parse_element(p, &range, true);
			if (!range.type[0])
				continue;
			s = specificity(&range, &offer);
			if (s > spec)
				spec = s, q = range.q;
		}
		if (q > best_q)
			best = (int)i, best_q = q;
	}
	return best;
}

/* The weight the header gives `coding`: exact, else `*`; -1 if neither is named. */
static int coding_q(const char *header, const char *coding)
{
	int exact = -1, star = -1;

	for (const char *p = header; *p;) {
		struct element e;

		p = parse_element(p, &e, false);
		if (!e.type[0])
			continue;
		if (!strcasecmp(e.type, coding))
			exact = e.q;
		else if (!strcmp(e.type, "*"))
			star = e.q;
	}
	return exact >= 0 ? exact : star;
}

int negotiate_encoding(const char *header, const char *coding)
{
	int q, identity;

	if (!header)
		return 0;
	q = coding_q(header, coding);
	identity = coding_q(header, "identity");
	/* Not named: acceptable, ranked below every coding the client names. */
	if (identity < 0)
		identity = 1;
	return q > 0 && q >= identity;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Basic authentication: bcrypt (libxcrypt), and a cache of what passed. */
#include "core/auth.h"

#include <crypt.h>
#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SIZE 16
#define DIGEST 32 /* SHA-256 */

/* Compared in full whatever differs, so that timing says nothing. */
static bool same(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return !d;
}

static bool bcrypt_ok(const char *password, const char *hash)
{
	static struct crypt_data data; /* 32 KiB: not on the stack */
	const char *out;

	memset(&data, 0, sizeof(data));
	out = crypt_r(password, hash, &data);
	return out && out[0] != '*' && strlen(out) == strlen(hash) && same(out, hash, strlen(hash));
}

/* Digests of credentials tried: a ring of the last CACHE_SIZE. */
struct seen {
	unsigned char key[CACHE_SIZE][DIGEST];
	unsigned n;    /* slots in use */
	unsigned next; /* the slot the next one takes */
};

static bool seen_has(const struct seen *c, const unsigned char *key)
{
	bool hit = false;

	for (unsigned i = 0; i < c->n; i++)
		hit |= same(c->key[i], key, DIGEST);
	return hit;
}

static void seen_add(struct seen *c, const unsigned char *key)
{
	memcpy(c->key[c->next], key, DIGEST);
	c->next = (c->next + 1) % CACHE_SIZE;
	if (c->n < CACHE_SIZE)
		c->n++;
}

/*
 * user NUL hash NUL password, hashed: a changed hash (a new file) misses
 * the caches; an unknown user's "hash" is empty. 0 or -1 (no memory).
 */
static int cache_key(const char *user, const char *hash, const char *password,
		     unsigned char *key)
{
	size_t ul = strlen(user), hl = strlen(hash), pl = strlen(password);
	char *both = malloc(ul + hl + pl + 3);

	if (!both)
		return -1;
	memcpy(both, user, ul + 1);
	memcpy(both + ul + 1, hash, hl + 1);
	memcpy(both + ul + hl + 2, password, pl + 1);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, both, ul + hl + pl + 3, key);
	memset(both, 0, ul + hl + pl + 3);
	free(both);
	return 0;
}

/*
 * Credentials that passed, and apart (so that failures never push them
 * out) those that failed, are remembered: neither Prometheus' scrapes nor
 * a client repeating a wrong password pay bcrypt each time (one thread
 * serves every request, and bcrypt takes it for tens of milliseconds).
 */
bool auth_check(const struct web_config *wc, const char *user, const char *password)
{
	static struct seen passed, failed;
	const struct web_pair *u = NULL;
	unsigned char key[DIGEST];
	bool ok;

	for (size_t i = 0; i < wc->nr_users; i++)
		if (!strcmp(wc->users[i].name, user))
			u = &wc->users[i];
	if (cache_key(user, u ? u->value : "", password, key))
		return false;
	if (seen_has(&passed, key))
		return true;
	if (seen_has(&failed, key))
		return false;
	if (u) {
		ok = bcrypt_ok(password, u->value);
	} else {
		/*
		 * A known user's hash, of the cost the file gives: an unknown
		 * user takes as long as a wrong password (and always fails), so
		 * the time of a 401 does not tell which users exist.
		 */
		if (wc->nr_users)
			bcrypt_ok(password, wc->users[0].value);
		ok = false;
	}
	seen_add(ok ? &passed : &failed, key);
	return ok;
}

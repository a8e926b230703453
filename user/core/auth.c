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

bool auth_check(const struct web_config *wc, const char *user, const char *password)
{
	static unsigned char cache[CACHE_SIZE][DIGEST];
	static unsigned next;
	const struct web_pair *u = NULL;
	unsigned char key[DIGEST];
	size_t ul = strlen(user), pl = strlen(password);
	char *both;

	for (size_t i = 0; i < wc->nr_users; i++)
		if (!strcmp(wc->users[i].name, user))
			u = &wc->users[i];
	if (!u) {
		/*
		 * A known user's hash, of the cost the file gives: an unknown
		 * user takes as long as a wrong password (and always fails), so
		 * the time of a 401 does not tell which users exist.
		 */
		if (wc->nr_users)
			bcrypt_ok(password, wc->users[0].value);
		return false;
	}
	/* user NUL hash NUL password: a changed hash (a new file) misses the cache. */
	both = malloc(ul + strlen(u->value) + pl + 3);
	if (!both)
		return false;
	memcpy(both, user, ul + 1);
	memcpy(both + ul + 1, u->value, strlen(u->value) + 1);
	memcpy(both + ul + strlen(u->value) + 2, password, pl + 1);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, both, ul + strlen(u->value) + pl + 3, key);
	memset(both, 0, ul + strlen(u->value) + pl + 3);
	free(both);
	for (unsigned i = 0; i < CACHE_SIZE; i++)
		if (same(cache[i], key, DIGEST))
			return true;
	if (!bcrypt_ok(password, u->value))
		return false;
	memcpy(cache[next++ % CACHE_SIZE], key, DIGEST);
	return true;
}

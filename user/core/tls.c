// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* TLS credentials of the HTTP server, re-read when their files change. */
#include "core/tls.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define MAX_CHAIN 16

/*
 * One certificate chain and its key. A reload makes a new one; the old
 * ones stay until tls_fini(), since a handshake under way may still use
 * them (rotations are rare: a few KiB each).
 */
struct creds {
	gnutls_pcert_st chain[MAX_CHAIN];
	unsigned nr;
	gnutls_privkey_t key;
	struct creds *older;
};

static struct {
	pthread_mutex_t lock;
	const struct web_config *wc;
	struct creds *creds;
	gnutls_x509_trust_list_t trust; /* client_ca_file's, for checking clients */
	struct file_stamp cert, key, ca;
	char *request_pem;
	double next_check;
} T = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void creds_free(struct creds *c)
{
	for (unsigned i = 0; i < c->nr; i++)
		gnutls_pcert_deinit(&c->chain[i]);
	gnutls_privkey_deinit(c->key);
	free(c);
}

/* Whether the key is the one the chain's first certificate is for. */
static bool key_matches(struct creds *c)
{
	gnutls_pubkey_t pub;
	gnutls_datum_t a = {}, b = {};
	bool same = false;

	if (gnutls_pubkey_init(&pub))
		return false;
	if (!gnutls_pubkey_import_privkey(pub, c->key, 0, 0) &&
	    !gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &a) &&
	    !gnutls_pubkey_export2(c->chain[0].pubkey, GNUTLS_X509_FMT_DER, &b))
		same = a.size == b.size && !memcmp(a.data, b.data, a.size);
	gnutls_free(a.data);
	gnutls_free(b.data);
	gnutls_pubkey_deinit(pub);
	return same;
}

/* Reads cert_file and key_file; NULL after logging why. */
static struct creds *creds_load(const struct web_config *wc)
{
	struct creds *c = calloc(1, sizeof(*c));
	gnutls_datum_t cert = {}, key = {};
	int err;

	if (!c)
		return NULL;
	c->nr = MAX_CHAIN;
	err = gnutls_load_file(wc->cert_file, &cert);
	if (!err)
		err = gnutls_pcert_list_import_x509_raw(c->chain, &c->nr, &cert,
							GNUTLS_X509_FMT_PEM, 0);
	if (err || !c->nr) {
		log_error("%s: no PEM certificate chain (%s)", wc->cert_file, gnutls_strerror(err));
		c->nr = 0;
		goto fail;
	}
	err = gnutls_load_file(wc->key_file, &key);
	if (!err)
		err = gnutls_privkey_init(&c->key);
	if (!err)
		err = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (err) {
		log_error("%s: no PEM private key (%s)", wc->key_file, gnutls_strerror(err));
		goto fail;
	}
	if (!key_matches(c)) {
		log_error("%s is not the key of %s's certificate", wc->key_file, wc->cert_file);
		goto fail;
	}
	gnutls_free(cert.data);
	gnutls_free(key.data);
	return c;
fail:
	gnutls_free(cert.data);
	gnutls_free(key.data);
	creds_free(c);
	return NULL;
}

static gnutls_x509_trust_list_t trust_load(const char *path)
{
	gnutls_x509_trust_list_t tl;

	if (gnutls_x509_trust_list_init(&tl, 0))
		return NULL;
	if (gnutls_x509_trust_list_add_trust_file(tl, path, NULL, GNUTLS_X509_FMT_PEM, 0, 0) <= 0) {
		log_error("%s: no PEM CA certificate", path);
		gnutls_x509_trust_list_deinit(tl, 1);
		return NULL;
	}
	return tl;
}

/* Re-reads what changed on disk, at most once a second. Under T.lock. */
static void maybe_reload(void)
{
	const struct web_config *wc = T.wc;
	struct file_stamp cert, key, ca;
	double now = now_seconds();

	if (now < T.next_check)
		return;
	T.next_check = now + 1;
	if (!file_stamp_of(wc->cert_file, &cert) && !file_stamp_of(wc->key_file, &key) &&
	    (!file_stamp_eq(&cert, &T.cert) || !file_stamp_eq(&key, &T.key))) {
		struct creds *c = creds_load(wc);

		/* A bad pair is said once, until the files change again. */
		T.cert = cert, T.key = key;
		if (c) {
			c->older = T.creds;
			T.creds = c;
			log_info("TLS: %s and %s re-read", wc->cert_file, wc->key_file);
		} else {
			log_error("TLS: keeping the certificate read before");
		}
	}
	if (wc->client_ca_file && !file_stamp_of(wc->client_ca_file, &ca) &&
	    !file_stamp_eq(&ca, &T.ca)) {
		gnutls_x509_trust_list_t tl = trust_load(wc->client_ca_file);

		T.ca = ca;
		if (tl) {
			/* Only this thread verifies clients: the old list can go. */
			if (T.trust)
				gnutls_x509_trust_list_deinit(T.trust, 1);
			T.trust = tl;
			log_info("TLS: %s re-read", wc->client_ca_file);
		} else {
			log_error("TLS: keeping the client CAs read before");
		}
	}
}

int tls_init(const struct web_config *wc)
{
	gnutls_datum_t pem = {};
	const char *src;

	T.wc = wc;
	file_stamp_of(wc->cert_file, &T.cert);
	file_stamp_of(wc->key_file, &T.key);
	T.creds = creds_load(wc);
	if (!T.creds)
		return -EINVAL;
	if (wc->client_ca_file) {
		file_stamp_of(wc->client_ca_file, &T.ca);
		T.trust = trust_load(wc->client_ca_file);
		if (!T.trust)
			return -EINVAL;
	}
	T.next_check = now_seconds() + 1;
	if (wc->client_auth == CLIENT_AUTH_NONE)
		return 0;
	src = wc->client_ca_file ? wc->client_ca_file : wc->cert_file;
	if (gnutls_load_file(src, &pem))
		return -EINVAL;
	T.request_pem = strndup((const char *)pem.data, pem.size);
	gnutls_free(pem.data);
	return T.request_pem ? 0 : -ENOMEM;
}

void tls_fini(void)
{
	while (T.creds) {
		struct creds *older = T.creds->older;

		creds_free(T.creds);
		T.creds = older;
	}
	if (T.trust)
		gnutls_x509_trust_list_deinit(T.trust, 1);
	T.trust = NULL;
	free(T.request_pem);
	T.request_pem = NULL;
}

int tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nr_req,
		      const gnutls_pk_algorithm_t *pk_algos, int nr_algos, gnutls_pcert_st **pcert,
		      unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
	pthread_mutex_lock(&T.lock);
	maybe_reload();
	*pcert = T.creds->chain;
	*pcert_length = T.creds->nr;
	*privkey = T.creds->key;
	pthread_mutex_unlock(&T.lock);
	return 0;
}

const char *tls_request_trust(void)
{
	return T.request_pem;
}

/* NULL if the chain the client sent verifies against client_ca_file. Under T.lock. */
static const char *verify_client(const gnutls_datum_t *peers, unsigned nr)
{
	static char why[256];
	gnutls_x509_crt_t crts[MAX_CHAIN];
	gnutls_typed_vdata_st purpose = { .type = GNUTLS_DT_KEY_PURPOSE_OID,
					  .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT };
	unsigned n = 0, status = 0;
	gnutls_datum_t text = {};
	int err = 0;

	if (nr > MAX_CHAIN)
		nr = MAX_CHAIN;
	for (; n < nr && !err; n++) {
		err = gnutls_x509_crt_init(&crts[n]);
		if (err)
			break;
		err = gnutls_x509_crt_import(crts[n], &peers[n], GNUTLS_X509_FMT_DER);
	}
	if (!err)
		err = gnutls_x509_trust_list_verify_crt2(T.trust, crts, n, &purpose, 1, 0, &status,
							 NULL);
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	if (err) {
		snprintf(why, sizeof(why), "client certificate unreadable: %s", gnutls_strerror(err));
		return why;
	}
	if (!status)
		return NULL;
	gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0);
	snprintf(why, sizeof(why), "client certificate not trusted: %s",
		 text.data ? (const char *)text.data : "verification failed");
	gnutls_free(text.data);
	return why;
}

const char *tls_client_refused(gnutls_session_t session)
{
	enum client_auth auth = T.wc->client_auth;
	const gnutls_datum_t *peers;
	const char *why = NULL;
	unsigned nr = 0;

	if (auth == CLIENT_AUTH_NONE || auth == CLIENT_AUTH_REQUEST)
		return NULL;
	peers = gnutls_certificate_get_peers(session, &nr);
	if (!peers || !nr)
		return auth == CLIENT_AUTH_VERIFY_IF_GIVEN ? NULL : "a client certificate is required";
	if (auth == CLIENT_AUTH_REQUIRE_ANY)
		return NULL;
	pthread_mutex_lock(&T.lock);
	maybe_reload();
	why = verify_client(peers, nr);
	pthread_mutex_unlock(&T.lock);
	return why;
}

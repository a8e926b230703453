/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * TLS of the HTTP server (GnuTLS under libmicrohttpd): the certificate
 * chain and key handed to each handshake, re-read when their files change
 * (looked at most once a second, a failed read keeps the last good pair
 * and is logged); client certificates checked against client_ca_file,
 * re-read the same way, per client_auth_type.
 */
#ifndef VMPROBE_TLS_H
#define VMPROBE_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>

#include "core/webconfig.h"

/* Loads the files once; 0, or -EINVAL after saying which file is bad. */
int tls_init(const struct web_config *wc);
void tls_fini(void);

/* For MHD_OPTION_HTTPS_CERT_CALLBACK: the current chain and key. */
int tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nr_req,
		      const gnutls_pk_algorithm_t *pk_algos, int nr_algos, gnutls_pcert_st **pcert,
		      unsigned int *pcert_length, gnutls_privkey_t *privkey);

/*
 * PEM text that makes the server ask clients for a certificate
 * (MHD_OPTION_HTTPS_MEM_TRUST): client_ca_file's, else the server's own
 * chain (asked for, checked by nobody); NULL when clients are not asked.
 */
const char *tls_request_trust(void);

/* NULL if the session's client passes client_auth_type, else why not. */
const char *tls_client_refused(gnutls_session_t session);

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * --web.config.file: TLS and basic authentication of /metrics, in the
 * format of Prometheus' exporter-toolkit (tls_server_config,
 * basic_auth_users with bcrypt hashes, http_server_config.headers), so
 * that operators' existing files work. Parsing and checks only; the
 * server (core/server.c) applies it.
 */
#ifndef VMPROBE_WEBCONFIG_H
#define VMPROBE_WEBCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum client_auth {
	CLIENT_AUTH_NONE,           /* NoClientCert */
	CLIENT_AUTH_REQUEST,        /* RequestClientCert: asked for, not checked */
	CLIENT_AUTH_REQUIRE_ANY,    /* RequireAnyClientCert: one needed, not checked */
	CLIENT_AUTH_VERIFY_IF_GIVEN,/* VerifyClientCertIfGiven */
	CLIENT_AUTH_REQUIRE_VERIFY, /* RequireAndVerifyClientCert */
};

/* TLS protocol versions, as exporter-toolkit names them (TLS10..TLS13). */
enum tls_version { TLS_ANY, TLS10, TLS11, TLS12, TLS13 };

/* A user and its bcrypt hash ($2a$, $2b$, $2y$), or a header and its value. */
struct web_pair {
	char *name, *value;
};

struct web_config {
	bool tls;               /* tls_server_config with a certificate */
	char *cert_file, *key_file, *client_ca_file; /* absolute, or relative to the file */
	enum client_auth client_auth;
	enum tls_version min_version, max_version;
	struct web_pair *users;
	size_t nr_users;
	struct web_pair *headers; /* added to every response */
	size_t nr_headers;
};

/*
 * Reads and checks a web configuration: unknown keys, missing or unreadable
 * files, hashes that are not bcrypt, a client_auth_type that verifies
 * without client_ca_file... Errors go to `err` as "file:line:column: what";
 * 0 or -EINVAL (-errno when the file cannot be read). Paths in it are
 * taken relative to the file's directory.
 */
int web_config_load(struct web_config *wc, const char *path, FILE *err);
/* The same from `text` of `len` bytes, as if it were the file at `path`. */
int web_config_load_string(struct web_config *wc, const char *path, const char *text, size_t len,
			   FILE *err);
void web_config_free(struct web_config *wc);

/* The GnuTLS priority string of the configured versions ("NORMAL:-VERS-ALL:+VERS-TLS1.3..."). */
void web_config_priorities(const struct web_config *wc, char *buf, size_t size);

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The HTTP endpoint: /metrics, /healthz, / (libmicrohttpd); TLS and authentication. */
#ifndef VMPROBE_SERVER_H
#define VMPROBE_SERVER_H

#include "core/discovery.h"
#include "core/webconfig.h"

struct server;

struct server_opts {
	const char *listen;            /* "HOST:PORT", ":PORT", "[V6]:PORT" */
	/*
	 * NULL: plain HTTP, open. Its users and headers are replaced when
	 * web_path's file changes (the caller frees it, as it stands, after
	 * server_stop).
	 */
	struct web_config *web;
	const char *web_path;
	unsigned max_connections;      /* at once; more wait in the listen queue */
};

/* Starts serving; NULL on error (logged). */
struct server *server_start(const struct server_opts *o, struct discovery *d);
void server_stop(struct server *s);

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The HTTP endpoint: /metrics, /healthz (libmicrohttpd). */
#ifndef VMPROBE_SERVER_H
#define VMPROBE_SERVER_H

#include "core/discovery.h"

struct server;

/* Starts serving on `listen` ("HOST:PORT", ":PORT", "[V6]:PORT"); NULL on error. */
struct server *server_start(const char *listen, struct discovery *d);
void server_stop(struct server *s);

#endif

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "core/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/negotiate.h"
#include "core/util.h"

/* What /metrics offers (Accept), in order of preference: plain clients get the first. */
static const char *const offers[] = { "text/plain; version=0.0.4" };
static const char *const content_types[] = { "text/plain; version=0.0.4; charset=utf-8" };

struct server {
	struct MHD_Daemon *mhd;
	struct discovery *d;
};

static const char index_html[] =
	"<html><head><title>vmprobe</title></head><body><h1>vmprobe</h1>"
	"<p>Per-VM network and disk IO of this hypervisor.</p>"
	"<p><a href=\"/metrics\">Metrics</a> &middot; <a href=\"/healthz\">Health</a></p>"
	"</body></html>\n";

/* gzip of `in` into a malloc'd buffer, or NULL to send it plain. */
static void *gzip(const char *in, size_t len, size_t *out_len)
{
	z_stream zs = {};
	uLong bound;
	void *out;

	if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	bound = deflateBound(&zs, len);
	out = malloc(bound);
	if (!out) {
		deflateEnd(&zs);
		return NULL;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = len;
	zs.next_out = out;
	zs.avail_out = bound;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		free(out);
		out = NULL;
	}
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
				 const char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_metrics(struct server *s, struct MHD_Connection *c)
{
	const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
	int format = negotiate_accept(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept"),
				      offers, ARRAY_SIZE(offers));
	struct MHD_Response *r;
	struct strbuf sb;
	enum MHD_Result ret;
	size_t len, zlen;
	char *text;
	void *z = NULL;

	if (format < 0)
		return send_text(c, MHD_HTTP_NOT_ACCEPTABLE, "text/plain",
				 "/metrics is served as text/plain; version=0.0.4\n");
	sb_init(&sb);
	if (metrics_render(s->d, &sb)) {
		sb_free(&sb);
		return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
				 "out of memory rendering metrics\n");
	}
	len = sb.len;
	text = sb_steal(&sb);
	if (negotiate_encoding(enc, "gzip"))
		z = gzip(text, len, &zlen);
	if (z) {
		free(text);
		r = MHD_create_response_from_buffer(zlen, z, MHD_RESPMEM_MUST_FREE);
	} else {
		r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	}
	if (!r) {
		free(z ? z : text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_types[format]);
	/* Caches must key the response by what it was negotiated on. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept, Accept-Encoding");
	if (z)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct server *s = cls;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
				 "only GET and HEAD\n");
	if (strcmp(url, "/metrics") == 0)
		return send_metrics(s, c);
	if (strcmp(url, "/healthz") == 0)
		return send_text(c, MHD_HTTP_OK, "text/plain", "ok\n");
	if (strcmp(url, "/") == 0)
		return send_text(c, MHD_HTTP_OK, "text/html", index_html);
	return send_text(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found: try /metrics\n");
}

struct server *server_start(const char *listen, struct discovery *d)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
	/* epoll, not select(): TCX links take two fds per tap, past FD_SETSIZE on a big host. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	char host[128], port_str[8];
	struct server *s;
	unsigned port;
	int err;

	if (config_parse_listen(listen, host, sizeof(host), &port)) {
		log_error("listen address '%s' is not HOST:PORT, :PORT or [V6]:PORT", listen);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->d = d;
	if (host[0]) {
		snprintf(port_str, sizeof(port_str), "%u", port);
		err = getaddrinfo(host, port_str, &hints, &ai);
		if (err) {
			log_error("cannot resolve listen host '%s': %s", host, gai_strerror(err));
			free(s);
			return NULL;
		}
		if (ai->ai_family == AF_INET6)
			flags |= MHD_USE_IPv6;
		s->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, s,
					  MHD_OPTION_SOCK_ADDR, ai->ai_addr,
					  MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
		freeaddrinfo(ai);
	} else {
		s->mhd = MHD_start_daemon(flags | MHD_USE_DUAL_STACK, (uint16_t)port, NULL, NULL,
					  handle, s, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
					  MHD_OPTION_END);
	}
	if (!s->mhd) {
		log_error("cannot listen on %s (port in use? try --listen)", listen);
		free(s);
		return NULL;
	}
	log_info("serving /metrics on %s", listen);
	return s;
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd);
	free(s);
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The HTTP endpoint (libmicrohttpd): /metrics negotiated by Accept and
 * Accept-Encoding, /healthz, a landing page; TLS, client certificates and
 * basic authentication from --web.config.file; a cap on connections and
 * an idle timeout, so that idle or many clients cannot starve a scrape
 * for long (a client trickling its request is not cut: README).
 */
#include "core/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"
#include "core/config.h"
#include "core/gzip.h"
#include "core/metrics.h"
#include "core/negotiate.h"
#include "core/tls.h"
#include "core/util.h"

/*
 * Response buffers kept from one scrape to the next: a scrape writes into
 * memory it already has rather than into fresh pages, hundreds of MB of
 * them for text on a big host. One for the rendering, one for its gzip.
 */
#define SPARES 2

struct server {
	struct MHD_Daemon *mhd;
	struct discovery *d;
	struct web_config *web;       /* NULL: plain HTTP, no authentication */
	const char *web_path;
	struct file_stamp web_stamp;  /* of web_path when it was last loaded (or failed to) */
	double web_checked;           /* monotonic seconds when web_path was last looked at */
	pthread_mutex_t spare_lock;   /* MHD gives responses back from its threads */
	struct strbuf spare[SPARES];  /* buf NULL: none */
	size_t spare_peak;            /* the largest response lately (spare_give) */
	struct gzipper gz;
};

/* A spare buffer (the largest), or an empty one. */
static void spare_take(struct server *s, struct strbuf *sb)
{
	struct strbuf *best = NULL;

	pthread_mutex_lock(&s->spare_lock);
	for (int i = 0; i < SPARES; i++)
		if (s->spare[i].buf && (!best || s->spare[i].cap > best->cap))
			best = &s->spare[i];
	if (best) {
		*sb = *best;
		sb_init(best);
	} else {
		sb_init(sb);
	}
	pthread_mutex_unlock(&s->spare_lock);
	sb_reset(sb);
}

/*
 * Keeps sb for a later scrape, unless it is four times larger than the
 * largest response lately (the responses got smaller: the memory goes
 * back) or no place is free. "Lately" fades by 1/16 a buffer given back
 * (two for a gzipped scrape): a small protobuf between two large text
 * scrapes keeps the text's buffer.
 */
static void spare_give(struct server *s, struct strbuf *sb)
{
	pthread_mutex_lock(&s->spare_lock);
	s->spare_peak -= s->spare_peak / 16;
	if (sb->len > s->spare_peak)
		s->spare_peak = sb->len;
	for (int i = 0; i < SPARES && sb->buf && sb->cap / 4 <= s->spare_peak && !sb->oom; i++)
		if (!s->spare[i].buf) {
			s->spare[i] = *sb;
			sb_init(sb);
		}
	pthread_mutex_unlock(&s->spare_lock);
	sb_free(sb);
}

/* A buffer libmicrohttpd holds until the response is sent. */
struct lent {
	struct server *s;
	struct strbuf sb;
};

static void lent_back(void *cls)
{
	struct lent *l = cls;

	spare_give(l->s, &l->sb);
	free(l);
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool same_pairs(const struct web_pair *a, size_t na, const struct web_pair *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].name, b[i].name) || strcmp(a[i].value, b[i].value))
			return false;
	return true;
}

static bool same_tls(const struct web_config *a, const struct web_config *b)
{
	return a->tls == b->tls && same_str(a->cert_file, b->cert_file) &&
	       same_str(a->key_file, b->key_file) &&
	       same_str(a->client_ca_file, b->client_ca_file) && a->client_auth == b->client_auth &&
	       a->min_version == b->min_version && a->max_version == b->max_version;
}

/*
 * The web configuration file is looked at again, at most once a second
 * (exporter-toolkit reads it at every request): its users and headers
 * apply from then on, so that a user removed is refused without a
 * restart. tls_server_config is the server's from its start (whether it
 * speaks TLS at all): a change to it is logged and waits for the next
 * start; its files' contents are reloaded by core/tls.c. A file that does
 * not load is logged, once per change, and the last good one kept. The
 * first request looks too (the file may have changed while serve started).
 * Runs on libmicrohttpd's one thread, the only reader of users and headers.
 */
static void web_reload(struct server *s)
{
	struct web_config now = {}, old, *w = s->web;
	double t = monotonic_ns() / 1e9;
	char *errors = NULL;
	size_t size = 0;
	struct file_stamp st;
	FILE *err;
	int ret;

	if (!w || !s->web_path || t - s->web_checked < 1)
		return;
	s->web_checked = t;
	if (file_stamp_of(s->web_path, &st))
		memset(&st, 0, sizeof(st));
	if (file_stamp_eq(&st, &s->web_stamp))
		return;
	err = open_memstream(&errors, &size);
	if (!err)
		return;
	s->web_stamp = st;
	ret = web_config_load(&now, s->web_path, err);
	fclose(err);
	if (ret) {
		log_warn("%s changed and does not load: the last good one stays in force: %s",
			 s->web_path, errors && *errors ? strtok(errors, "\n") : strerror(-ret));
		free(errors);
		web_config_free(&now);
		return;
	}
	free(errors);
	if (!same_tls(w, &now))
		log_warn("%s: its tls_server_config is not the one serve started with: it applies "
			 "when serve starts again; users and headers apply now", s->web_path);
	else if (!same_pairs(w->users, w->nr_users, now.users, now.nr_users) ||
		 !same_pairs(w->headers, w->nr_headers, now.headers, now.nr_headers))
		log_info("%s changed: its users (%zu) and headers (%zu) apply now", s->web_path,
			 now.nr_users, now.nr_headers);
	/* Swapped: the old ones go with `now`. */
	old = *w;
	w->users = now.users;
	w->nr_users = now.nr_users;
	w->headers = now.headers;
	w->nr_headers = now.nr_headers;
	now.users = old.users;
	now.nr_users = old.nr_users;
	now.headers = old.headers;
	now.nr_headers = old.nr_headers;
	web_config_free(&now);
}

/* The web configuration's headers go on every response. */
static void add_headers(struct server *s, struct MHD_Response *r)
{
	for (size_t i = 0; s->web && i < s->web->nr_headers; i++)
		MHD_add_response_header(r, s->web->headers[i].name, s->web->headers[i].value);
}

static const char index_html[] =
	"<html><head><title>vmprobe</title></head><body><h1>vmprobe</h1>"
	"<p>Per-VM network and disk IO of this hypervisor.</p>"
	"<p><a href=\"/metrics\">Metrics</a> &middot; <a href=\"/healthz\">Health</a></p>"
	"</body></html>\n";

/* A short response with the configured headers; NULL if out of memory. */
static struct MHD_Response *text_response(struct server *s, const char *type, const char *body)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r) {
		add_headers(s, r);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	}
	return r;
}

static enum MHD_Result send_text(struct server *s, struct MHD_Connection *c, unsigned status,
				 const char *type, const char *body)
{
	struct MHD_Response *r = text_response(s, type, body);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_metrics(struct server *s, struct MHD_Connection *c)
{
	const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
	/* Offered in enum expo_format's order: plain clients get the text format. */
	int format = negotiate_accept(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept"),
				      expo_media_types, EXPO_FORMATS);
	struct MHD_Response *r;
	struct gzip_stream st;
	const struct expo_sink sink = { gzip_stream_take, &st, GZIP_CUT_AT };
	struct strbuf z;
	struct lent *l;
	enum MHD_Result ret;
	bool gzip, streamed, zipped = false;
	int err;

	if (format < 0)
		return send_text(s, c, MHD_HTTP_NOT_ACCEPTABLE, "text/plain",
				 "/metrics is served as text/plain; version=0.0.4, "
				 "application/openmetrics-text; version=1.0.0 or "
				 "application/vnd.google.protobuf; "
				 "proto=io.prometheus.client.MetricFamily; encoding=delimited\n");
	l = malloc(sizeof(*l));
	if (!l)
		return MHD_NO;
	l->s = s;
	gzip = negotiate_encoding(enc, "gzip");
	/* The text formats are deflated while they are rendered (protobuf's families move as they close). */
	streamed = gzip && format != EXPO_PROTOBUF;
	sb_init(&l->sb);
	sb_init(&z);
	if (!streamed)
		spare_take(s, &l->sb);
	if (gzip)
		spare_take(s, &z);
	if (streamed && !gzip_stream_begin(&st, &s->gz, &z)) {
		streamed = false;
		spare_take(s, &l->sb);
	}
	if (streamed) {
		err = metrics_render(s->d, (enum expo_format)format, st.body, &sink);
		zipped = gzip_stream_end(&st);
		err = err ? err : zipped ? 0 : -ENOMEM;
	} else {
		err = metrics_render(s->d, (enum expo_format)format, &l->sb, NULL);
		if (!err && gzip)
			zipped = gzipper_run(&s->gz, l->sb.buf, l->sb.len, &z);
	}
	if (zipped) {
		/* The rendering goes back at once, the gzip is lent instead. */
		struct strbuf text = l->sb;

		l->sb = z;
		z = text;
	}
	if (gzip)
		spare_give(s, &z);
	if (err) {
		lent_back(l);
		return send_text(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
				 "out of memory rendering or compressing metrics\n");
	}
	r = MHD_create_response_from_buffer_with_free_callback_cls(l->sb.len, l->sb.buf, lent_back, l);
	if (!r) {
		lent_back(l);
		return MHD_NO;
	}
	add_headers(s, r);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, expo_content_types[format]);
	/* Caches must key the response by what it was negotiated on. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept, Accept-Encoding");
	if (zipped)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static const char auth_needed[] = "authentication needed";

/*
 * Why the request may not go on: NULL if it may, auth_needed, or the
 * client certificate's fault (said in a 403). /healthz is open to anyone
 * who got through TLS, so that liveness probes need no password.
 */
static const char *refused(struct server *s, struct MHD_Connection *c, const char *url)
{
	char *user, *password = NULL;
	bool ok;

	if (!s->web)
		return NULL;
	if (s->web->tls) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		const char *why = ci ? tls_client_refused(ci->tls_session) : "no TLS session";

		if (why)
			return why;
	}
	if (!s->web->nr_users || !strcmp(url, "/healthz"))
		return NULL;
	user = MHD_basic_auth_get_username_password(c, &password);
	ok = user && password && auth_check(s->web, user, password);
	MHD_free(user);
	if (password) {
		memset(password, 0, strlen(password));
		MHD_free(password);
	}
	return ok ? NULL : auth_needed;
}

static enum MHD_Result ask_auth(struct server *s, struct MHD_Connection *c)
{
	struct MHD_Response *r = text_response(s, "text/plain", "401 Unauthorized\n");
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	ret = MHD_queue_basic_auth_fail_response(c, "vmprobe", r);
	MHD_destroy_response(r);
	return ret;
}

/* 405, with the Allow header RFC 9110 requires of it. */
static enum MHD_Result not_allowed(struct server *s, struct MHD_Connection *c)
{
	struct MHD_Response *r = text_response(s, "text/plain", "only GET and HEAD\n");
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct server *s = cls;
	const char *why;

	web_reload(s);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return not_allowed(s, c);
	why = refused(s, c, url);
	if (why)
		return why == auth_needed ? ask_auth(s, c)
					  : send_text(s, c, MHD_HTTP_FORBIDDEN, "text/plain", why);
	if (strcmp(url, "/metrics") == 0)
		return send_metrics(s, c);
	if (strcmp(url, "/healthz") == 0)
		return send_text(s, c, MHD_HTTP_OK, "text/plain", "ok\n");
	if (strcmp(url, "/") == 0)
		return send_text(s, c, MHD_HTTP_OK, "text/html", index_html);
	return send_text(s, c, MHD_HTTP_NOT_FOUND, "text/plain", "not found: try /metrics\n");
}

/* libmicrohttpd's own messages (a client's failed TLS handshake...): debug lines of ours. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	log_va(LOG_DEBUG, "http: ", fmt, ap);
}

struct server *server_start(const struct server_opts *o, struct discovery *d)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
	/* epoll, not select(): TCX links take two fds per tap, past FD_SETSIZE on a big host. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem opts[10];
	char host[128], port_str[8], prio[128];
	struct web_config *web = o->web;
	struct server *s;
	unsigned port, n = 0;
	int err;

	if (config_parse_listen(o->listen, host, sizeof(host), &port)) {
		log_error("listen address '%s' is not HOST:PORT, :PORT or [V6]:PORT", o->listen);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->d = d;
	s->web = web;
	s->web_path = o->web_path;
	pthread_mutex_init(&s->spare_lock, NULL);
	gzipper_init(&s->gz, 0);
	/* An idle or slow client is dropped after 30 s; beyond the cap, new ones wait. */
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
					     NULL };
	if (web && web->tls) {
		if (tls_init(web))
			goto fail;
		flags |= MHD_USE_TLS;
		web_config_priorities(web, prio, sizeof(prio));
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0, prio };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
						     (void *)tls_cert_callback };
		if (tls_request_trust())
			opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0,
							     (void *)tls_request_trust() };
	}
	if (host[0]) {
		snprintf(port_str, sizeof(port_str), "%u", port);
		err = getaddrinfo(host, port_str, &hints, &ai);
		if (err) {
			log_error("cannot resolve listen host '%s': %s", host, gai_strerror(err));
			goto fail;
		}
		if (ai->ai_family == AF_INET6)
			flags |= MHD_USE_IPv6;
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr };
	} else {
		flags |= MHD_USE_DUAL_STACK;
	}
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	s->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, s, MHD_OPTION_ARRAY,
				  opts, MHD_OPTION_END);
	if (ai)
		freeaddrinfo(ai);
	if (!s->mhd) {
		log_error("cannot listen on %s (port in use? try --listen)", o->listen);
		goto fail;
	}
	log_info("serving /metrics on %s (%s%s)", o->listen, web && web->tls ? "https" : "http",
		 web && web->nr_users ? ", basic authentication" : "");
	return s;
fail:
	tls_fini();
	gzipper_free(&s->gz);
	pthread_mutex_destroy(&s->spare_lock);
	free(s);
	return NULL;
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd);
	tls_fini();
	for (int i = 0; i < SPARES; i++)
		sb_free(&s->spare[i]);
	pthread_mutex_destroy(&s->spare_lock);
	gzipper_free(&s->gz);
	free(s);
}

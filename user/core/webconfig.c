// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* --web.config.file in exporter-toolkit's format: parsed and checked. */
#include "core/webconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/util.h"
#include "core/yamldoc.h"

struct ctx {
	struct yamldoc y;
	struct web_config *wc;
	char dir[4096]; /* of the file, for relative paths */
	const yaml_node_t *ca_node, *auth_node, *tls_node;
};

/* The keys of a mapping, each handed to fn with the context. */
static int each_key(struct ctx *c, yaml_node_t *map, const char *what, yamldoc_key_fn fn)
{
	return yamldoc_each_key(&c->y, map, what, fn, c);
}

static int unknown(struct ctx *c, const char *key, yaml_node_t *k, const char *where)
{
	return yamldoc_fail(&c->y, k, "unknown key '%s' in %s", key, where);
}

/* A non-empty single value into a malloc'd string. */
static int string(struct ctx *c, const char *key, yaml_node_t *v, char **out)
{
	if (v->type != YAML_SCALAR_NODE || yamldoc_is_null(yamldoc_scalar(v)))
		return yamldoc_fail(&c->y, v, "'%s' must be a single non-empty value", key);
	free(*out);
	*out = strdup(yamldoc_scalar(v));
	return *out ? 0 : -ENOMEM;
}

/* A file path, made absolute from the file's directory, which must be readable. */
static int path(struct ctx *c, const char *key, yaml_node_t *v, char **out)
{
	char *p = NULL;
	int err = string(c, key, v, &p);

	if (err)
		return err;
	if (p[0] != '/') {
		char *abs = malloc(strlen(c->dir) + strlen(p) + 2);

		if (!abs) {
			free(p);
			return -ENOMEM;
		}
		sprintf(abs, "%s/%s", c->dir, p);
		free(p);
		p = abs;
	}
	free(*out);
	*out = p;
	if (access(p, R_OK))
		return yamldoc_fail(&c->y, v, "%s %s: %s", key, p, strerror(errno));
	return 0;
}

static const char *const auth_names[] = {
	[CLIENT_AUTH_NONE] = "NoClientCert",
	[CLIENT_AUTH_REQUEST] = "RequestClientCert",
	[CLIENT_AUTH_REQUIRE_ANY] = "RequireAnyClientCert",
	[CLIENT_AUTH_VERIFY_IF_GIVEN] = "VerifyClientCertIfGiven",
	[CLIENT_AUTH_REQUIRE_VERIFY] = "RequireAndVerifyClientCert",
};

static const char *const version_names[] = {
	[TLS10] = "TLS10", [TLS11] = "TLS11", [TLS12] = "TLS12", [TLS13] = "TLS13",
};

static int version(struct ctx *c, const char *key, yaml_node_t *v, enum tls_version *out)
{
	if (v->type == YAML_SCALAR_NODE)
		for (int i = TLS10; i <= TLS13; i++)
			if (!strcmp(yamldoc_scalar(v), version_names[i])) {
				*out = i;
				return 0;
			}
	return yamldoc_fail(&c->y, v, "%s must be one of TLS10, TLS11, TLS12, TLS13", key);
}

static int tls_key(void *arg, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	struct ctx *c = arg;
	struct web_config *wc = c->wc;

	if (!strcmp(key, "cert_file"))
		return path(c, key, v, &wc->cert_file);
	if (!strcmp(key, "key_file"))
		return path(c, key, v, &wc->key_file);
	if (!strcmp(key, "client_ca_file")) {
		c->ca_node = v;
		return path(c, key, v, &wc->client_ca_file);
	}
	if (!strcmp(key, "min_version"))
		return version(c, key, v, &wc->min_version);
	if (!strcmp(key, "max_version"))
		return version(c, key, v, &wc->max_version);
	if (!strcmp(key, "client_auth_type")) {
		c->auth_node = v;
		if (v->type == YAML_SCALAR_NODE)
			for (size_t i = 0; i < ARRAY_SIZE(auth_names); i++)
				if (!strcmp(yamldoc_scalar(v), auth_names[i])) {
					wc->client_auth = i;
					return 0;
				}
		return yamldoc_fail(&c->y, v, "client_auth_type must be one of NoClientCert, "
				    "RequestClientCert, RequireAnyClientCert, "
				    "VerifyClientCertIfGiven, RequireAndVerifyClientCert");
	}
	if (!strcmp(key, "cipher_suites") || !strcmp(key, "curve_preferences") ||
	    !strcmp(key, "prefer_server_cipher_suites") || !strcmp(key, "client_allowed_sans") ||
	    !strcmp(key, "cert") || !strcmp(key, "key"))
		return yamldoc_fail(&c->y, k, "'%s' is not supported by vmprobe (GnuTLS chooses "
				    "suites and curves; give certificates as files)", key);
	return unknown(c, key, k, "tls_server_config");
}

/* exporter-toolkit's own check: a bcrypt hash is $2a$, $2b$ or $2y$, cost, 53 characters. */
static bool is_bcrypt(const char *h)
{
	return strlen(h) == 60 && h[0] == '$' && h[1] == '2' && strchr("aby", h[2]) &&
	       h[3] == '$' && h[4] >= '0' && h[4] <= '3' && h[5] >= '0' && h[5] <= '9' &&
	       h[6] == '$';
}

/* Appends (name, value) to the array *v of *n; 0 or -ENOMEM. */
static int pair_add(struct web_pair **v, size_t *n, const char *name, const char *value)
{
	struct web_pair *grown = realloc(*v, (*n + 1) * sizeof(**v));

	if (!grown)
		return -ENOMEM;
	*v = grown;
	grown[*n].name = strdup(name);
	grown[*n].value = strdup(value);
	(*n)++;
	return grown[*n - 1].name && grown[*n - 1].value ? 0 : -ENOMEM;
}

static int user_key(void *arg, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	struct ctx *c = arg;

	if (!*key || strchr(key, ':'))
		return yamldoc_fail(&c->y, k, "user name '%s' must be non-empty, without ':'", key);
	if (v->type != YAML_SCALAR_NODE || !is_bcrypt(yamldoc_scalar(v)))
		return yamldoc_fail(&c->y, v, "the password of '%s' must be a bcrypt hash "
				    "($2y$... as htpasswd -B makes)", key);
	return pair_add(&c->wc->users, &c->wc->nr_users, key, yamldoc_scalar(v));
}

/*
 * The headers exporter-toolkit lets a web config set, spelt as there, and
 * the values it allows where they are an enumeration (NULL: any one line).
 * Others (e.g. Content-Type, which vmprobe sets itself) are refused, as
 * there.
 */
static const struct {
	const char *name, *values[3];
} settable_headers[] = {
	{ "Strict-Transport-Security", { NULL } },
	{ "X-Content-Type-Options", { "nosniff", NULL } },
	{ "X-Frame-Options", { "deny", "sameorigin", NULL } },
	{ "X-XSS-Protection", { NULL } },
	{ "Content-Security-Policy", { NULL } },
};

static int header_key(void *arg, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	struct ctx *c = arg;
	size_t i = 0;

	while (i < ARRAY_SIZE(settable_headers) && strcmp(key, settable_headers[i].name))
		i++;
	if (i == ARRAY_SIZE(settable_headers))
		return yamldoc_fail(&c->y, k, "HTTP header '%s' cannot be configured (only "
				    "Strict-Transport-Security, X-Content-Type-Options, "
				    "X-Frame-Options, X-XSS-Protection, "
				    "Content-Security-Policy)", key);
	/* libmicrohttpd sends no empty value: refused, never dropped. */
	if (v->type != YAML_SCALAR_NODE || strpbrk(yamldoc_scalar(v), "\r\n") ||
	    !*yamldoc_scalar(v))
		return yamldoc_fail(&c->y, v, "header %s must be one non-empty line", key);
	if (settable_headers[i].values[0]) {
		const char *const *ok = settable_headers[i].values, *other = ok[1];

		while (*ok && strcmp(*ok, yamldoc_scalar(v)))
			ok++;
		if (!*ok)
			return yamldoc_fail(&c->y, v, "header %s must be %s%s%s, not '%s'", key,
					    settable_headers[i].values[0], other ? " or " : "",
					    other ? other : "", yamldoc_scalar(v));
	}
	return pair_add(&c->wc->headers, &c->wc->nr_headers, key, yamldoc_scalar(v));
}

static int http_key(void *arg, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	struct ctx *c = arg;

	if (!strcmp(key, "headers"))
		return each_key(c, v, "http_server_config.headers", header_key);
	/* vmprobe speaks HTTP/1.1: http2 is accepted, as true or false, and changes nothing. */
	if (!strcmp(key, "http2")) {
		if (v->type == YAML_SCALAR_NODE &&
		    (!strcmp(yamldoc_scalar(v), "true") || !strcmp(yamldoc_scalar(v), "false")))
			return 0;
		return yamldoc_fail(&c->y, v, "http2 must be true or false");
	}
	return unknown(c, key, k, "http_server_config");
}

static int root_key(void *arg, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	struct ctx *c = arg;

	if (!strcmp(key, "tls_server_config")) {
		c->tls_node = k;
		return each_key(c, v, key, tls_key);
	}
	if (!strcmp(key, "basic_auth_users"))
		return each_key(c, v, key, user_key);
	if (!strcmp(key, "http_server_config"))
		return each_key(c, v, key, http_key);
	return unknown(c, key, k, "the web configuration");
}

/* Checks across keys. */
static int check(struct ctx *c, yaml_node_t *root)
{
	struct web_config *wc = c->wc;
	const yaml_node_t *at = c->tls_node ? c->tls_node : root;

	if (!c->tls_node)
		return 0;
	if (!wc->cert_file || !wc->key_file)
		return yamldoc_fail(&c->y, at, "tls_server_config needs both cert_file and key_file");
	wc->tls = true;
	if ((wc->client_auth == CLIENT_AUTH_VERIFY_IF_GIVEN ||
	     wc->client_auth == CLIENT_AUTH_REQUIRE_VERIFY) && !wc->client_ca_file)
		return yamldoc_fail(&c->y, c->auth_node, "client_auth_type %s needs client_ca_file",
				    auth_names[wc->client_auth]);
	if (wc->client_ca_file && wc->client_auth == CLIENT_AUTH_NONE)
		return yamldoc_fail(&c->y, c->ca_node, "client_ca_file is set but client_auth_type "
				    "is NoClientCert: client certificates would not be checked");
	if (wc->min_version && wc->max_version && wc->min_version > wc->max_version)
		return yamldoc_fail(&c->y, at, "min_version is above max_version");
	return 0;
}

/* The web configuration at `file`, from `text` of `len` bytes, or read from the file if NULL. */
static int load(struct web_config *wc, const char *file, const char *text, size_t len, FILE *err)
{
	struct ctx c = { .wc = wc };
	const char *slash = strrchr(file, '/');
	yaml_node_t *root;
	int ret;

	memset(wc, 0, sizeof(*wc));
	if (!slash)
		str_copy(c.dir, sizeof(c.dir), ".");
	else
		snprintf(c.dir, sizeof(c.dir), "%.*s", (int)(slash - file), file);
	if (!c.dir[0])
		str_copy(c.dir, sizeof(c.dir), "/");
	ret = text ? yamldoc_load_string(&c.y, file, text, len, err)
		   : yamldoc_load_file(&c.y, file, err);
	if (ret)
		return ret;
	root = yamldoc_root(&c.y);
	if (root)
		ret = each_key(&c, root, "the web configuration", root_key);
	if (!ret && root)
		ret = check(&c, root);
	yamldoc_free(&c.y);
	if (ret)
		web_config_free(wc);
	return ret;
}

int web_config_load(struct web_config *wc, const char *file, FILE *err)
{
	return load(wc, file, NULL, 0, err);
}

int web_config_load_string(struct web_config *wc, const char *file, const char *text, size_t len,
			   FILE *err)
{
	return load(wc, file, text, len, err);
}

static void pairs_free(struct web_pair *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

void web_config_free(struct web_config *wc)
{
	free(wc->cert_file);
	free(wc->key_file);
	free(wc->client_ca_file);
	pairs_free(wc->users, wc->nr_users);
	pairs_free(wc->headers, wc->nr_headers);
	memset(wc, 0, sizeof(*wc));
}

void web_config_priorities(const struct web_config *wc, char *buf, size_t size)
{
	static const char *const gnutls_names[] = {
		[TLS10] = "TLS1.0", [TLS11] = "TLS1.1", [TLS12] = "TLS1.2", [TLS13] = "TLS1.3",
	};
	/* exporter-toolkit's default minimum is TLS 1.2. */
	int lo = wc->min_version ? (int)wc->min_version : TLS12;
	int hi = wc->max_version ? (int)wc->max_version : TLS13;
	size_t n = (size_t)snprintf(buf, size, "NORMAL:-VERS-ALL");

	for (int v = lo; v <= hi && n < size; v++)
		n += (size_t)snprintf(buf + n, size - n, ":+VERS-%s", gnutls_names[v]);
}

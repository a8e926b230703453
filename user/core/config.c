// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/metrics.h"
#include "core/yamldoc.h"

#include "probes/net/tc.h"
#include "vmprobe/disk.h"
#include "vmprobe/hist.h"
#include "vmprobe/net.h"

__asm__(".section .rodata\n"
	".global config_default_yaml\n"
	"config_default_yaml:\n"
	".incbin \"config/default.yaml\"\n"
	".byte 0\n"
	".previous\n");

enum ftype {
	F_STR, F_UINT, F_BOOL, F_LOGLEVEL, F_LOGFORMAT, F_TC_HOOK, F_LOG2, F_MAP,
	F_SECONDS_LOG2, /* seconds, rounded out to a power of two: a time slot */
	F_FAMILIES,     /* a list of metric family names */
};

struct field {
	const char *key;
	enum ftype type;
	size_t off;  /* in struct config */
	size_t size; /* F_STR: buffer size */
	unsigned long min, max;
	const struct field *children; /* F_MAP: NULL-key terminated */
};

#define CFG(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct field size_bucket_fields[] = {
	{ "min", F_LOG2, CFG(size_min_slot), 1, 1UL << (NET_SIZE_SLOTS - 2), NULL },
	{ "max", F_LOG2, CFG(size_max_slot), 1, 1UL << (NET_SIZE_SLOTS - 2), NULL },
	{ NULL },
};

static const struct field disk_size_bucket_fields[] = {
	{ "min", F_LOG2, CFG(dsize_min_slot), 1, 1UL << (DISK_SIZE_SLOTS - 2), NULL },
	{ "max", F_LOG2, CFG(dsize_max_slot), 1, 1UL << (DISK_SIZE_SLOTS - 2), NULL },
	{ NULL },
};

/* min and max: the first bucket's le rounded down to a power of two, the last's up. */
static const struct field time_bucket_fields[] = {
	{ "min", F_SECONDS_LOG2, CFG(time_min_slot), 0, 0, NULL },
	{ "max", F_SECONDS_LOG2, CFG(time_max_slot), 1, 0, NULL },
	{ NULL },
};

static const struct field discovery_fields[] = {
	{ "proc", F_STR, CFG(proc_root), 0, 0, NULL },
	{ "rescan_interval_ms", F_UINT, CFG(rescan_interval_ms), 10, 3600000, NULL },
	{ "process_events", F_BOOL, CFG(process_events), 0, 0, NULL },
	{ NULL },
};

static const struct field network_fields[] = {
	{ "enabled", F_BOOL, CFG(net_enabled), 0, 0, NULL },
	/* Slots travel as a 16-bit TC classid, slot + 1. */
	{ "max_interfaces", F_UINT, CFG(max_interfaces), 1, 65535, NULL },
	{ "max_tcp_flows", F_UINT, CFG(max_tcp_flows), 0, 16777216, NULL },
	{ "tc_hook", F_TC_HOOK, CFG(tc_hook), 0, 0, NULL },
	{ "packet_size_buckets", F_MAP, 0, 0, 0, 0, size_bucket_fields },
	{ NULL },
};

static const struct field disk_fields[] = {
	{ "enabled", F_BOOL, CFG(disk_enabled), 0, 0, NULL },
	{ "max_drives", F_UINT, CFG(max_drives), 1, 65536, NULL },
	{ "host_block_latency", F_BOOL, CFG(host_block_latency), 0, 0, NULL },
	{ "request_size_buckets", F_MAP, 0, 0, 0, 0, disk_size_bucket_fields },
	{ NULL },
};

static const struct field vcpu_fields[] = {
	{ "enabled", F_BOOL, CFG(vcpu_enabled), 0, 0, NULL },
	{ NULL },
};

static const struct field exposition_fields[] = {
	{ "native_histograms", F_BOOL, CFG(native_histograms), 0, 0, NULL },
	{ "classic_in_protobuf", F_BOOL, CFG(classic_in_protobuf), 0, 0, NULL },
	{ "openmetrics_created", F_BOOL, CFG(openmetrics_created), 0, 0, NULL },
	{ "disabled_families", F_FAMILIES, CFG(disabled), 0, 0, NULL },
	{ "enabled_families", F_FAMILIES, CFG(enabled), 0, 0, NULL },
	{ "time_buckets", F_MAP, 0, 0, 0, 0, time_bucket_fields },
	{ NULL },
};

static const struct field root_fields[] = {
	{ "listen", F_STR, CFG(listen), 0, 0, NULL },
	{ "log_level", F_LOGLEVEL, CFG(log_level), 0, 0, NULL },
	{ "log_format", F_LOGFORMAT, CFG(log_format), 0, 0, NULL },
	{ "max_vms", F_UINT, CFG(max_vms), 1, 65535, NULL },
	{ "persist", F_BOOL, CFG(persist), 0, 0, NULL },
	{ "discovery", F_MAP, 0, 0, 0, 0, discovery_fields },
	{ "network", F_MAP, 0, 0, 0, 0, network_fields },
	{ "disk", F_MAP, 0, 0, 0, 0, disk_fields },
	{ "vcpu", F_MAP, 0, 0, 0, 0, vcpu_fields },
	{ "exposition", F_MAP, 0, 0, 0, 0, exposition_fields },
	{ NULL },
};

struct ctx {
	struct yamldoc y;
	struct config *cfg;
	/* where a min/max mismatch is reported: packet, disk size, time buckets */
	yaml_node_t *buckets, *dsize_buckets, *time_buckets;
};

#define fail(c, node, ...) yamldoc_fail(&(c)->y, node, __VA_ARGS__)
#define scalar yamldoc_scalar

static int set_field(struct ctx *c, const struct field *f, yaml_node_t *v);

/* One mapping's keys, each a field of `fields`. */
struct map_walk {
	struct ctx *c;
	const struct field *fields;
};

static int apply_key(void *arg, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	struct map_walk *w = arg;
	const struct field *f;

	for (f = w->fields; f->key; f++)
		if (strcmp(f->key, key) == 0)
			return set_field(w->c, f, v);
	return fail(w->c, k, "unknown key '%s'", key);
}

/* `network:` with nothing (or only comments) under it sets nothing. */
static int apply_map(struct ctx *c, const struct field *fields, yaml_node_t *map, const char *what)
{
	struct map_walk w = { c, fields };

	return yamldoc_each_key(&c->y, map, what, apply_key, &w);
}

static int parse_ulong(const char *s, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

/* The CONFIG_SET_* of a map size that follows max_vms when auto; 0 for other keys. */
static unsigned size_bit(size_t off)
{
	if (off == offsetof(struct config, max_interfaces))
		return CONFIG_SET_IFACES;
	if (off == offsetof(struct config, max_tcp_flows))
		return CONFIG_SET_FLOWS;
	return off == offsetof(struct config, max_drives) ? CONFIG_SET_DRIVES : 0;
}

/*
 * A time bucket bound in seconds, as the log2 slot of TIME_SLOT_UNITS whose
 * le it becomes: min rounds down to a power of two, max up (f->min: 1 for
 * max), so the exported range always covers what was asked.
 */
static int set_seconds_slot(struct ctx *c, const struct field *f, yaml_node_t *v,
			    unsigned *dst)
{
	const double lo = 1.0 / TIME_SLOT_UNITS * 2, hi = 128;
	const char *s = scalar(v);
	char *end;
	double x, l2;

	errno = 0;
	x = strtod(s, &end);
	if (errno || end == s || *end || !(x >= lo && x <= hi))
		return fail(c, v, "'%s' must be a number of seconds from %g (2^-29) to %g (2^7)",
			    f->key, lo, hi);
	l2 = log2(x * TIME_SLOT_UNITS);
	*dst = (unsigned)(f->min ? ceil(l2 - 1e-9) : floor(l2 + 1e-9));
	return 0;
}

/* exposition.*_families: names `vmprobe metrics` lists, each checked. */
static int set_families(struct ctx *c, const struct field *f, yaml_node_t *v,
			struct config_families *list)
{
	if (v->type == YAML_SCALAR_NODE && !*scalar(v)) {
		list->nr = 0; /* "disabled_families:" with nothing: none */
		return 0;
	}
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(c, v, "'%s' must be a list of metric family names", f->key);
	list->nr = 0;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yamldoc_node(&c->y, *it);
		const char *name = item && item->type == YAML_SCALAR_NODE ? scalar(item) : NULL;

		if (!name)
			return fail(c, item ? item : v, "'%s' must be a list of metric family names",
				    f->key);
		if (!metrics_family_find(name))
			return fail(c, item, "unknown metric family '%s' (vmprobe metrics lists them)",
				    name);
		if (list->nr == CONFIG_MAX_FAMILIES)
			return fail(c, item, "'%s' names more than %d families", f->key,
				    CONFIG_MAX_FAMILIES);
		str_copy(list->names[list->nr++], CONFIG_FAMILY_NAME, name);
	}
	return 0;
}

static bool families_name(const struct config_families *list, const char *name)
{
	for (unsigned i = 0; i < list->nr; i++)
		if (!strcmp(list->names[i], name))
			return true;
	return false;
}

bool config_family_off(const struct config *cfg, const struct expo_family *f)
{
	if (families_name(&cfg->disabled, f->name))
		return true;
	return f->off_by_default && !families_name(&cfg->enabled, f->name);
}

/* An F_STR value; listen must also parse as an address. */
static int set_str(struct ctx *c, const struct field *f, yaml_node_t *v, char *dst)
{
	const char *s = scalar(v);

	if (!*s || strlen(s) >= f->size)
		return fail(c, v, "'%s' must be a non-empty string of reasonable length", f->key);
	if (f->off == offsetof(struct config, listen)) {
		char host[128];
		unsigned port;

		if (config_parse_listen(s, host, sizeof(host), &port))
			return fail(c, v, "listen '%s' is not HOST:PORT, :PORT or [V6]:PORT", s);
	}
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* An F_UINT value (a size may be auto), or an F_LOG2 one stored as its log2. */
static int set_number(struct ctx *c, const struct field *f, yaml_node_t *v, unsigned *dst)
{
	const char *s = scalar(v);
	unsigned long n;

	if (size_bit(f->off) && !strcmp(s, "auto")) {
		c->cfg->sizes_set &= ~size_bit(f->off);
		return 0;
	}
	if (parse_ulong(s, &n) || n < f->min || n > f->max)
		return fail(c, v, "'%s' must be a whole number from %lu to %lu%s", f->key, f->min,
			    f->max, size_bit(f->off) ? ", or auto" : "");
	if (f->type == F_UINT) {
		*dst = (unsigned)n;
		c->cfg->sizes_set |= size_bit(f->off);
		return 0;
	}
	if (n & (n - 1))
		return fail(c, v, "'%s' must be a power of two", f->key);
	*dst = (unsigned)__builtin_ctzl(n);
	return 0;
}

static int set_field(struct ctx *c, const struct field *f, yaml_node_t *v)
{
	char *dst = (char *)c->cfg + f->off;
	const char *s;

	if (f->type == F_MAP) {
		if (f->children == size_bucket_fields)
			c->buckets = v;
		else if (f->children == disk_size_bucket_fields)
			c->dsize_buckets = v;
		else if (f->children == time_bucket_fields)
			c->time_buckets = v;
		return apply_map(c, f->children, v, f->key);
	}
	if (f->type == F_FAMILIES)
		return set_families(c, f, v, (struct config_families *)dst);
	if (v->type != YAML_SCALAR_NODE)
		return fail(c, v, "'%s' must be a single value", f->key);
	s = scalar(v);
	switch (f->type) {
	case F_STR:
		return set_str(c, f, v, dst);
	case F_BOOL:
		if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
			*(bool *)dst = true;
		else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
			*(bool *)dst = false;
		else
			return fail(c, v, "'%s' must be true or false", f->key);
		return 0;
	case F_LOGLEVEL:
		if (log_level_parse(s, (enum log_level *)dst))
			return fail(c, v, "log_level '%s' is not one of error, warn, info, debug", s);
		return 0;
	case F_LOGFORMAT:
		if (log_format_parse(s, (enum log_format *)dst))
			return fail(c, v, "log_format '%s' is not one of plain, logfmt, json", s);
		return 0;
	case F_UINT:
	case F_LOG2:
		return set_number(c, f, v, (unsigned *)dst);
	case F_SECONDS_LOG2:
		return set_seconds_slot(c, f, v, (unsigned *)dst);
	case F_TC_HOOK:
		for (unsigned i = 0; i < ARRAY_SIZE(tc_hook_names); i++) {
			if (!strcmp(s, tc_hook_names[i])) {
				*(unsigned *)dst = i;
				return 0;
			}
		}
		return fail(c, v, "tc_hook '%s' is not one of auto, tcx, clsact", s);
	case F_MAP:
	case F_FAMILIES:
		break;
	}
	return -EINVAL;
}

int config_parse_listen(const char *s, char *host, size_t host_size, unsigned *port)
{
	const char *colon;
	unsigned long p;
	size_t hlen;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = close - s - 1;
		s++;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = colon - s;
	}
	if (hlen >= host_size || parse_ulong(colon + 1, &p) || p == 0 || p > 65535)
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	*port = (unsigned)p;
	return 0;
}

/*
 * Map sizes left auto follow max_vms (README, "Memory"): a tap per VM, 32
 * TCP flows per tap, two drives per VM.
 */
static void derive_sizes(struct config *cfg)
{
	if (!(cfg->sizes_set & CONFIG_SET_IFACES))
		cfg->max_interfaces = cfg->max_vms;
	if (!(cfg->sizes_set & CONFIG_SET_FLOWS))
		cfg->max_tcp_flows = CONFIG_FLOWS_PER_IFACE * cfg->max_interfaces;
	if (!(cfg->sizes_set & CONFIG_SET_DRIVES))
		cfg->max_drives = cfg->max_vms * 2 < 65536 ? cfg->max_vms * 2 : 65536;
}

/* Checks across keys, once the document is applied. */
static int check(struct ctx *c, yaml_node_t *root)
{
	if (c->cfg->size_min_slot > c->cfg->size_max_slot)
		return fail(c, c->buckets ? c->buckets : root, "%s",
			    "network.packet_size_buckets: min must not be above max");
	if (c->cfg->dsize_min_slot > c->cfg->dsize_max_slot)
		return fail(c, c->dsize_buckets ? c->dsize_buckets : root, "%s",
			    "disk.request_size_buckets: min must not be above max");
	if (c->cfg->time_min_slot > c->cfg->time_max_slot)
		return fail(c, c->time_buckets ? c->time_buckets : root, "%s",
			    "exposition.time_buckets: min must not be above max");
	return 0;
}

/* Applies the loaded document c->y to a copy of *cfg, kept only if all is well. */
static int apply_doc(struct config *cfg, struct ctx *c)
{
	struct config next = *cfg;
	yaml_node_t *root = yamldoc_root(&c->y);
	int ret = 0;

	c->cfg = &next;
	if (root)
		ret = apply_map(c, root_fields, root, "the configuration");
	if (!ret && root)
		ret = check(c, root);
	derive_sizes(&next);
	/* All or nothing: a bad file leaves cfg as it was. */
	if (!ret)
		*cfg = next;
	yamldoc_free(&c->y);
	return ret;
}

int config_apply_string(struct config *cfg, const char *name, const char *text, size_t len,
			FILE *err)
{
	struct ctx c = {};
	int ret = yamldoc_load_string(&c.y, name, text, len, err);

	return ret ? ret : apply_doc(cfg, &c);
}

int config_apply_file(struct config *cfg, const char *path, FILE *err)
{
	struct ctx c = {};
	int ret = yamldoc_load_file(&c.y, path, err);

	return ret ? ret : apply_doc(cfg, &c);
}

int config_load_default(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	return config_apply_string(cfg, "<embedded default>", config_default_yaml,
				   strlen(config_default_yaml), stderr);
}

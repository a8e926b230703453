// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* YAML configuration: the embedded default, overrides, error messages, listen. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit.h"

#include "core/config.h"
#include "core/metrics.h"
#include "probes/net/tc.h"

static void expect_config_equal(const char *what, const struct config *exp,
				const struct config *act)
{
	char ctx[256];

#define FIELD_CTX(f) (snprintf(ctx, sizeof(ctx), "%s: " #f, what), ctx)
	expect_str(FIELD_CTX(listen), exp->listen, act->listen);
	expect_int(FIELD_CTX(log_level), exp->log_level, act->log_level);
	expect_str(FIELD_CTX(proc_root), exp->proc_root, act->proc_root);
	expect_int(FIELD_CTX(rescan_interval_ms), exp->rescan_interval_ms,
		   act->rescan_interval_ms);
	expect_int(FIELD_CTX(process_events), exp->process_events, act->process_events);
	expect_int(FIELD_CTX(net_enabled), exp->net_enabled, act->net_enabled);
	expect_int(FIELD_CTX(max_interfaces), exp->max_interfaces, act->max_interfaces);
	expect_int(FIELD_CTX(max_tcp_flows), exp->max_tcp_flows, act->max_tcp_flows);
	expect_int(FIELD_CTX(max_drives), exp->max_drives, act->max_drives);
	expect_int(FIELD_CTX(max_vms), exp->max_vms, act->max_vms);
	expect_int(FIELD_CTX(sizes_set), exp->sizes_set, act->sizes_set);
	expect_int(FIELD_CTX(tc_hook), exp->tc_hook, act->tc_hook);
	expect_int(FIELD_CTX(size_min_slot), exp->size_min_slot, act->size_min_slot);
	expect_int(FIELD_CTX(size_max_slot), exp->size_max_slot, act->size_max_slot);
#undef FIELD_CTX
}

/* Applies `doc` as "t.yaml"; returns the result and what was written to the error stream. */
static int apply(struct config *cfg, const char *doc, char **errors)
{
	size_t size = 0;
	FILE *err = open_memstream(errors, &size);
	int ret;

	assert_non_null(err);
	ret = config_apply_string(cfg, "t.yaml", doc, strlen(doc), err);
	fclose(err);
	return ret;
}

/* Whether the series budget of cfg leaves the family NAME out. */
static bool family_off(const struct config *cfg, const char *name)
{
	const struct expo_family *f = metrics_family_find(name);

	assert_non_null(f);
	return config_family_off(cfg, f);
}

static void load_default(struct config *cfg)
{
	int ret = config_load_default(cfg);

	expect_int("config_load_default", 0, ret);
}

static void test_embedded_default_loads_documented_values(void **state)
{
	struct config cfg;

	load_default(&cfg);
	assert_string_equal(":19472", cfg.listen);
	assert_int_equal(LOG_INFO, cfg.log_level);
	assert_string_equal("/proc", cfg.proc_root);
	assert_int_equal(500, cfg.rescan_interval_ms);
	assert_true(cfg.process_events);
	assert_true(cfg.net_enabled);
	assert_int_equal(256, cfg.max_vms);
	/* Map sizes follow max_vms: a tap per VM, 32 flows per tap, 2 drives per VM. */
	assert_int_equal(256, cfg.max_interfaces);
	assert_int_equal(8192, cfg.max_tcp_flows);
	assert_int_equal(512, cfg.max_drives);
	assert_int_equal(0, cfg.sizes_set);
	assert_int_equal(TC_HOOK_AUTO, cfg.tc_hook);
	assert_int_equal(6, cfg.size_min_slot);  /* 64 bytes */
	assert_int_equal(16, cfg.size_max_slot); /* 65536 bytes */
	assert_int_equal(9, cfg.dsize_min_slot);  /* 512 bytes */
	assert_int_equal(24, cfg.dsize_max_slot); /* 16 MiB */
	assert_int_equal(10, cfg.time_min_slot);  /* 2^-20 s, from 0.000001 */
	assert_int_equal(34, cfg.time_max_slot);  /* 2^4 s */
	assert_int_equal(0, cfg.disabled.nr);
	assert_int_equal(0, cfg.enabled.nr);
}

/* Bad documents and the error each must give. */
static const struct {
	const char *what, *doc, *msg;
} bad_docs[] = {
	{ "unknown top-level key", "lisen: \":1\"\n", "t.yaml:1:1: unknown key 'lisen'" },
	{ "unknown nested key", "network:\n  enabled: true\n  max_ifaces: 5\n",
	  "t.yaml:3:3: unknown key 'max_ifaces'" },
	{ "unknown key two levels down", "network:\n  packet_size_buckets:\n    mid: 128\n",
	  "t.yaml:3:5: unknown key 'mid'" },
	{ "duplicate key", "log_level: info\nlog_level: debug\n",
	  "t.yaml:2:1: duplicate key 'log_level'" },
	{ "duplicate nested key", "discovery:\n  proc: /a\n  proc: /b\n",
	  "t.yaml:3:3: duplicate key 'proc'" },
	{ "mapping where a value is expected", "listen:\n  host: x\n",
	  "t.yaml:2:3: 'listen' must be a single value" },
	{ "sequence where a value is expected", "log_level: [info]\n",
	  "t.yaml:1:12: 'log_level' must be a single value" },
	{ "value where a section is expected", "discovery: 5\n",
	  "t.yaml:1:12: discovery must be a mapping" },
	{ "document that is not a mapping", "- listen\n",
	  "t.yaml:1:1: the configuration must be a mapping" },
	{ "key that is not a name", "? [a]\n: 1\n",
	  "t.yaml:1:3: the configuration: keys must be plain names" },
	{ "number below its range", "discovery:\n  rescan_interval_ms: 5\n",
	  "t.yaml:2:23: 'rescan_interval_ms' must be a whole number from 10 to 3600000" },
	{ "number above its range", "network:\n  max_interfaces: 65536\n",
	  "t.yaml:2:19: 'max_interfaces' must be a whole number from 1 to 65535, or auto" },
	{ "max_vms of 0", "max_vms: 0\n",
	  "t.yaml:1:10: 'max_vms' must be a whole number from 1 to 65535" },
	{ "max_vms is never auto", "max_vms: auto\n",
	  "t.yaml:1:10: 'max_vms' must be a whole number from 1 to 65535" },
	{ "map size neither a number nor auto", "disk:\n  max_drives: Auto\n",
	  "t.yaml:2:15: 'max_drives' must be a whole number from 1 to 65536, or auto" },
	{ "negative number", "network:\n  max_interfaces: -1\n",
	  "t.yaml:2:19: 'max_interfaces' must be a whole number from 1 to 65535, or auto" },
	{ "number with a unit", "discovery:\n  rescan_interval_ms: 500ms\n",
	  "t.yaml:2:23: 'rescan_interval_ms' must be a whole number from 10 to 3600000" },
	{ "number that overflows", "discovery:\n  rescan_interval_ms: 99999999999999999999999\n",
	  "t.yaml:2:23: 'rescan_interval_ms' must be a whole number from 10 to 3600000" },
	{ "bucket bound not a power of two", "network:\n  packet_size_buckets:\n    min: 100\n",
	  "t.yaml:3:10: 'min' must be a power of two" },
	{ "bucket bound past the histogram", "network:\n  packet_size_buckets:\n    max: 262144\n",
	  "t.yaml:3:10: 'max' must be a whole number from 1 to 131072" },
	{ "bucket min above max",
	  "network:\n  packet_size_buckets:\n    min: 4096\n    max: 1024\n",
	  "t.yaml:3:5: network.packet_size_buckets: min must not be above max" },
	{ "bucket min above the default max", "network:\n  packet_size_buckets:\n    min: 131072\n",
	  "t.yaml:3:5: network.packet_size_buckets: min must not be above max" },
	{ "disk size bucket not a power of two", "disk:\n  request_size_buckets:\n    max: 1000\n",
	  "t.yaml:3:10: 'max' must be a power of two" },
	{ "disk size bucket min above max",
	  "disk:\n  request_size_buckets:\n    min: 65536\n    max: 4096\n",
	  "t.yaml:3:5: disk.request_size_buckets: min must not be above max" },
	{ "time bucket not a number", "exposition:\n  time_buckets:\n    min: 1us\n",
	  "t.yaml:3:10: 'min' must be a number of seconds from 1.86265e-09 (2^-29) to 128 (2^7)" },
	{ "time bucket of zero", "exposition:\n  time_buckets:\n    min: 0\n",
	  "t.yaml:3:10: 'min' must be a number of seconds from 1.86265e-09 (2^-29) to 128 (2^7)" },
	{ "time bucket past the histogram", "exposition:\n  time_buckets:\n    max: 1000\n",
	  "t.yaml:3:10: 'max' must be a number of seconds from 1.86265e-09 (2^-29) to 128 (2^7)" },
	{ "time bucket min above max", "exposition:\n  time_buckets:\n    min: 1\n    max: 0.5\n",
	  "t.yaml:3:5: exposition.time_buckets: min must not be above max" },
	{ "unknown metric family",
	  "exposition:\n  disabled_families:\n    - vmprobe_disk_latency_seconds\n"
	  "    - vmprobe_disk_latency\n",
	  "t.yaml:4:7: unknown metric family 'vmprobe_disk_latency' (vmprobe metrics lists them)" },
	{ "disabled_families not a list", "exposition:\n  disabled_families: vmprobe_vm_info\n",
	  "t.yaml:2:22: 'disabled_families' must be a list of metric family names" },
	{ "disabled_families with a mapping in it",
	  "exposition:\n  disabled_families:\n    - {a: b}\n",
	  "t.yaml:3:7: 'disabled_families' must be a list of metric family names" },
	{ "bad bool", "network:\n  enabled: maybe\n",
	  "t.yaml:2:12: 'enabled' must be true or false" },
	{ "bad bool in discovery", "discovery:\n  process_events: 0\n",
	  "t.yaml:2:19: 'process_events' must be true or false" },
	{ "bad log_level", "log_level: verbose\n",
	  "t.yaml:1:12: log_level 'verbose' is not one of error, warn, info, debug" },
	{ "bad tc_hook", "network:\n  tc_hook: xdp\n",
	  "t.yaml:2:12: tc_hook 'xdp' is not one of auto, tcx, clsact" },
	{ "tc_hook is case-sensitive", "network:\n  tc_hook: TCX\n",
	  "t.yaml:2:12: tc_hook 'TCX' is not one of auto, tcx, clsact" },
	{ "empty string", "discovery:\n  proc: \"\"\n",
	  "t.yaml:2:9: 'proc' must be a non-empty string of reasonable length" },
	{ "bad listen", "listen: \"nocolon\"\n",
	  "t.yaml:1:9: listen 'nocolon' is not HOST:PORT, :PORT or [V6]:PORT" },
	{ "listen with a space before the port", "listen: \"host: 80\"\n",
	  "t.yaml:1:9: listen 'host: 80' is not HOST:PORT, :PORT or [V6]:PORT" },
	{ "number with leading space", "discovery:\n  rescan_interval_ms: \" 500\"\n",
	  "t.yaml:2:23: 'rescan_interval_ms' must be a whole number from 10 to 3600000" },
	{ "a second document", "---\nlog_level: debug\n---\nlog_level: error\n",
	  "t.yaml:4:1: only one YAML document is allowed" },
	{ "listen port out of range", "listen: \":65536\"\n",
	  "t.yaml:1:9: listen ':65536' is not HOST:PORT, :PORT or [V6]:PORT" },
	{ "YAML syntax error: unclosed flow sequence", "listen: [\":1\"\nlog_level: info\n",
	  "t.yaml:2:1: did not find expected ',' or ']' while parsing a flow sequence" },
	{ "YAML syntax error: bad indentation",
	  "network:\n  enabled: true\n max_interfaces: 5\n",
	  "t.yaml:3:2: did not find expected key while parsing a block mapping" },
	{ "YAML syntax error: tab indentation", "network:\n\tenabled: true\n",
	  "t.yaml:2:1: found character that cannot start any token while scanning for the next token" },
};

static void test_bad_document_is_rejected_with_location_and_leaves_config_unchanged(void **state)
{
	struct config before, cfg;
	char *errors;
	int ret;

	load_default(&before);
	/* Not the default, so a failed apply that resets to it would show. */
	before.log_level = LOG_WARN;
	for (size_t i = 0; i < ARRAY_SIZE(bad_docs); i++) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s\n", bad_docs[i].msg);
		cfg = before;
		ret = apply(&cfg, bad_docs[i].doc, &errors);
		expect_int(bad_docs[i].what, -EINVAL, ret);
		expect_str(bad_docs[i].what, msg, errors);
		expect_config_equal(bad_docs[i].what, &before, &cfg);
		free(errors);
	}
}

static void test_failed_apply_drops_the_valid_settings_before_the_error(void **state)
{
	const char *doc = "listen: \"127.0.0.1:9100\"\n"
			  "log_level: debug\n"
			  "network:\n"
			  "  max_interfaces: 8\n"
			  "  enabled: maybe\n";
	struct config before, cfg;
	char *errors;

	load_default(&before);
	cfg = before;
	assert_int_equal(-EINVAL, apply(&cfg, doc, &errors));
	assert_string_equal("t.yaml:5:12: 'enabled' must be true or false\n", errors);
	expect_config_equal("after a failed apply", &before, &cfg);
	free(errors);
}

static void set_debug(struct config *c) { c->log_level = LOG_DEBUG; }
static void set_listen_v6(struct config *c) { snprintf(c->listen, sizeof(c->listen), "[::1]:9100"); }
static void set_proc(struct config *c) { snprintf(c->proc_root, sizeof(c->proc_root), "/host/proc"); }
static void set_net_off(struct config *c) { c->net_enabled = false; }
static void set_small_net(struct config *c)
{
	c->max_interfaces = 8;
	c->max_tcp_flows = 8 * CONFIG_FLOWS_PER_IFACE;
	c->sizes_set = CONFIG_SET_IFACES;
	c->size_max_slot = 10;
}
static void set_200_vms(struct config *c)
{
	c->max_vms = 200;
	c->max_interfaces = 200;
	c->max_tcp_flows = 6400;
	c->max_drives = 400;
}
static void set_vms_no_flows(struct config *c)
{
	c->max_vms = 10;
	c->max_interfaces = 10;
	c->max_tcp_flows = 0;
	c->max_drives = 20;
	c->sizes_set = CONFIG_SET_FLOWS;
}
static void set_vms_many_drives(struct config *c)
{
	c->max_vms = 40000;
	c->max_interfaces = 40000;
	c->max_tcp_flows = 40000 * CONFIG_FLOWS_PER_IFACE;
	c->max_drives = 65536; /* 2 x 40000 is past the key's range */
}
static void set_rescan(struct config *c) { c->rescan_interval_ms = 10; }
static void set_events_off(struct config *c) { c->process_events = false; }
static void set_size_one(struct config *c) { c->size_min_slot = 0; }
static void set_tcx(struct config *c) { c->tc_hook = TC_HOOK_TCX; }
static void set_clsact(struct config *c) { c->tc_hook = TC_HOOK_CLSACT; }

static void test_overrides_change_only_the_keys_they_set(void **state)
{
	static const struct {
		const char *what, *doc;
		void (*change)(struct config *);
	} cases[] = {
		{ "log_level", "log_level: debug\n", set_debug },
		{ "IPv6 listen", "listen: \"[::1]:9100\"\n", set_listen_v6 },
		{ "proc", "discovery:\n  proc: /host/proc\n", set_proc },
		{ "rescan at its minimum", "discovery:\n  rescan_interval_ms: 10\n", set_rescan },
		{ "process_events: false", "discovery:\n  process_events: false\n", set_events_off },
		{ "enabled: false", "network:\n  enabled: false\n", set_net_off },
		{ "enabled: no", "network:\n  enabled: no\n", set_net_off },
		{ "enabled: off", "network:\n  enabled: off\n", set_net_off },
		{ "enabled: False (YAML 1.1 capitalised)", "network:\n  enabled: False\n", set_net_off },
		{ "one of two bucket bounds",
		  "network:\n  max_interfaces: 8\n  packet_size_buckets:\n    max: 1024\n",
		  set_small_net },
		{ "bucket min of 1 byte", "network:\n  packet_size_buckets:\n    min: 1\n",
		  set_size_one },
		{ "max_vms sizes the maps no key sets", "max_vms: 200\n", set_200_vms },
		{ "max_vms with flow tracking off", "max_vms: 10\nnetwork:\n  max_tcp_flows: 0\n",
		  set_vms_no_flows },
		{ "max_vms whose 2 drives per VM pass max_drives' range", "max_vms: 40000\n",
		  set_vms_many_drives },
		{ "tc_hook: tcx", "network:\n  tc_hook: tcx\n", set_tcx },
		{ "tc_hook: clsact, flow style", "network: {tc_hook: clsact}\n", set_clsact },
	};
	struct config def, want, cfg;
	char *errors;
	int ret;

	load_default(&def);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		want = def;
		cases[i].change(&want);
		cfg = def;
		ret = apply(&cfg, cases[i].doc, &errors);
		expect_int(cases[i].what, 0, ret);
		expect_str(cases[i].what, "", errors);
		expect_config_equal(cases[i].what, &want, &cfg);
		free(errors);
	}
}

/* A size one file set stays when a later file changes max_vms; the others follow it. */
static void test_a_size_set_by_a_file_outlives_a_later_max_vms(void **state)
{
	struct config cfg;
	char *errors;

	load_default(&cfg);
	expect_int("first file", 0, apply(&cfg, "network:\n  max_interfaces: 8\n", &errors));
	free(errors);
	expect_int("second file", 0, apply(&cfg, "max_vms: 100\n", &errors));
	free(errors);
	expect_int("max_interfaces, set by the first file", 8, cfg.max_interfaces);
	expect_int("max_tcp_flows, from max_interfaces", 8 * CONFIG_FLOWS_PER_IFACE, cfg.max_tcp_flows);
	expect_int("max_drives, from the second file's max_vms", 200, cfg.max_drives);
	expect_int("third file", 0, apply(&cfg, "network:\n  max_interfaces: auto\n", &errors));
	free(errors);
	expect_int("max_interfaces back to auto: max_vms", 100, cfg.max_interfaces);
	expect_int("max_tcp_flows, from it", 100 * CONFIG_FLOWS_PER_IFACE, cfg.max_tcp_flows);
}

static void test_empty_or_comment_only_document_changes_nothing(void **state)
{
	static const char *const docs[] = { "", "\n", "# only a comment\n", "---\n", "---\n...\n",
					    "network:\n", "network:\n  # nothing yet\n",
					    "discovery: ~\n" };
	struct config def, cfg;
	char *errors;
	int ret;

	load_default(&def);
	for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
		cfg = def;
		ret = apply(&cfg, docs[i], &errors);
		expect_int(docs[i], 0, ret);
		expect_str(docs[i], "", errors);
		expect_config_equal(docs[i], &def, &cfg);
		free(errors);
	}
}

static void test_apply_file_reads_the_file_and_names_it_in_errors(void **state)
{
	char path[] = "/tmp/vmprobe-test-config-XXXXXX";
	const char *doc = "network:\n  max_interfaces: 0\n";
	struct config def, cfg;
	char *errors, want[256];
	size_t size = 0;
	FILE *err;
	int fd;

	load_default(&def);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal((ssize_t)strlen(doc), write(fd, doc, strlen(doc)));
	close(fd);

	cfg = def;
	err = open_memstream(&errors, &size);
	assert_int_equal(-EINVAL, config_apply_file(&cfg, path, err));
	fclose(err);
	snprintf(want, sizeof(want),
		 "%s:2:19: 'max_interfaces' must be a whole number from 1 to 65535, or auto\n", path);
	assert_string_equal(want, errors);
	expect_config_equal("after a bad file", &def, &cfg);
	free(errors);

	unlink(path);
	err = open_memstream(&errors, &size);
	assert_int_equal(-ENOENT, config_apply_file(&cfg, path, err));
	fclose(err);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory\n", path);
	assert_string_equal(want, errors);
	free(errors);
}

static void test_series_budget_keys(void **state)
{
	struct config cfg;
	char *errors;

	load_default(&cfg);
	assert_int_equal(0, apply(&cfg,
				  "exposition:\n"
				  "  disabled_families: [vmprobe_disk_operations_total,\n"
				  "                      vmprobe_network_packets_total]\n"
				  "  time_buckets: {min: 0.00005, max: 3}\n"
				  "disk:\n"
				  "  request_size_buckets: {min: 4096, max: 1048576}\n",
				  &errors));
	assert_string_equal("", errors);
	free(errors);
	assert_int_equal(2, cfg.disabled.nr);
	assert_true(family_off(&cfg, "vmprobe_disk_operations_total"));
	assert_true(family_off(&cfg, "vmprobe_network_packets_total"));
	assert_false(family_off(&cfg, "vmprobe_disk_latency_seconds"));
	/* Rounded out: 50 us down to 2^-15 s (30.5 us), 3 s up to 2^2 s. */
	assert_int_equal(15, cfg.time_min_slot);
	assert_int_equal(32, cfg.time_max_slot);
	assert_int_equal(12, cfg.dsize_min_slot);
	assert_int_equal(20, cfg.dsize_max_slot);
	/* An exact power of two stays itself at either end. */
	assert_int_equal(0, apply(&cfg, "exposition:\n  time_buckets: {min: 0.5, max: 0.5}\n",
				  &errors));
	free(errors);
	assert_int_equal(29, cfg.time_min_slot);
	assert_int_equal(29, cfg.time_max_slot);
	/* A later file's list replaces the earlier one; an empty list turns none off. */
	assert_int_equal(0, apply(&cfg, "exposition:\n  disabled_families: []\n", &errors));
	free(errors);
	assert_int_equal(0, cfg.disabled.nr);
	assert_false(family_off(&cfg, "vmprobe_disk_latency_seconds"));
}

/* The counters a histogram's _count and _sum repeat: off unless enabled_families names them. */
static void test_repeated_counters_are_off_by_default(void **state)
{
	static const char *const repeated[] = {
		"vmprobe_disk_operations_total", "vmprobe_disk_bytes_total",
		"vmprobe_network_packets_total", "vmprobe_network_bytes_total",
	};
	struct config cfg;
	char *errors;

	load_default(&cfg);
	for (size_t i = 0; i < ARRAY_SIZE(repeated); i++)
		assert_true(family_off(&cfg, repeated[i]));
	assert_false(family_off(&cfg, "vmprobe_disk_latency_seconds"));
	assert_false(family_off(&cfg, "vmprobe_network_packet_size_bytes"));
	assert_false(family_off(&cfg, "vmprobe_disk_errors_total"));
	assert_int_equal(0, apply(&cfg,
				  "exposition:\n"
				  "  enabled_families: [vmprobe_disk_operations_total,\n"
				  "                     vmprobe_network_bytes_total]\n",
				  &errors));
	assert_string_equal("", errors);
	free(errors);
	assert_false(family_off(&cfg, "vmprobe_disk_operations_total"));
	assert_false(family_off(&cfg, "vmprobe_network_bytes_total"));
	assert_true(family_off(&cfg, "vmprobe_disk_bytes_total"));
	assert_true(family_off(&cfg, "vmprobe_network_packets_total"));
	/* Named in both lists: left out. */
	assert_int_equal(0, apply(&cfg,
				  "exposition:\n  disabled_families: [vmprobe_disk_operations_total]\n",
				  &errors));
	free(errors);
	assert_true(family_off(&cfg, "vmprobe_disk_operations_total"));
	assert_false(family_off(&cfg, "vmprobe_network_bytes_total"));
	/* An unknown name is an error there too. */
	assert_int_equal(-EINVAL, apply(&cfg, "exposition:\n  enabled_families: [vmprobe_nope]\n",
					&errors));
	assert_string_equal("t.yaml:2:22: unknown metric family 'vmprobe_nope' (vmprobe metrics "
			    "lists them)\n", errors);
	free(errors);
}

static void test_parse_listen_accepts_host_port_forms_and_rejects_the_rest(void **state)
{
	static const struct {
		const char *in;
		int ret;
		const char *host;
		unsigned port;
	} cases[] = {
		{ ":9", 0, "", 9 },
		{ ":65535", 0, "", 65535 },
		{ "127.0.0.1:80", 0, "127.0.0.1", 80 },
		{ "localhost:19472", 0, "localhost", 19472 },
		{ "[::1]:19472", 0, "::1", 19472 },
		{ "[::]:1", 0, "::", 1 },
		{ "host:0", -EINVAL, NULL, 0 },
		{ "nocolon", -EINVAL, NULL, 0 },
		{ "[::1]80", -EINVAL, NULL, 0 },
		{ "[::1", -EINVAL, NULL, 0 },
		{ ":65536", -EINVAL, NULL, 0 },
		{ "host:", -EINVAL, NULL, 0 },
		{ "host:-1", -EINVAL, NULL, 0 },
		{ "host:+80", -EINVAL, NULL, 0 },
		{ "host:80x", -EINVAL, NULL, 0 },
		{ "", -EINVAL, NULL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char host[64] = "untouched";
		unsigned port = 4242;
		int ret = config_parse_listen(cases[i].in, host, sizeof(host), &port);

		expect_int(cases[i].in, cases[i].ret, ret);
		if (cases[i].ret)
			continue;
		expect_str(cases[i].in, cases[i].host, host);
		expect_int(cases[i].in, cases[i].port, port);
	}
}

static void test_parse_listen_rejects_a_host_longer_than_the_buffer(void **state)
{
	char host[4];
	unsigned port;

	assert_int_equal(0, config_parse_listen("abc:1", host, sizeof(host), &port));
	assert_string_equal("abc", host);
	assert_int_equal(-EINVAL, config_parse_listen("abcd:1", host, sizeof(host), &port));
	assert_int_equal(-EINVAL, config_parse_listen("[abcd]:1", host, sizeof(host), &port));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded_default_loads_documented_values),
		cmocka_unit_test(test_bad_document_is_rejected_with_location_and_leaves_config_unchanged),
		cmocka_unit_test(test_failed_apply_drops_the_valid_settings_before_the_error),
		cmocka_unit_test(test_overrides_change_only_the_keys_they_set),
		cmocka_unit_test(test_a_size_set_by_a_file_outlives_a_later_max_vms),
		cmocka_unit_test(test_empty_or_comment_only_document_changes_nothing),
		cmocka_unit_test(test_apply_file_reads_the_file_and_names_it_in_errors),
		cmocka_unit_test(test_series_budget_keys),
		cmocka_unit_test(test_repeated_counters_are_off_by_default),
		cmocka_unit_test(test_parse_listen_accepts_host_port_forms_and_rejects_the_rest),
		cmocka_unit_test(test_parse_listen_rejects_a_host_longer_than_the_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

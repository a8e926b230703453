// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The YAML configuration (core/config.c over core/yamldoc.c): any file
 * `vmprobe serve -c` may be given. A file that is refused leaves the
 * configuration as it was; one that is taken gives values serve can use.
 */
#include "fuzz.h"

#include "core/config.h"
#include "core/metrics.h"
#include "probes/net/tc.h"
#include "vmprobe/disk.h"
#include "vmprobe/net.h"

/* A family list taken: within bounds, every name one `vmprobe metrics` lists. */
static void families_valid(const struct config_families *l)
{
	fuzz_assert(l->nr <= CONFIG_MAX_FAMILIES);
	for (unsigned i = 0; i < l->nr; i++)
		fuzz_assert(fuzz_terminated(l->names[i]) && metrics_family_find(l->names[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config base;
	struct config cfg;
	char host[128];
	unsigned port;

	if (!base.max_vms && config_load_default(&base))
		abort();
	cfg = base;
	if (config_apply_string(&cfg, "fuzz.yaml", (const char *)data, size, fuzz_devnull())) {
		fuzz_assert(!memcmp(&cfg, &base, sizeof(cfg)));
		return 0;
	}
	fuzz_assert(fuzz_terminated(cfg.listen) && fuzz_terminated(cfg.proc_root));
	fuzz_assert(!config_parse_listen(cfg.listen, host, sizeof(host), &port));
	fuzz_assert(port >= 1 && port <= 65535);
	fuzz_assert(cfg.proc_root[0]);
	fuzz_assert(cfg.rescan_interval_ms >= 10 && cfg.rescan_interval_ms <= 3600000);
	fuzz_assert(cfg.max_vms >= 1 && cfg.max_vms <= 65535);
	fuzz_assert(cfg.max_interfaces >= 1 && cfg.max_interfaces <= 65535);
	fuzz_assert(cfg.max_drives >= 1 && cfg.max_drives <= 65536);
	fuzz_assert(cfg.max_tcp_flows <= 16777216 && cfg.tc_hook < TC_HOOK_MAX);
	fuzz_assert(cfg.size_min_slot <= cfg.size_max_slot && cfg.size_max_slot < NET_SIZE_SLOTS);
	fuzz_assert(cfg.log_level <= LOG_DEBUG && cfg.log_format <= LOG_JSON);
	fuzz_assert(cfg.dsize_min_slot <= cfg.dsize_max_slot && cfg.dsize_max_slot < DISK_SIZE_SLOTS);
	/* 2^-29 s to 2^7 s in slots of 2^-30 s. */
	fuzz_assert(cfg.time_min_slot >= 1 && cfg.time_min_slot <= cfg.time_max_slot &&
		    cfg.time_max_slot <= 37);
	families_valid(&cfg.disabled);
	families_valid(&cfg.enabled);
	return 0;
}

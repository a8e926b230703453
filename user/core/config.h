/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* vmprobe's YAML configuration: the embedded default plus a user file. */
#ifndef VMPROBE_CONFIG_H
#define VMPROBE_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include "core/util.h"

#define CONFIG_MAX_FAMILIES 64
#define CONFIG_FAMILY_NAME 96

/* A list of metric family names (exposition.*_families), each checked. */
struct config_families {
	char names[CONFIG_MAX_FAMILIES][CONFIG_FAMILY_NAME];
	unsigned nr;
};

struct config {
	char listen[128];
	enum log_level log_level;
	enum log_format log_format;
	bool persist; /* serve's programs and counters outlive it (core/pin.h) */
	char proc_root[256];
	unsigned rescan_interval_ms;
	bool process_events; /* exec/exit hooks (core/proc_events.c) */
	bool net_enabled;
	unsigned max_interfaces;
	unsigned max_tcp_flows; /* 0: no TCP flow tracking */
	unsigned tc_hook;       /* enum tc_hook */
	unsigned size_min_slot; /* log2 of packet_size_buckets.min */
	unsigned size_max_slot;
	bool disk_enabled;
	bool host_block_latency;
	bool vcpu_enabled;
	bool native_histograms;   /* protobuf: native buckets in histograms */
	bool classic_in_protobuf; /* protobuf: classic buckets too */
	bool openmetrics_created; /* OpenMetrics: _created samples */
	/* exposition.disabled_families: families left out */
	struct config_families disabled;
	/* exposition.enabled_families: families off by default turned on */
	struct config_families enabled;
	/* exposition.time_buckets, in log2 slots of TIME_SLOT_UNITS (2^-30 s) */
	unsigned time_min_slot, time_max_slot;
	/* disk.request_size_buckets: log2 of min and max, bytes */
	unsigned dsize_min_slot, dsize_max_slot;
	unsigned max_drives;
	unsigned max_vms;    /* the sizes below follow it unless a file sets them */
	unsigned sizes_set;  /* CONFIG_SET_*: the sizes a file set */
};

enum {
	CONFIG_SET_IFACES = 1 << 0, /* network.max_interfaces, else max_vms */
	CONFIG_SET_FLOWS = 1 << 1,  /* network.max_tcp_flows, else 32 per interface */
	CONFIG_SET_DRIVES = 1 << 2, /* disk.max_drives, else 2 per VM */
};
#define CONFIG_FLOWS_PER_IFACE 32

/* The YAML text built into the binary. */
extern const char config_default_yaml[];

/* Fills `cfg` from the embedded default; 0 or -errno. */
int config_load_default(struct config *cfg);

/*
 * Applies a YAML document on top of `cfg`. `name` is used in messages;
 * errors go to `err` as "name:line:column: what" and return -EINVAL
 * (-errno if the file cannot be read).
 */
int config_apply_file(struct config *cfg, const char *path, FILE *err);
int config_apply_string(struct config *cfg, const char *name, const char *text, size_t len,
			FILE *err);

struct expo_family;

/*
 * Whether the series budget leaves the family out: disabled_families
 * names it, or it is off by default and enabled_families does not.
 */
bool config_family_off(const struct config *cfg, const struct expo_family *f);

/* Splits "HOST:PORT", ":PORT" or "[V6]:PORT"; 0 or -EINVAL. */
int config_parse_listen(const char *s, char *host, size_t host_size, unsigned *port);

#endif

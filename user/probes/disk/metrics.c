// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The disk probe's own metric families: host block devices and its health (drives: core/storage.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "probes/disk/disk_probe.h"

enum { F_HOST_BLOCK, F_SOURCE_ON, F_SOURCE_REQS, F_UNMEASURED, F_MAX };

static const struct expo_family fams[F_MAX] = {
	[F_HOST_BLOCK] = { "vmprobe_host_block_latency_seconds", EXPO_HISTOGRAM, "seconds",
			   "device,operation",
			   "Host block device latency, issue to completion, all IO." },
	[F_SOURCE_ON] = { "vmprobe_disk_source_enabled", EXPO_GAUGE, "", "source",
			  "Whether this kernel lets vmprobe measure an AIO mode (1) or not (0)." },
	[F_SOURCE_REQS] = { "vmprobe_disk_source_requests_total", EXPO_COUNTER, "", "source",
			    "VM disk requests measured, by the AIO mode's source." },
	[F_UNMEASURED] = { "vmprobe_disk_unmeasured_requests_total", EXPO_COUNTER, "", "reason",
			   "VM disk requests vmprobe saw but could not measure, by reason (inflight_full, "
			   "io_uring_fixed_file, native_mixed_drives, host_block_no_timestamp)." },
};

const struct expo_family *disk_families(size_t *nr)
{
	*nr = F_MAX;
	return fams;
}

/* Device names read this scrape: a device's four operations ask for it once. */
#define DEV_NAMES 64

struct dev_render {
	struct expo *e;
	struct strbuf lb;
	struct { __u32 dev; char name[64]; } names[DEV_NAMES];
	unsigned nr_names;
	char other[64]; /* a name past DEV_NAMES */
};

/* The kernel's name of a device (its uevent's DEVNAME), else MAJOR:MINOR. */
static const char *dev_name(struct dev_render *r, __u32 dev)
{
	char path[128], text[512], *p, *name;

	for (unsigned i = 0; i < r->nr_names; i++)
		if (r->names[i].dev == dev)
			return r->names[i].name;
	name = r->other;
	if (r->nr_names < DEV_NAMES) {
		r->names[r->nr_names].dev = dev;
		name = r->names[r->nr_names++].name;
	}
	snprintf(name, sizeof(r->other), "%u:%u", dev >> 20, dev & 0xfffff);
	snprintf(path, sizeof(path), "/sys/dev/block/%s/uevent", name);
	if (read_file(path, text, sizeof(text)) > 0 && (p = strstr(text, "DEVNAME=")))
		snprintf(name, sizeof(r->other), "%.*s", (int)strcspn(p + 8, "\n"), p + 8);
	return name;
}

static int render_dev(const struct blkdev_key *k, const struct blkdev_stats *st, void *arg)
{
	struct dev_render *r = arg;

	if (k->op >= DISK_OP_MAX)
		return 0;
	struct expo_label l[] = { { "device", dev_name(r, k->dev) },
				  { "operation", disk_op_names[k->op] } };

	sb_reset(&r->lb);
	expo_labels(&r->lb, l, ARRAY_SIZE(l));
	expo_histogram(r->e, fams[F_HOST_BLOCK].name, r->lb.buf, st->lat_slots, DISK_LAT_SLOTS,
		       &r->e->time_range, st->lat_sum_ns);
	return 0;
}

void disk_render(struct probe *p, struct discovery *d, struct expo *e)
{
	struct disk_probe *dp = p->priv;
	struct dev_render r = { .e = e };

	if (!dp->host_block_on)
		return;
	expo_family(e, &fams[F_HOST_BLOCK]);
	sb_init(&r.lb);
	disk_dev_foreach(dp, render_dev, &r);
	sb_free(&r.lb);
}

/* A family with one sample per value of `key`, from names[] and value(i). */
static void render_by(struct expo *e, const struct expo_family *f, const char *key,
		      const char *const *names, unsigned n, const struct disk_probe *dp,
		      __u64 (*value)(const struct disk_probe *dp, unsigned i))
{
	struct strbuf lb;

	sb_init(&lb);
	expo_family(e, f);
	for (unsigned i = 0; i < n; i++) {
		struct expo_label l[] = { { key, names[i] } };

		sb_reset(&lb);
		expo_labels(&lb, l, 1);
		expo_u64(e, f->name, lb.buf, value(dp, i));
	}
	sb_free(&lb);
}

static __u64 source_on(const struct disk_probe *dp, unsigned s)
{
	return dp->source_on[s];
}

void disk_render_self(struct probe *p, struct discovery *d, struct expo *e)
{
	static const char *const err_names[DISK_ERR_MAX] = {
		[DISK_ERR_INFLIGHT_FULL] = "inflight_full",
		[DISK_ERR_FIXED_FILE] = "io_uring_fixed_file",
		[DISK_ERR_NATIVE_AMBIGUOUS] = "native_mixed_drives",
		[DISK_ERR_NO_TIMESTAMP] = "host_block_no_timestamp",
	};
	struct disk_probe *dp = p->priv;

	render_by(e, &fams[F_SOURCE_ON], "source", disk_src_names, DISK_SRC_MAX, dp, source_on);
	render_by(e, &fams[F_SOURCE_REQS], "source", disk_src_names, DISK_SRC_MAX, dp,
		  disk_source_count);
	render_by(e, &fams[F_UNMEASURED], "reason", err_names, DISK_ERR_MAX, dp,
		  disk_error_count);
}

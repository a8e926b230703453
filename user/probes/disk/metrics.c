// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The disk probe's own metric families: host block devices and its health (drives: core/storage.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "probes/disk/disk_probe.h"

enum { F_HOST_BLOCK, F_SOURCE_ON, F_SOURCE_REQS, F_UNMEASURED, F_CLOCK_SKEW, F_MAX };

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
	[F_CLOCK_SKEW] = { "vmprobe_disk_clock_skew_requests_total", EXPO_COUNTER, "", "",
			   "VM disk and host block requests that ended, by the clock of the CPU that "
			   "saw the end, before they started by another CPU's: counted, with latency 0." },
};

const struct expo_family *disk_families(size_t *nr)
{
	*nr = F_MAX;
	return fams;
}

/*
 * Device names are kept between scrapes, so that a scrape reads no sysfs
 * file for them: a host with hundreds of devices (a dm device per
 * LVM-backed drive) paid one read each per scrape. A number's name changes
 * only if its device goes and another takes the number (nvme's are
 * dynamic): every name is read again each DEV_NAMES_SECONDS.
 */
#define DEV_NAMES_SECONDS 60

struct dev_render {
	struct expo *e;
	struct strbuf lb;
	struct disk_probe *dp;
	char other[64]; /* a name with no room in the cache, or when it cannot be had */
};

/* The kernel's name of device dev (its uevent's DEVNAME), else MAJOR:MINOR, into name. */
static void dev_name_read(__u32 dev, char *name, size_t size)
{
	char path[128], text[512], *p;

	snprintf(name, size, "%u:%u", dev >> 20, dev & 0xfffff);
	snprintf(path, sizeof(path), "/sys/dev/block/%s/uevent", name);
	if (read_file(path, text, sizeof(text)) > 0 && (p = strstr(text, "DEVNAME=")))
		snprintf(name, size, "%.*s", (int)strcspn(p + 8, "\n"), p + 8);
}

/* The probe's name cache for this scrape: made the first time, emptied when it is too old. */
static void dev_names_fresh(struct disk_probe *dp)
{
	double now = now_seconds();

	if (!dp->dev_names) {
		dp->dev_names = calloc(DISK_DEV_SLOTS, sizeof(*dp->dev_names));
		dp->dev_names_at = now;
	} else if (now - dp->dev_names_at > DEV_NAMES_SECONDS) {
		memset(dp->dev_names, 0, DISK_DEV_SLOTS * sizeof(*dp->dev_names));
		dp->dev_names_at = now;
	}
}

/* The name of dev, from the probe's cache (open addressing by number), read if not there. */
static const char *dev_name(struct dev_render *r, __u32 dev)
{
	struct disk_probe *dp = r->dp;

	for (unsigned i = 0; dp->dev_names && i < DISK_DEV_SLOTS; i++) {
		struct disk_dev_name *n = &dp->dev_names[(dev + i) % DISK_DEV_SLOTS];

		if (n->dev == dev + 1)
			return n->name;
		if (!n->dev) {
			n->dev = dev + 1;
			dev_name_read(dev, n->name, sizeof(n->name));
			return n->name;
		}
	}
	dev_name_read(dev, r->other, sizeof(r->other));
	return r->other;
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
	struct dev_render r = { .e = e, .dp = dp };

	if (!dp->host_block_on)
		return;
	expo_family(e, &fams[F_HOST_BLOCK]);
	dev_names_fresh(dp);
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
	static const char *const err_names[DISK_ERR_CLOCK_SKEW] = {
		[DISK_ERR_INFLIGHT_FULL] = "inflight_full",
		[DISK_ERR_FIXED_FILE] = "io_uring_fixed_file",
		[DISK_ERR_NATIVE_AMBIGUOUS] = "native_mixed_drives",
		[DISK_ERR_NO_TIMESTAMP] = "host_block_no_timestamp",
	};
	struct disk_probe *dp = p->priv;

	render_by(e, &fams[F_SOURCE_ON], "source", disk_src_names, DISK_SRC_MAX, dp, source_on);
	render_by(e, &fams[F_SOURCE_REQS], "source", disk_src_names, DISK_SRC_MAX, dp,
		  disk_source_count);
	render_by(e, &fams[F_UNMEASURED], "reason", err_names, DISK_ERR_CLOCK_SKEW, dp,
		  disk_error_count);
	metrics_single_u64(e, &fams[F_CLOCK_SKEW], disk_error_count(dp, DISK_ERR_CLOCK_SKEW));
}

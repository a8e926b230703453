// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The network-disk probe's entry in the VM table's seam (core/probe.h), and its health. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/discovery.h"
#include "core/metrics.h"
#include "netdisk.skel.h"
#include "probes/netdisk/netdisk_probe.h"

static bool netdisk_wanted(const struct config *cfg, enum probe_mode mode)
{
	return cfg->disk_enabled;
}

static int netdisk_open(struct probe *p, const struct config *cfg, enum probe_mode mode)
{
	return netdisk_probe_open(p->priv, cfg->max_drives, p->pins);
}

static void netdisk_close(struct probe *p)
{
	netdisk_probe_close(p->priv);
}


static int netdisk_event_fd(struct probe *p)
{
	return netdisk_events_fd(p->priv);
}

static void netdisk_events(struct probe *p, struct discovery *d)
{
	pid_t pids[NETDISK_MAX_PENDING];
	int n;

	pthread_mutex_lock(&d->lock);
	n = netdisk_events_consume(p->priv, pids, NETDISK_MAX_PENDING);
	pthread_mutex_unlock(&d->lock);
	for (int i = 0; i < n; i++)
		discovery_poke(d, pids[i]);
}

enum { F_LOST, F_UNMATCHED, F_DROPPED, F_MAX };

static const struct expo_family fams[F_MAX] = {
	[F_LOST] = { "vmprobe_netdisk_lost_requests_total", EXPO_COUNTER, "", "",
		     "rbd and iSCSI requests the probe could not follow: its in-flight table "
		     "was full, or they had not completed after a day (a submit that failed, "
		     "a dropped task); not measured." },
	[F_UNMATCHED] = { "vmprobe_netdisk_unmatched_sessions", EXPO_GAUGE, "", "",
			  "librbd or libiscsi sessions of VMs that no drive could be matched to: "
			  "their requests are not counted (the log says which VM)." },
	[F_DROPPED] = { "vmprobe_netdisk_session_events_dropped_total", EXPO_COUNTER, "", "",
			"First requests of rbd or iSCSI sessions not kept for matching (too "
			"many unmatched sessions): their requests are not counted until one "
			"is kept." },
};

static const struct expo_family *netdisk_families(size_t *nr)
{
	*nr = F_MAX;
	return fams;
}

static void netdisk_render_self(struct probe *p, struct discovery *d, struct expo *e)
{
	struct netdisk_probe *np = p->priv;

	metrics_single_u64(e, &fams[F_LOST],
			   netdisk_error_count(np, NETDISK_ERR_INFLIGHT_FULL) +
				   netdisk_error_count(np, NETDISK_ERR_FORGOTTEN));
	metrics_single_u64(e, &fams[F_UNMATCHED], (__u64)np->nr_pending);
	metrics_single_u64(e, &fams[F_DROPPED], np->events_dropped);
}

static struct bpf_object *netdisk_object(struct probe *p)
{
	return ((struct netdisk_probe *)p->priv)->skel->obj;
}

const struct probe_ops netdisk_probe_ops = {
	.name = "netdisk",
	.title = "network-disk",
	.wanted = netdisk_wanted,
	.priv_size = sizeof(struct netdisk_probe),
	.open = netdisk_open,
	.close = netdisk_close,
	.vm_add = netdisk_vm_add,
	.vm_pending = netdisk_vm_pending,
	.vm_sync = netdisk_vm_sync,
	.vm_del = netdisk_vm_del,
	.adopted = netdisk_adopted,
	.event_fd = netdisk_event_fd,
	.events = netdisk_events,
	.families = netdisk_families,
	.render_self = netdisk_render_self,
	.drive_store = netdisk_drive_store,
	.drive_errors = netdisk_drive_errors,
	.object = netdisk_object,
};

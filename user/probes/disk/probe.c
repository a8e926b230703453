// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The disk probe's entry in the VM table's seam (core/probe.h). */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/discovery.h"
#include "disk.skel.h"
#include "probes/disk/disk_probe.h"

static bool disk_wanted(const struct config *cfg, enum probe_mode mode)
{
	return cfg->disk_enabled;
}

/* top and hist show no host block latency: they leave its hook off. */
static int disk_open(struct probe *p, const struct config *cfg, enum probe_mode mode)
{
	return disk_probe_open(p->priv, cfg->max_drives,
			       mode == PROBE_SERVE && cfg->host_block_latency, p->pins);
}

static void disk_close(struct probe *p)
{
	disk_probe_close(p->priv);
}

static void disk_adopted_op(struct probe *p, struct discovery *d)
{
	disk_adopted(p->priv);
}

static int disk_event_fd(struct probe *p)
{
	return disk_events_fd(p->priv);
}

static void poke(__u32 tgid, void *arg)
{
	discovery_poke(arg, (pid_t)tgid);
}

static void disk_events(struct probe *p, struct discovery *d)
{
	disk_events_consume(p->priv, poke, d);
}

static struct bpf_object *disk_object(struct probe *p)
{
	return ((struct disk_probe *)p->priv)->skel->obj;
}

/* Every request's result is seen: a syscall's return, an io_uring CQE, a block status. */
static bool disk_drive_errors(const struct probe *p, const struct vm_disk *disk)
{
	return true;
}

const struct probe_ops disk_probe_ops = {
	.name = "disk",
	.title = "disk",
	.wanted = disk_wanted,
	.priv_size = sizeof(struct disk_probe),
	.open = disk_open,
	.close = disk_close,
	.vm_add = disk_vm_add,
	.vm_pending = disk_vm_pending,
	.vm_sync = disk_vm_sync,
	.vm_del = disk_vm_del,
	.event_fd = disk_event_fd,
	.events = disk_events,
	.families = disk_families,
	.render = disk_render,
	.render_self = disk_render_self,
	.drive_store = disk_drive_store,
	.drive_errors = disk_drive_errors,
	.adopted = disk_adopted_op,
	.object = disk_object,
};

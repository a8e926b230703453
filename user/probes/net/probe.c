// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The network probe's entry in the VM table's seam (core/probe.h). */
#include <errno.h>
#include <json-c/json.h>
#include <net/if.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/discovery.h"
#include "core/netns.h"
#include "net.skel.h"
#include "probes/net/net_probe.h"
#include "probes/net/tc.h"

static bool net_wanted(const struct config *cfg, enum probe_mode mode)
{
	return cfg->net_enabled;
}

static int net_open(struct probe *p, const struct config *cfg, enum probe_mode mode)
{
	struct net_sizes sz = { cfg->max_vms, cfg->max_interfaces, cfg->max_tcp_flows };

	return net_probe_open(p->priv, &sz, cfg->tc_hook, p->pins);
}

static void net_close(struct probe *p)
{
	net_probe_close(p->priv);
}

static void net_adopted_op(struct probe *p, struct discovery *d)
{
	net_adopted(p->priv);
}

static void net_state(struct probe *p, const struct vm *vm, struct json_object *out)
{
	json_object *taps = json_object_new_array();

	for (int i = 0; i < vm->nr_ifaces; i++) {
		json_object *t = json_object_new_object();
		const char *hook = net_iface_hook(p, &vm->ifaces[i]);

		json_object_object_add(t, "interface", json_object_new_string(vm->ifaces[i].label));
		json_object_object_add(t, "tap", json_object_new_string(vm->ifaces[i].tap));
		json_object_object_add(t, "slot",
				       json_object_new_int(net_iface_slot(p, &vm->ifaces[i])));
		json_object_object_add(t, "hook", hook ? json_object_new_string(hook) : NULL);
		json_object_array_add(taps, t);
	}
	json_object_object_add(out, "taps", taps);
}

static struct bpf_object *net_object(struct probe *p)
{
	return ((struct net_probe *)p->priv)->skel->obj;
}

/* What a sweep did: filters removed, and the last failure (-errno). */
struct sweep {
	int removed;
	int err;
};

/* Every vmprobe filter on the devices of the current namespace. */
static void sweep_here(void *arg)
{
	struct sweep *sw = arg;
	struct if_nameindex *ifs = if_nameindex();

	if (!ifs) {
		sw->err = -errno;
		return;
	}
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		/* TC_MAX_STALE a hook at a time. */
		for (int round = 0, n = 1; round < 64 && n > 0; round++) {
			n = tc_remove_stale((int)i->if_index, &sw->err);
			sw->removed += n;
		}
	}
	if_freenameindex(ifs);
}

/*
 * clsact filters hold their programs without any fd or pin: those a serve
 * lost track of stay attached. Found by name in every namespace.
 */
static int net_sweep(const struct config *cfg)
{
	struct sweep sw = { 0 };
	int err = netns_foreach(cfg->proc_root, sweep_here, &sw);

	if (sw.removed && (err < 0 || sw.err))
		log_warn("the network probe: removed %d filters left attached that no pin led to, "
			 "but not all it looked for", sw.removed);
	if (err < 0)
		return err;
	return sw.err ? sw.err : sw.removed;
}

const struct probe_ops net_probe_ops = {
	.name = "net",
	.title = "network",
	.wanted = net_wanted,
	.priv_size = sizeof(struct net_probe),
	.open = net_open,
	.close = net_close,
	.vm_add = net_vm_add,
	.vm_pending = net_vm_pending,
	.vm_sync = net_vm_sync,
	.vm_del = net_vm_del,
	.families = net_families,
	.render = net_render,
	.render_self = net_render_self,
	.adopted = net_adopted_op,
	.object = net_object,
	.state = net_state,
	.sweep = net_sweep,
};

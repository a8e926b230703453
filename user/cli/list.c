// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vmprobe list: the VMs discovery finds, with their NICs and drives, and
 * (from serve's state) whether each is measured, or why not.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "core/config.h"
#include "core/discovery.h"
#include "core/netns.h"
#include "core/pin.h"
#include "core/util.h"

struct tap_info {
	char netns[64]; /* "net:[INODE]", as /proc/PID/ns/net reads */
	int ifindex;    /* 0 when the tap is not (or no longer) there */
};

/* Where the tap lives: the VM's network namespace, entered for the lookup. */
static void tap_info(const struct discovery *d, const struct vm *vm, const struct vm_iface *ifc,
		     struct tap_info *ti)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	memset(ti, 0, sizeof(*ti));
	snprintf(path, sizeof(path), "%s/%d/ns/net", d->cfg->proc_root, (int)vm->pid);
	n = readlink(path, ti->netns, sizeof(ti->netns) - 1);
	ti->netns[n > 0 ? n : 0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !ifc->tap[0]) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (netns_enter(fd) == 0) {
		ti->ifindex = (int)if_nametoindex(ifc->tap);
		if (netns_enter(d->home_netns))
			log_error("cannot return to vmprobe's network namespace");
	}
	close(fd);
}

/* QEMU's default when a drive names no aio= mode. */
static const char *drive_aio(const struct vm_drive *dr)
{
	return dr->aio[0] ? dr->aio : "threads";
}

/*
 * Whether serve measures a drive or NIC, from its state file: the entry
 * `key`=`label` of the VM's array `what`. Without serve, nobody measures.
 */
struct served {
	json_object *vms; /* serve's, NULL when it does not run */
};

static void coverage_json(const struct served *sv, const struct vm *vm, const char *what,
			  const char *key, const char *label, json_object *out)
{
	json_object *j, *arr, *e, *f;

	for (size_t i = 0; sv->vms && i < json_object_array_length(sv->vms); i++) {
		j = json_object_array_get_idx(sv->vms, i);
		if (!json_object_object_get_ex(j, "pid", &f) || json_object_get_int(f) != vm->pid ||
		    !json_object_object_get_ex(j, what, &arr))
			continue;
		for (size_t k = 0; k < json_object_array_length(arr); k++) {
			e = json_object_array_get_idx(arr, k);
			if (!json_object_object_get_ex(e, key, &f) ||
			    strcmp(json_object_get_string(f), label))
				continue;
			if (json_object_object_get_ex(e, "measured", &f))
				json_object_object_add(out, "measured", json_object_get(f));
			if (json_object_object_get_ex(e, "reason", &f))
				json_object_object_add(out, "reason", json_object_get(f));
			return;
		}
	}
	json_object_object_add(out, "measured", NULL);
	json_object_object_add(out, "reason", json_object_new_string(
		sv->vms ? "not in vmprobe serve's table yet" : "vmprobe serve is not running"));
}

static json_object *iface_json(const struct discovery *d, const struct served *sv,
			       const struct vm *vm, const struct vm_iface *ifc)
{
	json_object *t = json_object_new_object();
	struct tap_info ti;

	tap_info(d, vm, ifc, &ti);
	json_object_object_add(t, "interface", json_object_new_string(ifc->label));
	json_object_object_add(t, "tap", json_object_new_string(ifc->tap));
	json_object_object_add(t, "type", json_object_new_string(ifc->type));
	json_object_object_add(t, "netns", json_object_new_string(ti.netns));
	json_object_object_add(t, "ifindex", json_object_new_int(ti.ifindex));
	json_object_object_add(t, "mac", json_object_new_string(ifc->mac));
	json_object_object_add(t, "source", json_object_new_string(vm_source_names[ifc->source]));
	coverage_json(sv, vm, "interfaces", "interface", ifc->label, t);
	return t;
}

static json_object *disk_json(const struct served *sv, const struct vm *vm,
			      const struct vm_disk *disk)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "drive", json_object_new_string(disk->spec.label));
	json_object_object_add(j, "node", json_object_new_string(disk->spec.node));
	json_object_object_add(j, "file", json_object_new_string(disk->spec.file));
	json_object_object_add(j, "aio", json_object_new_string(drive_aio(&disk->spec)));
	json_object_object_add(j, "backend", json_object_new_string(disk->spec.backend));
	json_object_object_add(j, "source", json_object_new_string(vm_source_names[disk->source]));
	/*
	 * Whether QEMU holds its image open (null: not a local image found, or
	 * its fd table could not be read).
	 * A drive of the command line unplugged over QMP is still named there:
	 * one walk of the fd table shows its image closed, serve drops it.
	 */
	json_object_object_add(j, "image_open",
			       disk->resolved && disk->open_known ? json_object_new_boolean(disk->open)
								 : NULL);
	coverage_json(sv, vm, "drives", "drive", disk->spec.label, j);
	return j;
}

static json_object *vm_json(const struct discovery *d, const struct served *sv,
			    const struct vm *vm)
{
	json_object *o = json_object_new_object(), *ifaces = json_object_new_array(),
		    *drives = json_object_new_array();

	json_object_object_add(o, "pid", json_object_new_int(vm->pid));
	json_object_object_add(o, "name", json_object_new_string(vm->name));
	json_object_object_add(o, "namespace", json_object_new_string(vm->ns));
	json_object_object_add(o, "uuid", json_object_new_string(vm->spec.uuid));
	for (int i = 0; i < vm->nr_ifaces; i++)
		json_object_array_add(ifaces, iface_json(d, sv, vm, &vm->ifaces[i]));
	for (int i = 0; i < vm->nr_disks; i++)
		json_object_array_add(drives, disk_json(sv, vm, &vm->disks[i]));
	json_object_object_add(o, "interfaces", ifaces);
	json_object_object_add(o, "drives", drives);
	return o;
}

/* "", or "  NOT MEASURED: why" when serve says so. */
static const char *not_measured(json_object *j, char *buf, size_t size)
{
	json_object *m, *r;

	buf[0] = '\0';
	if (json_object_object_get_ex(j, "measured", &m) && m && !json_object_get_boolean(m) &&
	    json_object_object_get_ex(j, "reason", &r))
		snprintf(buf, size, "  NOT MEASURED: %s", json_object_get_string(r));
	return buf;
}

static void vm_text(json_object *o)
{
	json_object *f, *arr;
	char why[160];

#define S(obj, key) (json_object_object_get_ex(obj, key, &f) ? json_object_get_string(f) : "")
	printf("%s%s%s  pid %s  uuid %s\n", S(o, "namespace"), S(o, "namespace")[0] ? "/" : "",
	       S(o, "name"), S(o, "pid"), S(o, "uuid")[0] ? S(o, "uuid") : "-");
	json_object_object_get_ex(o, "interfaces", &arr);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *t = json_object_array_get_idx(arr, i);

		printf("  iface  %-15s tap %-15s ifindex %-5s %s  mac %s%s\n", S(t, "interface"),
		       S(t, "tap")[0] ? S(t, "tap") : "-", S(t, "ifindex"),
		       S(t, "netns")[0] ? S(t, "netns") : "-", S(t, "mac")[0] ? S(t, "mac") : "-",
		       not_measured(t, why, sizeof(why)));
	}
	json_object_object_get_ex(o, "drives", &arr);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *j = json_object_array_get_idx(arr, i);

		json_object *open = NULL;

		json_object_object_get_ex(j, "image_open", &open);
		printf("  drive  %-15s %-11s aio=%-8s %s%s%s\n", S(j, "drive"), S(j, "backend"),
		       S(j, "aio"), S(j, "file")[0] ? S(j, "file") : "-",
		       open && !json_object_get_boolean(open) ? "  (image not open: unplugged?)" : "",
		       not_measured(j, why, sizeof(why)));
	}
#undef S
}

static const struct cmd_opt list_opts[] = {
	CMD_OPTS_JSON("one array of the VMs, each with its interfaces and drives"),
	{ NULL },
};

static int do_list(int argc, char **argv)
{
	struct served sv = {};
	struct discovery d;
	struct config cfg;
	json_object *arr, *state;
	bool json = false;
	int first, err;

	err = cmd_parse(&cmd_list, argc, argv, cmd_json_opt, &json, &first);
	if (err != CMD_GO)
		return err;
	if (cmd_load_config(&cfg, NULL))
		return EXIT_USAGE;
	log_max_level = LOG_WARN;
	/* No probes: discovery only reads /proc (command lines and tun fds). */
	err = discovery_init(&d, &cfg, NULL);
	if (err) {
		fprintf(stderr, "vmprobe: discovery: %s\n", strerror(-err));
		return EXIT_FAIL;
	}
	discovery_scan(&d);
	state = serve_running() ? json_object_from_file(STATE_PATH) : NULL;
	if (!state || !json_object_object_get_ex(state, "vms", &sv.vms))
		sv.vms = NULL;
	arr = json_object_new_array();
	for (const struct vm *vm = d.vms; vm; vm = vm->next)
		json_object_array_add(arr, vm_json(&d, &sv, vm));
	if (json) {
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		if (!d.vms)
			printf("no QEMU VM on this host\n");
		for (size_t i = 0; i < json_object_array_length(arr); i++)
			vm_text(json_object_array_get_idx(arr, i));
		if (d.vms && !sv.vms)
			printf("(vmprobe serve is not running: what it would not measure is not "
			       "shown)\n");
	}
	json_object_put(arr);
	json_object_put(state);
	discovery_fini(&d);
	return EXIT_OK;
}

const struct cmd cmd_list = {
	.name = "list",
	.fn = do_list,
	.summary = "the VMs, their NICs and drives, and what is not measured",
	.about = "Lists every QEMU VM on this host: PID, UUID, namespace/name, NICs (interface, "
		 "tap, network namespace, ifindex, MAC) and drives (label, backend, AIO mode, "
		 "image), with what vmprobe serve does not measure, and why. Attaches nothing.",
	.opts = list_opts,
};

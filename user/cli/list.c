// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vmprobe list: the VMs discovery finds, with their taps and drives. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
#include "core/util.h"

struct tap_info {
	char netns[64]; /* "net:[INODE]", as /proc/PID/ns/net reads */
	int ifindex;    /* 0 when the tap is not (or no longer) there */
	const char *mac; /* from the command line; "" if no NIC names this tap */
};

/* Where the tap lives: the VM's network namespace, entered for the lookup. */
static void tap_info(const struct discovery *d, const struct vm *vm, const struct vm_tap *t,
		     struct tap_info *ti)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	memset(ti, 0, sizeof(*ti));
	ti->mac = "";
	for (int i = 0; i < vm->spec.nr_nics; i++)
		if (!strcmp(vm->spec.nics[i].ifname, t->ifname))
			ti->mac = vm->spec.nics[i].mac;
	snprintf(path, sizeof(path), "%s/%d/ns/net", d->cfg->proc_root, (int)vm->pid);
	n = readlink(path, ti->netns, sizeof(ti->netns) - 1);
	ti->netns[n > 0 ? n : 0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (netns_enter(fd) == 0) {
		ti->ifindex = (int)if_nametoindex(t->ifname);
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

static json_object *vm_json(const struct discovery *d, const struct vm *vm)
{
	json_object *o = json_object_new_object(), *taps = json_object_new_array(),
		    *drives = json_object_new_array();

	json_object_object_add(o, "pid", json_object_new_int(vm->pid));
	json_object_object_add(o, "name", json_object_new_string(vm->name));
	json_object_object_add(o, "namespace", json_object_new_string(vm->ns));
	json_object_object_add(o, "uuid", json_object_new_string(vm->spec.uuid));
	for (int i = 0; i < vm->nr_taps; i++) {
		json_object *t = json_object_new_object();
		struct tap_info ti;

		tap_info(d, vm, &vm->taps[i], &ti);
		json_object_object_add(t, "interface", json_object_new_string(vm->taps[i].ifname));
		json_object_object_add(t, "netns", json_object_new_string(ti.netns));
		json_object_object_add(t, "ifindex", json_object_new_int(ti.ifindex));
		json_object_object_add(t, "mac", json_object_new_string(ti.mac));
		json_object_array_add(taps, t);
	}
	for (int i = 0; i < vm->spec.nr_drives; i++) {
		const struct vm_drive *dr = &vm->spec.drives[i];
		json_object *j = json_object_new_object();

		json_object_object_add(j, "drive", json_object_new_string(dr->label));
		json_object_object_add(j, "node", json_object_new_string(dr->node));
		json_object_object_add(j, "file", json_object_new_string(dr->file));
		json_object_object_add(j, "aio", json_object_new_string(drive_aio(dr)));
		json_object_array_add(drives, j);
	}
	json_object_object_add(o, "taps", taps);
	json_object_object_add(o, "drives", drives);
	return o;
}

static void vm_text(const struct discovery *d, const struct vm *vm)
{
	printf("%s%s%s  pid %d  uuid %s\n", vm->ns, vm->ns[0] ? "/" : "", vm->name, (int)vm->pid,
	       vm->spec.uuid[0] ? vm->spec.uuid : "-");
	for (int i = 0; i < vm->nr_taps; i++) {
		struct tap_info ti;

		tap_info(d, vm, &vm->taps[i], &ti);
		printf("  tap    %-15s ifindex %-5d %s  mac %s\n", vm->taps[i].ifname, ti.ifindex,
		       ti.netns[0] ? ti.netns : "-", ti.mac[0] ? ti.mac : "-");
	}
	for (int i = 0; i < vm->spec.nr_drives; i++) {
		const struct vm_drive *dr = &vm->spec.drives[i];

		printf("  drive  %-15s aio=%-8s %s\n", dr->label, drive_aio(dr),
		       dr->file[0] ? dr->file : "-");
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vmprobe list [--json]\n"
		   "  Lists every QEMU VM on this host: PID, UUID, namespace/name, taps\n"
		   "  (network namespace, ifindex, MAC) and drives (label, image, AIO mode).\n"
		   "  -j, --json   one JSON array, for scripts\n");
}

int do_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct discovery d;
	struct config cfg;
	json_object *arr;
	bool json = false;
	int opt, err;

	while ((opt = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
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
	if (json) {
		arr = json_object_new_array();
		for (const struct vm *vm = d.vms; vm; vm = vm->next)
			json_object_array_add(arr, vm_json(&d, vm));
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	} else {
		if (!d.vms)
			printf("no QEMU VM on this host\n");
		for (const struct vm *vm = d.vms; vm; vm = vm->next)
			vm_text(&d, vm);
	}
	discovery_fini(&d);
	return EXIT_OK;
}

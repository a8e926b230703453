// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * BPF map memory: every probe's object opened and sized by the loaders'
 * own sizing functions, its maps' kernel memory modelled (core/bpfmap.c)
 * for a host of any CPU count; and the model checked against the kernel's
 * own accounting of the same maps created on this machine.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit.h"

#include "core/bpfmap.h"
#include "core/config.h"
#include "disk.skel.h"
#include "net.skel.h"
#include "netdisk.skel.h"
#include "probes/disk/disk_probe.h"
#include "probes/net/net_probe.h"
#include "probes/netdisk/netdisk_probe.h"

#define MIB (1024.0 * 1024.0)
/* The largest pid_max Linux allows (systemd sets it): the biggest VM tgid bitmap. */
#define PID_MAX_LIMIT 4194304

enum { P_NET, P_DISK, P_NETDISK, P_MAX };
static const char *const probe_names[P_MAX] = { "net", "disk", "netdisk" };

/* The three probes' skeletons, opened and sized as serve would, not loaded. */
struct objs {
	struct net_bpf *net;
	struct disk_bpf *disk;
	struct netdisk_bpf *netdisk;
	struct bpf_object *obj[P_MAX];
};

static void objs_close(struct objs *o)
{
	net_bpf__destroy(o->net);
	disk_bpf__destroy(o->disk);
	netdisk_bpf__destroy(o->netdisk);
}

static void objs_open(struct objs *o, const struct config *cfg, unsigned ncpus)
{
	memset(o, 0, sizeof(*o));
	o->net = net_bpf__open();
	o->disk = disk_bpf__open();
	o->netdisk = netdisk_bpf__open();
	assert_non_null(o->net);
	assert_non_null(o->disk);
	assert_non_null(o->netdisk);
	assert_int_equal(0, net_maps_size(o->net, ncpus,
					  &(struct net_sizes){ cfg->max_vms, cfg->max_interfaces,
							       cfg->max_tcp_flows }));
	assert_int_equal(0, disk_maps_size(o->disk, cfg->max_drives, PID_MAX_LIMIT));
	assert_int_equal(0, netdisk_maps_size(o->netdisk, cfg->max_drives));
	o->obj[P_NET] = o->net->obj;
	o->obj[P_DISK] = o->disk->obj;
	o->obj[P_NETDISK] = o->netdisk->obj;
}

/* The model of every probe on ncpus CPUs, printed per probe; the total. */
static __u64 modelled(const struct config *cfg, unsigned ncpus, const char *what)
{
	struct objs o;
	__u64 total = 0;

	objs_open(&o, cfg, ncpus);
	for (int p = 0; p < P_MAX; p++) {
		__u64 b = bpf_object_memory_model(o.obj[p], ncpus);

		print_message("%s, %u CPUs: %s %.2f MiB\n", what, ncpus, probe_names[p], b / MIB);
		total += b;
	}
	print_message("%s, %u CPUs: total %.2f MiB\n", what, ncpus, total / MIB);
	objs_close(&o);
	return total;
}

static void load_config(struct config *cfg, const char *yaml)
{
	assert_int_equal(0, config_load_default(cfg));
	assert_int_equal(0, config_apply_string(cfg, "test", yaml, strlen(yaml), stderr));
}

static void test_every_map_type_is_modelled(void **state)
{
	struct config cfg;
	const struct bpf_map *m;
	struct objs o;

	load_config(&cfg, "");
	objs_open(&o, &cfg, 64);
	for (int p = 0; p < P_MAX; p++)
		bpf_object__for_each_map(m, o.obj[p])
			if (bpf_map_memory_model(m, 64) == 0)
				fail_msg("%s: map %s of type %d has no model", probe_names[p],
					 bpf_map__name(m), bpf_map__type(m));
	objs_close(&o);
}

/* Every map with an entry per tap holds network.max_interfaces of them. */
static void test_per_tap_maps_hold_max_interfaces(void **state)
{
	static const char *const per_tap[] = { "net_ifaces", "net_slots", "net_born" };
	struct config cfg;
	struct objs o;

	load_config(&cfg, "network:\n  max_interfaces: 4096\n");
	objs_open(&o, &cfg, 2);
	for (size_t i = 0; i < sizeof(per_tap) / sizeof(per_tap[0]); i++)
		expect_int(per_tap[i], 4096,
			   bpf_map__max_entries(bpf_object__find_map_by_name(o.net->obj, per_tap[i])));
	objs_close(&o);
}

/* Issue #16's host: 64 CPUs, 200 VMs, the configuration for 200 VMs. */
static void test_64_cpus_200_vms_fit_in_16_mib(void **state)
{
	struct config cfg;
	__u64 total;

	load_config(&cfg, "max_vms: 200\n");
	total = modelled(&cfg, 64, "200 VMs");
	if (total > 16ULL << 20)
		fail_msg("64 CPUs, 200 VMs: expected at most 16 MiB of BPF maps, modelled %.2f MiB",
			 total / MIB);
}

/* The per-CPU part grows with CPUs and taps, and nothing else does. */
static void test_memory_grows_with_cpus_only_through_the_per_cpu_cells(void **state)
{
	struct config cfg;
	__u64 at2, at64, cell = sizeof(struct net_pkt_cell);

	load_config(&cfg, "");
	at2 = modelled(&cfg, 2, "default");
	at64 = modelled(&cfg, 64, "default");
	/* Also per CPU: the small per-CPU error counters and the hashes' per-CPU spares. */
	if (at64 - at2 < 62ULL * cfg.max_interfaces * NET_DIR_MAX * cell ||
	    at64 - at2 > 62ULL * (cfg.max_interfaces * NET_DIR_MAX * cell + 64 * 1024))
		fail_msg("2 -> 64 CPUs: expected about 62 x %u taps x 2 x %llu bytes more, "
			 "modelled %llu more", cfg.max_interfaces, (unsigned long long)cell,
			 (unsigned long long)(at64 - at2));
}

/* Every map of the object created (no program loaded); 0 or -errno. */
static int create_maps(struct bpf_object *obj)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj)
		bpf_program__set_autoload(prog, false);
	return bpf_object__load(obj);
}

/*
 * The model against the kernel: the same maps, sized for this machine,
 * created for real; the model may be high by a little, never low.
 */
static void test_model_is_the_kernels_accounting_or_a_little_more(void **state)
{
	int ncpus = libbpf_num_possible_cpus();
	struct config cfg;
	struct objs o;

	if (geteuid() != 0) {
		print_message("skipped: creating BPF maps needs root\n");
		skip();
	}
	assert_true(ncpus > 0);
	load_config(&cfg, "");
	objs_open(&o, &cfg, ncpus);
	for (int p = 0; p < P_MAX; p++) {
		__u64 model = bpf_object_memory_model(o.obj[p], ncpus), kernel;
		int err = create_maps(o.obj[p]);

		if (err)
			fail_msg("%s: creating its maps failed (%s)", probe_names[p], strerror(-err));
		kernel = bpf_object_memlock(o.obj[p], NULL);
		print_message("%s, %d CPUs: kernel %llu bytes, model %llu\n", probe_names[p], ncpus,
			      (unsigned long long)kernel, (unsigned long long)model);
		if (kernel == 0 || model < kernel || model > kernel + kernel / 20 + 64 * 1024)
			fail_msg("%s: expected the model within [kernel, kernel + 5%% + 64 KiB], "
				 "kernel %llu, model %llu", probe_names[p],
				 (unsigned long long)kernel, (unsigned long long)model);
	}
	objs_close(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_map_type_is_modelled),
		cmocka_unit_test(test_per_tap_maps_hold_max_interfaces),
		cmocka_unit_test(test_64_cpus_200_vms_fit_in_16_mib),
		cmocka_unit_test(test_memory_grows_with_cpus_only_through_the_per_cpu_cells),
		cmocka_unit_test(test_model_is_the_kernels_accounting_or_a_little_more),
	};

	libbpf_set_print(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `make bench`: what vmprobe costs per packet and per scrape. Prints
 * `BENCH <name> <value> <unit>` lines and `#` commentary.
 *
 * Per packet: BPF_PROG_TEST_RUN of the tap ingress program against an
 * empty TC program (the floor every TC program pays) and a naive one (a
 * hash-map update per packet, what a generic exporter does), interleaved
 * round by round so drift hits all three alike.
 * Per scrape: metrics_render over a hand-built VM table of 1, 100 and
 * 1000 VMs with nonzero counters.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "bench/ref.skel.h"
#include "config.h"
#include "discovery.h"
#include "metrics.h"
#include "net.h"
#include "netns.h"
#include "ref.h"
#include "util.h"

#define TC_ACT_UNSPEC (-1)
#define TAP_NAME "vmpb-bench"
/* Runs per test_run call: setup and syscall cost vanish against them. */
#define TC_REPEAT 2000000
#define TC_ROUNDS 7
#define RENDER_RUNS 15
/* The goal: vmprobe adds at most half of what the naive program adds. */
#define GOAL_ADDED_RATIO 0.5

enum tc_prog { PROG_EMPTY, PROG_VMPROBE, PROG_NAIVE, PROG_MAX };
static const char *const prog_names[PROG_MAX] = { "empty", "vmprobe", "naive" };

/* 64: the smallest Ethernet frame (sans FCS); 1514: a full 1500-byte MTU. */
static const unsigned frame_sizes[] = { 64, 1514 };
#define NR_SIZES ARRAY_SIZE(frame_sizes)

static double now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, size_t n)
{
	double s[n];

	memcpy(s, v, sizeof(s));
	qsort(s, n, sizeof(s[0]), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* A device for the frames' skb->dev: the run takes its ifindex from ctx. */
static int make_tap(const char *name)
{
	struct ifreq ifr = {};
	int fd = open("/dev/net/tun", O_RDWR);

	if (fd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr)) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* A well-formed Ethernet/IPv4/UDP frame of `size` bytes, as a guest sends. */
static void udp_frame(unsigned char *f, unsigned size)
{
	static const unsigned char dst[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x01 };
	static const unsigned char src[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x02 };
	unsigned char *ip = f + 14, *udp = ip + 20;
	unsigned sum = 0;

	for (unsigned i = 0; i < size; i++)
		f[i] = (unsigned char)(i * 7 + 3);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, size - 14);
	ip[8] = 64;
	ip[9] = 17; /* UDP */
	memcpy(ip + 12, (unsigned char[]){ 10, 0, 0, 2 }, 4);
	memcpy(ip + 16, (unsigned char[]){ 10, 0, 0, 1 }, 4);
	for (int i = 0; i < 20; i += 2)
		sum += (unsigned)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(ip + 10, ~sum & 0xffff);
	put16(udp, 40000);
	put16(udp + 2, 5201);
	put16(udp + 4, size - 14 - 20);
	put16(udp + 6, 0); /* no UDP checksum: allowed over IPv4 */
}

/*
 * Nanoseconds per run of `repeat` runs, from this thread's CPU time (the
 * kernel's own figure, *kernel_ns, is rounded down to whole ns).
 */
static int time_prog(int prog_fd, int ifindex, unsigned char *frame, unsigned size,
		     double *ns, unsigned *kernel_ns)
{
	struct __sk_buff ctx = { .ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = size,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = TC_REPEAT);
	double t0, t1;

	t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	t1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	if ((int)opts.retval != TC_ACT_UNSPEC)
		return -EPROTO;
	*ns = (t1 - t0) / TC_REPEAT;
	*kernel_ns = opts.duration;
	return 0;
}

static void print_tc(const char *suffix, const double ns[PROG_MAX])
{
	double added = (ns[PROG_VMPROBE] - ns[PROG_EMPTY]) / (ns[PROG_NAIVE] - ns[PROG_EMPTY]);

	for (int p = 0; p < PROG_MAX; p++)
		printf("BENCH tc_ns_%s%s %.2f ns\n", prog_names[p], suffix, ns[p]);
	printf("BENCH tc_vmprobe_over_empty_ratio%s %.3f ratio\n", suffix,
	       ns[PROG_VMPROBE] / ns[PROG_EMPTY]);
	printf("BENCH tc_naive_over_empty_ratio%s %.3f ratio\n", suffix,
	       ns[PROG_NAIVE] / ns[PROG_EMPTY]);
	printf("BENCH tc_added_cost_vmprobe_vs_naive_ratio%s %.3f ratio\n", suffix, added);
}

static int bench_tc(struct net_probe *np)
{
	struct ref_key rkey = { .direction = REF_DIR_TX };
	struct ref_value rval = {};
	struct net_iface_key key = {};
	struct ref_bpf *ref = NULL;
	struct net_stats st;
	unsigned char frame[NR_SIZES][2048];
	double ns[PROG_MAX][NR_SIZES][TC_ROUNDS], mix[PROG_MAX][TC_ROUNDS];
	double med[PROG_MAX], med_size[NR_SIZES][PROG_MAX];
	unsigned kns[PROG_MAX][NR_SIZES][TC_ROUNDS];
	__u64 runs = 0, packets = 0;
	int fds[PROG_MAX], tap_fd, ifindex, slot = -1, err;

	tap_fd = make_tap(TAP_NAME);
	if (tap_fd < 0) {
		fprintf(stderr, "bench: creating tap %s failed (%s): run as root with /dev/net/tun\n",
			TAP_NAME, strerror(-tap_fd));
		return tap_fd;
	}
	ifindex = (int)if_nametoindex(TAP_NAME);
	ref = ref_bpf__open_and_load();
	if (!ref) {
		err = -errno;
		fprintf(stderr, "bench: loading the reference programs failed (%s)\n", strerror(-err));
		goto cleanup;
	}
	slot = net_slot_alloc(np);
	if (slot < 0) {
		err = slot;
		goto cleanup;
	}
	/* As net_tap_attach does, minus attaching: the runs call the program directly. */
	err = netns_current_cookie(&key.netns_cookie);
	if (err)
		goto cleanup;
	key.ifindex = ifindex;
	rkey.ifindex = ifindex;
	/*
	 * Both maps hold their entry before the first run, so every timed run
	 * takes the steady-state path: for vmprobe a found slot, for the naive
	 * program a lookup hit and two atomic adds (never the insert).
	 */
	if (bpf_map_update_elem(net_ifaces_fd(np), &key, &slot, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(ref->maps.ref_counts), &rkey, &rval, BPF_ANY)) {
		err = -errno;
		goto cleanup;
	}
	fds[PROG_EMPTY] = bpf_program__fd(ref->progs.bench_empty);
	fds[PROG_VMPROBE] = net_prog_fd(np, true);
	fds[PROG_NAIVE] = bpf_program__fd(ref->progs.bench_naive);
	for (size_t s = 0; s < NR_SIZES; s++)
		udp_frame(frame[s], frame_sizes[s]);

	printf("# TC cost per packet: BPF_PROG_TEST_RUN, %d runs per call, %d interleaved rounds "
	       "after a warm-up round, median per program\n", TC_REPEAT, TC_ROUNDS);
	/* Round -1 warms caches and clocks and is not kept. */
	for (int r = -1; r < TC_ROUNDS; r++) {
		for (size_t s = 0; s < NR_SIZES; s++) {
			for (int p = 0; p < PROG_MAX; p++) {
				double t = 0;
				unsigned k = 0;

				err = time_prog(fds[p], ifindex, frame[s], frame_sizes[s], &t, &k);
				if (err) {
					fprintf(stderr, "bench: test run of %s on %u bytes failed (%s)\n",
						prog_names[p], frame_sizes[s], strerror(-err));
					goto cleanup;
				}
				if (r >= 0) {
					ns[p][s][r] = t;
					kns[p][s][r] = k;
				}
			}
			runs += TC_REPEAT;
		}
	}

	/* A program that missed its entry would be timed on a cheaper path. */
	net_read(np, slot, NET_DIR_TX, &st);
	for (int i = 0; i < NET_SIZE_SLOTS; i++)
		packets += st.size_slots[i];
	if (bpf_map_lookup_elem(bpf_map__fd(ref->maps.ref_counts), &rkey, &rval))
		rval.packets = 0;
	if (packets != runs || rval.packets != runs || net_unknown_frames(np)) {
		fprintf(stderr, "bench: the programs did not count every run: expected %llu, "
			"vmprobe %llu, naive %llu, vmprobe unknown-device %llu\n",
			(unsigned long long)runs, (unsigned long long)packets,
			(unsigned long long)rval.packets, (unsigned long long)net_unknown_frames(np));
		err = -EPROTO;
		goto cleanup;
	}

	for (int p = 0; p < PROG_MAX; p++) {
		for (int r = 0; r < TC_ROUNDS; r++) {
			mix[p][r] = 0;
			for (size_t s = 0; s < NR_SIZES; s++)
				mix[p][r] += ns[p][s][r] / NR_SIZES;
		}
		med[p] = median(mix[p], TC_ROUNDS);
		for (size_t s = 0; s < NR_SIZES; s++)
			med_size[s][p] = median(ns[p][s], TC_ROUNDS);
	}
	printf("# unsuffixed: each program on one %u-byte and one %u-byte frame, mean of the two\n",
	       frame_sizes[0], frame_sizes[1]);
	print_tc("", med);
	for (size_t s = 0; s < NR_SIZES; s++) {
		char suffix[16];

		snprintf(suffix, sizeof(suffix), "_%ub", frame_sizes[s]);
		print_tc(suffix, med_size[s]);
	}
	for (int p = 0; p < PROG_MAX; p++) {
		printf("# kernel-reported ns/run of %s (whole ns; %u-byte rounds, then %u-byte):",
		       prog_names[p], frame_sizes[0], frame_sizes[1]);
		for (size_t s = 0; s < NR_SIZES; s++)
			for (int r = 0; r < TC_ROUNDS; r++)
				printf(" %u", kns[p][s][r]);
		printf("\n");
	}
	{
		double added = (med[PROG_VMPROBE] - med[PROG_EMPTY]) /
			       (med[PROG_NAIVE] - med[PROG_EMPTY]);

		printf("# goal: tc_added_cost_vmprobe_vs_naive_ratio <= %.2f (vmprobe adds %.2f ns, "
		       "naive %.2f ns over empty): %s\n", GOAL_ADDED_RATIO,
		       med[PROG_VMPROBE] - med[PROG_EMPTY], med[PROG_NAIVE] - med[PROG_EMPTY],
		       added <= GOAL_ADDED_RATIO ? "met" : "NOT met");
	}
	err = 0;
cleanup:
	if (slot >= 0) {
		bpf_map_delete_elem(net_ifaces_fd(np), &key);
		net_slot_free(np, (unsigned)slot);
	}
	ref_bpf__destroy(ref);
	close(tap_fd);
	return err;
}

/* Counters as a busy tap would have them: every CPU and both directions nonzero. */
static void fill_stats(struct net_probe *np, unsigned slot, unsigned seed)
{
	for (unsigned cpu = 0; cpu < np->nr_cpus; cpu++) {
		for (unsigned dir = 0; dir < NET_DIR_MAX; dir++) {
			struct net_stats *st =
				&np->stats[net_stats_index(cpu, slot, dir, np->max_ifaces)];

			st->bytes = 0;
			for (unsigned s = 0; s < NET_SIZE_SLOTS; s++) {
				st->size_slots[s] = 1000003ULL * (seed + 1) * (s + 1) + cpu * 17 + dir;
				st->bytes += st->size_slots[s] << (s > 0 ? s - 1 : 0);
			}
		}
	}
}

static void free_vms(struct discovery *d)
{
	while (d->vms) {
		struct vm *vm = d->vms;

		d->vms = vm->next;
		for (int i = 0; i < vm->nr_taps; i++)
			if (vm->taps[i].slot >= 0)
				net_slot_free(d->np, (unsigned)vm->taps[i].slot);
		free(vm);
	}
}

/* A table as discovery would build it, without /proc: one tap per VM. */
static int add_vms(struct discovery *d, unsigned nr_vms)
{
	for (unsigned i = 0; i < nr_vms; i++) {
		struct vm *vm = calloc(1, sizeof(*vm));
		struct tap_state *t;
		int slot;

		if (!vm)
			return -ENOMEM;
		vm->next = d->vms;
		d->vms = vm;
		vm->pid = (pid_t)(100000 + i);
		vm->start_time = 4242 + i;
		/* Quotes, backslashes and UTF-8: the label escaping is part of the cost. */
		snprintf(vm->name, sizeof(vm->name), "web \"frontend\" \\ %04u caf\xc3\xa9", i);
		if (i % 2)
			snprintf(vm->ns, sizeof(vm->ns), "tenant-%u", i % 10);
		snprintf(vm->spec.uuid, sizeof(vm->spec.uuid), "%08x-0000-4000-8000-%012x", i, i);
		snprintf(vm->pid_str, sizeof(vm->pid_str), "%d", (int)vm->pid);
		t = &vm->taps[0];
		vm->nr_taps = 1;
		snprintf(t->ifname, sizeof(t->ifname), "tap%04u", i);
		t->ifindex = (int)(1000 + i);
		t->netns_cookie = 1;
		t->slot = -1;
		slot = net_slot_alloc(d->np);
		if (slot < 0)
			return slot;
		t->slot = slot;
		fill_stats(d->np, (unsigned)slot, i);
	}
	return 0;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static int bench_render(struct net_probe *np, const struct config *cfg, unsigned nr_vms)
{
	struct discovery d = {};
	double ms[RENDER_RUNS];
	size_t bytes = 0, series = 0;
	int err;

	d.cfg = cfg;
	d.np = np;
	d.home_netns = -1;
	pthread_mutex_init(&d.lock, NULL);
	err = add_vms(&d, nr_vms);
	if (err) {
		fprintf(stderr, "bench: building a table of %u VMs failed (%s)\n", nr_vms,
			strerror(-err));
		goto cleanup;
	}
	/* Run -1 is a warm-up. Each run gets a fresh buffer, as a scrape does. */
	for (int r = -1; r < RENDER_RUNS; r++) {
		struct strbuf sb;
		double t0, t1;

		sb_init(&sb);
		t0 = now_ns(CLOCK_MONOTONIC);
		err = metrics_render(&d, &sb);
		t1 = now_ns(CLOCK_MONOTONIC);
		if (!err && r >= 0) {
			ms[r] = (t1 - t0) / 1e6;
			bytes = sb.len;
			series = count(sb.buf, "vmprobe_network_bytes_total{");
		}
		sb_free(&sb);
		if (err) {
			fprintf(stderr, "bench: rendering %u VMs failed (%s)\n", nr_vms, strerror(-err));
			goto cleanup;
		}
	}
	if (series != (size_t)nr_vms * NET_DIR_MAX) {
		fprintf(stderr, "bench: %u VMs rendered %zu byte series, expected %zu\n", nr_vms,
			series, (size_t)nr_vms * NET_DIR_MAX);
		err = -EPROTO;
		goto cleanup;
	}
	printf("BENCH metrics_render_ms_%uvms %.3f ms\n", nr_vms, median(ms, RENDER_RUNS));
	printf("BENCH metrics_bytes_%uvms %zu bytes\n", nr_vms, bytes);
cleanup:
	free_vms(&d);
	pthread_mutex_destroy(&d.lock);
	return err;
}

/* One CPU throughout: a migration between timed runs (cold caches) doubled some renders. */
static void pin_to_current_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0)
		printf("# pinned to CPU %d\n", cpu);
}

int main(void)
{
	static const unsigned vm_counts[] = { 1, 100, 1000 };
	struct net_probe np = {};
	struct config cfg;
	int err;

	err = config_load_default(&cfg);
	if (err) {
		fprintf(stderr, "bench: the default config does not load (%s)\n", strerror(-err));
		return 1;
	}
	if (cfg.max_interfaces < 1000) {
		fprintf(stderr, "bench: the default network.max_interfaces (%u) is below 1000\n",
			cfg.max_interfaces);
		return 1;
	}
	pin_to_current_cpu();
	err = net_probe_open(&np, cfg.max_interfaces);
	if (err) {
		fprintf(stderr, "bench: opening the network probe failed (%s): run as root\n",
			strerror(-err));
		return 1;
	}
	err = bench_tc(&np);
	if (err)
		goto cleanup;
	printf("# /metrics render: metrics_render over synthetic VMs, one tap each, "
	       "median of %d runs\n", RENDER_RUNS);
	for (size_t i = 0; i < ARRAY_SIZE(vm_counts) && !err; i++)
		err = bench_render(&np, &cfg, vm_counts[i]);
cleanup:
	net_probe_close(&np);
	return err ? 1 : 0;
}

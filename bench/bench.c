// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `make bench`: what vmprobe costs per packet and per scrape. Prints
 * `BENCH <name> <value> <unit>` lines and `#` commentary.
 *
 * Per packet, the headline: the tap egress program on the path real taps
 * take. Frames sent out of a tap with an AF_PACKET socket meet each
 * program in turn, attached to that tap: vmprobe's, attached the way
 * vmprobe attaches it (from a TCX link where the kernel has them: the
 * tap's own program sets its slot in skb->tc_classid and tail-calls the
 * shared one, both timed together; else a cls_bpf filter, which cls_bpf
 * hands its classid), an empty TC program (the floor every TC program
 * pays) and a naive one (a hash-map update per packet, what a generic
 * exporter does), interleaved round by round so drift hits all three
 * alike; the kernel's run-time stats time the programs, not the hook
 * (bench/net.sh measures hooks and all).
 * Per packet with TCP flow tracking (tc_tcp_*): the same three on a
 * realistic TCP mix through the tap both ways, many connections opened,
 * carrying timestamped data and acks, and closed, so vmprobe's flow state
 * machine sees what it would see on a VM's tap (see "The TCP mix"); and
 * (tc_tcp_testrun_*) the same mix by BPF_PROG_TEST_RUN, frame by frame.
 * Per packet, the fallback path (tc_testrun_*): BPF_PROG_TEST_RUN of the
 * same three, which cannot set tc_classid, so vmprobe finds its slot
 * through the (netns, ifindex) hash instead.
 * `bench tcp` runs the real path's TCP mix alone (about 10 s), to weigh a
 * change to the flow tracking.
 * (Per scrape: bench/scale.c.)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/ref.skel.h"
#include "net.skel.h"
#include "core/config.h"
#include "probes/net/net_probe.h"
#include "core/tapdev.h"
#include "core/netns.h"
#include "ref.h"
#include "probes/net/tc.h"
#include "core/util.h"
#include "../tests/lib/pktgen.h"

#define TC_ACT_UNSPEC (-1)
#define TAP_NAME "vmpb-bench"
/* Frames per program per round on the real path. */
#define TC_FRAMES 200000
#define TC_FRAME_SIZE 64
/* IEEE "local experimental": nothing on the host parses it. */
#define ETH_P_BENCH 0x88b5
#define SEND_BATCH 256
/* Runs per test_run call: setup and syscall cost vanish against them. */
#define TC_REPEAT 2000000
#define TC_ROUNDS 7
/* The goal: vmprobe adds at most half of what the naive program adds. */
#define GOAL_ADDED_RATIO 0.5

/* naive: a hash-map update per packet, the reference; atomic: the leaner, stricter one. */
enum tc_prog { PROG_EMPTY, PROG_VMPROBE, PROG_NAIVE, PROG_ATOMIC, PROG_MAX };
static const char *const prog_names[PROG_MAX] = { "empty", "vmprobe", "naive", "atomic" };

/* 64: the smallest Ethernet frame (sans FCS); 1514: a full 1500-byte MTU. */
static const unsigned frame_sizes[] = { 64, 1514 };
#define NR_SIZES ARRAY_SIZE(frame_sizes)

/* What both TC benches share: the tap and the reference programs. */
struct tc_bench {
	struct net_probe *np;
	struct ref_bpf *ref;
	int ifindex;
	int tap_fd;
	__u64 netns_cookie; /* as the programs' fallback key holds it */
	struct ref_key rkey; /* the reference programs' entry for the tap */
	int fds[PROG_MAX];
};

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


/* Brings `name` up with no IPv6, whose address configuration would send frames of its own. */
static int tap_up(int sock, const char *name)
{
	struct ifreq ifr = {};
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	fd = open(path, O_WRONLY);
	if (fd >= 0) {
		ssize_t n = write(fd, "1", 1);

		close(fd);
		if (n != 1)
			return -EIO;
	} else if (errno != ENOENT) {
		return -errno;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr))
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	return ioctl(sock, SIOCSIFFLAGS, &ifr) ? -errno : 0;
}

/* The tap's tx_dropped counter. */
static int tap_tx_dropped(const char *name, __u32 *out)
{
	struct ifaddrs *ifs;
	int err = -ENODEV;

	if (getifaddrs(&ifs))
		return -errno;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_PACKET && i->ifa_data &&
		    !strcmp(i->ifa_name, name)) {
			*out = ((const struct rtnl_link_stats *)i->ifa_data)->tx_dropped;
			err = 0;
			break;
		}
	}
	freeifaddrs(ifs);
	return err;
}

static const unsigned char guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x01 };
static const unsigned char host_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x02 };

/* An Ethernet frame of `size` bytes to the guest, over a patterned payload. */
static void eth_frame(unsigned char *f, unsigned size, unsigned ethertype)
{
	pktgen_eth_frame(f, size, guest_mac, host_mac, ethertype);
}

/* A well-formed Ethernet/IPv4/UDP frame of `size` bytes (no UDP checksum: allowed over IPv4). */
static void udp_frame(unsigned char *f, unsigned size)
{
	static const unsigned char guest[4] = { 10, 0, 0, 2 }, host[4] = { 10, 0, 0, 1 };
	struct pktgen pg;

	pktgen_init(&pg, f, size);
	pktgen_eth(&pg, guest_mac, host_mac);
	pktgen_ipv4(&pg, guest, host, 17);
	pktgen_udp(&pg, 40000, 5201);
	pktgen_payload(&pg, size - 14 - 20 - 8, -1);
	pktgen_finish(&pg);
}

static double added_ratio(const double ns[PROG_MAX], enum tc_prog ref)
{
	return (ns[PROG_VMPROBE] - ns[PROG_EMPTY]) / (ns[ref] - ns[PROG_EMPTY]);
}

/* The BENCH lines of one measurement; `vmprobe` names vmprobe's program in them. */
static void print_tc(const char *prefix, const char *vmprobe, const char *suffix,
		     const double ns[PROG_MAX])
{
	const char *const names[PROG_MAX] = { prog_names[PROG_EMPTY], vmprobe,
					       prog_names[PROG_NAIVE], prog_names[PROG_ATOMIC] };

	for (int p = 0; p < PROG_MAX; p++)
		printf("BENCH %sns_%s%s %.2f ns\n", prefix, names[p], suffix, ns[p]);
	printf("BENCH %s%s_over_empty_ratio%s %.3f ratio\n", prefix, vmprobe, suffix,
	       ns[PROG_VMPROBE] / ns[PROG_EMPTY]);
	for (int p = PROG_NAIVE; p < PROG_MAX; p++) {
		printf("BENCH %s%s_over_empty_ratio%s %.3f ratio\n", prefix, prog_names[p], suffix,
		       ns[p] / ns[PROG_EMPTY]);
		printf("BENCH %sadded_cost_%s_vs_%s_ratio%s %.3f ratio\n", prefix, vmprobe,
		       prog_names[p], suffix, added_ratio(ns, p));
	}
}

/* Sends `n` copies of `frame` out of `ifindex`, each through its TC egress. */
static int send_frames(int sock, int ifindex, const unsigned char *frame, unsigned size,
		       unsigned n)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_BENCH),
		.sll_ifindex = ifindex,
		.sll_halen = 6,
	};
	struct iovec iov = { .iov_base = (void *)frame, .iov_len = size };
	struct mmsghdr msgs[SEND_BATCH];

	memcpy(sll.sll_addr, guest_mac, 6);
	for (int i = 0; i < SEND_BATCH; i++)
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &sll,
							 .msg_namelen = sizeof(sll),
							 .msg_iov = &iov,
							 .msg_iovlen = 1 } };
	while (n) {
		int sent = sendmmsg(sock, msgs, n < SEND_BATCH ? n : SEND_BATCH, 0);

		if (sent < 0)
			return -errno;
		n -= (unsigned)sent;
	}
	return 0;
}

/* Cumulative run time and run count of a program (with stats enabled). */
static int prog_run_stats(int prog_fd, __u64 *run_time_ns, __u64 *run_cnt)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int err;

	err = bpf_obj_get_info_by_fd(prog_fd, &info, &len);
	if (err)
		return err;
	*run_time_ns = info.run_time_ns;
	*run_cnt = info.run_cnt;
	return 0;
}

/*
 * Removes a reference program's filters recorded in `a`, and the clsact
 * made for them if nothing else is left under it. (tc_detach_pair()
 * removes vmprobe's filters only: these are named after their programs.)
 */
static int ref_detach(struct tc_attachment *a)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->ifindex);
	int ret = 0;

	for (int i = 0; i < 2; i++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = a->handle[i],
				    .priority = a->priority[i]);
		int err;

		if (!a->attached[i])
			continue;
		hook.attach_point = i == 0 ? BPF_TC_INGRESS : BPF_TC_EGRESS;
		err = bpf_tc_detach(&hook, &opts);
		if (err && err != -ENOENT)
			ret = err;
		a->attached[i] = false;
	}
	if (a->created_qdisc)
		tc_clsact_drop_empty(a->ifindex);
	a->created_qdisc = false;
	return ret;
}

/*
 * Attaches a reference program to `ifindex`'s egress (and ingress, if
 * `ingress_too`) with libbpf, recording in `a` what ref_detach() must
 * remove; 0 or -errno (nothing left behind on failure).
 */
static int ref_attach(int ifindex, int prog_fd, bool ingress_too, struct tc_attachment *a)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex);
	int err = tc_clsact_ensure(ifindex, a);

	if (err)
		return err;
	/* a->attached[0] is ingress, [1] egress, as tc_attach_pair has them. */
	for (int i = ingress_too ? 0 : 1; i < 2; i++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd);

		hook.attach_point = i == 0 ? BPF_TC_INGRESS : BPF_TC_EGRESS;
		err = bpf_tc_attach(&hook, &opts);
		if (err) {
			ref_detach(a);
			return err;
		}
		a->attached[i] = true;
		a->handle[i] = opts.handle;
		a->priority[i] = opts.priority;
	}
	return 0;
}

/*
 * Attaches program `p` to the tap: vmprobe's as vmprobe does (both
 * directions, slot + 1 as classid, into *slot), the others with libbpf, to
 * the egress (and the ingress if `ingress_too`). Either way `a` records
 * what detach_prog() must remove.
 */
static int attach_prog(struct tc_bench *b, enum tc_prog p, bool ingress_too, int *slot,
		       struct tc_attachment *a)
{
	int err;

	*slot = -1;
	if (p == PROG_VMPROBE) {
		err = net_slot_alloc(b->np);
		if (err < 0)
			return err;
		*slot = err;
		err = net_tap_attach(b->np, b->ifindex, (unsigned)*slot, a);
		if (err) {
			net_slot_free(b->np, (unsigned)*slot);
			*slot = -1;
			return err;
		}
		/*
		 * Without the tap's key the fallback finds no slot, so a frame
		 * that reached the program without its classid would count as
		 * unknown. The hot path never reads the key: its cost is unchanged.
		 */
		net_tap_forget(b->np, b->netns_cookie, b->ifindex);
		return 0;
	}
	return ref_attach(b->ifindex, b->fds[p], ingress_too, a);
}

static int detach_prog(struct tc_bench *b, int slot, struct tc_attachment *a)
{
	int err;

	if (slot < 0)
		return ref_detach(a);
	err = net_tap_detach(b->np, b->netns_cookie, a);
	net_slot_free(b->np, (unsigned)slot);
	return err;
}

/*
 * The program the hook runs for one direction of `a`: from a TCX link,
 * vmprobe's tap's own program, whose run time takes in the shared one it
 * tail-calls (a new fd: run_fd_put() it).
 */
static int run_fd(const struct tc_bench *b, enum tc_prog p, const struct tc_attachment *a,
		  bool ingress)
{
	if (p != PROG_VMPROBE)
		return b->fds[p];
	return a->tcx ? tcx_link_prog_fd(a, ingress) : net_prog_fd(b->np, ingress);
}

static void run_fd_put(const struct tc_attachment *a, int fd)
{
	if (a->tcx && fd >= 0)
		close(fd);
}

/* Packets vmprobe counted in `slot` and the reference programs for the tap, so far. */
static void counted(const struct tc_bench *b, int slot, __u64 *vmprobe, __u64 *naive)
{
	struct ref_value rval = {};
	struct net_stats st;

	*vmprobe = 0;
	if (slot >= 0) {
		net_read(b->np, (unsigned)slot, NET_DIR_RX, &st);
		for (int i = 0; i < NET_SIZE_SLOTS; i++)
			*vmprobe += st.size_slots[i];
	}
	bpf_map_lookup_elem(bpf_map__fd(b->ref->maps.ref_counts), &b->rkey, &rval);
	*naive = rval.packets;
}

/*
 * One round of program `p` on the real path: attach, send TC_FRAMES, ns
 * per run from the kernel's run-time stats, detach. Fails unless the
 * program ran once per frame, counted each (vmprobe through its classid),
 * and left each to the tap (`check_tap`: its queue is already full).
 */
static int real_round(struct tc_bench *b, enum tc_prog p, int sock, const unsigned char *frame,
		      bool check_tap, double *ns)
{
	struct tc_attachment a;
	__u64 t0 = 0, t1 = 0, c0 = 0, c1 = 0, vm0, vm1, nv0, nv1, unknown0, unknown1;
	__u32 drop0 = 0, drop1 = 0;
	int slot, fd, err, derr;

	err = attach_prog(b, p, false, &slot, &a);
	if (err) {
		fprintf(stderr, "bench: attaching %s to %s failed (%s)\n", prog_names[p], TAP_NAME,
			strerror(-err));
		return err;
	}
	unknown0 = net_unknown_frames(b->np);
	counted(b, slot, &vm0, &nv0);
	err = tap_tx_dropped(TAP_NAME, &drop0);
	fd = run_fd(b, p, &a, false);
	if (!err)
		err = fd < 0 ? fd : prog_run_stats(fd, &t0, &c0);
	if (!err)
		err = send_frames(sock, b->ifindex, frame, TC_FRAME_SIZE, TC_FRAMES);
	if (!err)
		err = prog_run_stats(fd, &t1, &c1);
	run_fd_put(&a, fd);
	if (!err)
		err = tap_tx_dropped(TAP_NAME, &drop1);
	derr = detach_prog(b, slot, &a);
	if (err || derr) {
		fprintf(stderr, "bench: sending frames through %s failed (%s)\n", prog_names[p],
			strerror(-(err ? err : derr)));
		return err ? err : derr;
	}
	counted(b, slot, &vm1, &nv1);
	unknown1 = net_unknown_frames(b->np);
	if (c1 - c0 != TC_FRAMES || (p == PROG_VMPROBE && vm1 - vm0 != TC_FRAMES) ||
	    (p >= PROG_NAIVE && nv1 - nv0 != TC_FRAMES) || unknown1 != unknown0 ||
	    (check_tap && drop1 - drop0 != TC_FRAMES)) {
		fprintf(stderr, "bench: %d frames through %s: expected as many runs, counts and "
			"tap drops; runs %llu, vmprobe counted %llu, reference counted %llu, "
			"vmprobe unknown-device %llu, tap drops %u\n", TC_FRAMES, prog_names[p],
			(unsigned long long)(c1 - c0), (unsigned long long)(vm1 - vm0),
			(unsigned long long)(nv1 - nv0), (unsigned long long)(unknown1 - unknown0),
			drop1 - drop0);
		return -EPROTO;
	}
	*ns = (double)(t1 - t0) / (double)(c1 - c0);
	return 0;
}

/* A filter left behind would run, unaccounted, in the other programs' rounds. */
static int tap_no_filters(const struct tc_bench *b)
{
	for (int i = 0; i < 2; i++) {
		struct tc_filters f;
		int err = tc_list_filters(b->ifindex, i == 0, &f);

		if (!err && f.count)
			err = -EEXIST;
		if (err) {
			fprintf(stderr, "bench: %s %s still holds filters after detaching (%s)\n",
				TAP_NAME, i == 0 ? "ingress" : "egress", strerror(-err));
			return err;
		}
	}
	return 0;
}

/* A packet socket that only sends (protocol 0), or -errno (said). */
static int packet_sender(void)
{
	int sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);

	if (sock < 0) {
		sock = -errno;
		fprintf(stderr, "bench: opening a packet socket failed (%s)\n", strerror(-sock));
	}
	return sock;
}

/* BPF run-time stats on while the fd is open, or -errno (said). */
static int run_time_stats(void)
{
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);

	if (fd < 0)
		fprintf(stderr, "bench: enabling BPF run-time stats failed (%s)\n", strerror(-fd));
	return fd;
}

/*
 * The headline. bpf_stats adds its own fixed overhead to every run it
 * times (two sched_clock() reads around the program), the same for all
 * three programs: the cost "added over empty" subtracts it away.
 */
static int bench_tc_real(struct tc_bench *b)
{
	unsigned char frame[TC_FRAME_SIZE];
	double ns[PROG_MAX][TC_ROUNDS], med[PROG_MAX], added;
	int sock, stats_fd = -1, err;

	sock = packet_sender();
	if (sock < 0)
		return sock;
	err = tap_up(sock, TAP_NAME);
	if (err) {
		fprintf(stderr, "bench: bringing %s up failed (%s)\n", TAP_NAME, strerror(-err));
		goto cleanup;
	}
	stats_fd = run_time_stats();
	if (stats_fd < 0) {
		err = stats_fd;
		goto cleanup;
	}
	eth_frame(frame, TC_FRAME_SIZE, ETH_P_BENCH);

	printf("# TC cost per packet, real path: %d %d-byte frames sent out of a tap per program "
	       "per round, tap egress, %d interleaved rounds after a warm-up round, run_time_ns / "
	       "run_cnt from BPF run-time stats, median per program\n", TC_FRAMES, TC_FRAME_SIZE,
	       TC_ROUNDS);
	/* Round -1 warms caches and fills the tap's queue, and is not kept. */
	for (int r = -1; r < TC_ROUNDS; r++) {
		for (int p = 0; p < PROG_MAX; p++) {
			double t = 0;

			err = real_round(b, p, sock, frame, r >= 0, &t);
			if (err)
				goto cleanup;
			if (r >= 0)
				ns[p][r] = t;
		}
	}
	err = tap_no_filters(b);
	if (err)
		goto cleanup;
	for (int p = 0; p < PROG_MAX; p++)
		med[p] = median(ns[p], TC_ROUNDS);
	print_tc("tc_", prog_names[PROG_VMPROBE], "", med);
	for (int p = 0; p < PROG_MAX; p++) {
		printf("# ns/run of %s by round:", prog_names[p]);
		for (int r = 0; r < TC_ROUNDS; r++)
			printf(" %.2f", ns[p][r]);
		printf("\n");
	}
	added = added_ratio(med, PROG_NAIVE);
	printf("# goal: tc_added_cost_vmprobe_vs_naive_ratio <= %.2f (vmprobe adds %.2f ns, "
	       "naive %.2f ns over empty): %s\n", GOAL_ADDED_RATIO,
	       med[PROG_VMPROBE] - med[PROG_EMPTY], med[PROG_NAIVE] - med[PROG_EMPTY],
	       added <= GOAL_ADDED_RATIO ? "met" : "NOT met");
	added = added_ratio(med, PROG_ATOMIC);
	printf("# stricter: tc_added_cost_vmprobe_vs_atomic_ratio <= %.2f (atomic adds %.2f ns): %s\n",
	       GOAL_ADDED_RATIO, med[PROG_ATOMIC] - med[PROG_EMPTY],
	       added <= GOAL_ADDED_RATIO ? "met" : "NOT met");
cleanup:
	if (stats_fd >= 0)
		close(stats_fd);
	close(sock);
	return err;
}

/*
 * The TCP mix (tc_tcp_*): MIX_FLOWS connections at a time through the
 * tap, each opened, carrying MIX_EXCHANGES exchanges and closed, as both
 * ends would send them: sequence numbers and timestamps advance, acks and
 * echoes answer what the other end sent, nothing is sent twice. Even
 * connections are opened by the guest, odd ones by the peer; in every
 * other pair the guest uploads, else it downloads. An exchange is two
 * full data segments (one TSval, as a burst within a timestamp tick) and
 * a pure ACK of both. The guest's frames are written to the tap (its
 * ingress, as from QEMU), the peer's sent out of it (its egress).
 */
#define MIX_FLOWS 256
#define MIX_EXCHANGES 16
#define MIX_CYCLES 7 /* connection lifetimes per program per round */
#define MIX_MSS 1448
#define MIX_FRAME_MAX (14 + 20 + 20 + 20 + MIX_MSS)
/* SYN, SYN-ACK, ACK; per exchange data, data, ACK; FIN, FIN, ACK. */
#define MIX_STEPS (3 + 3 * MIX_EXCHANGES + 3)
#define MIX_CONNS (MIX_CYCLES * MIX_FLOWS)
#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_ACK 0x10
#define GUEST_ADDR 0xc0a80002 /* 192.168.0.2 */

/* One connection of the mix as its two ends see it; arrays indexed by sender (enum net_dir). */
struct mix_conn {
	__u32 peer_addr;
	__u16 guest_port, peer_port;
	__u32 snd_nxt[NET_DIR_MAX];
	__u32 tsval[NET_DIR_MAX];
	__u32 ts_recent[NET_DIR_MAX]; /* the newest TSval received: what this end echoes */
};

/* Connection `i` of cycle `n`, on a port pair no earlier cycle of the run used. */
static void mix_conn_init(struct mix_conn *c, unsigned n, unsigned i)
{
	memset(c, 0, sizeof(*c));
	c->peer_addr = 0x0a000001 | (n & 0xffff) << 8; /* 10.x.y.1 */
	c->guest_port = (__u16)(32768 + i);
	c->peer_port = 443;
	for (unsigned d = 0; d < NET_DIR_MAX; d++) {
		c->snd_nxt[d] = (n * 2654435761u) ^ (i * 40503u) ^ (d * 0x9e3779b9u);
		c->tsval[d] = 1000 + n * 7 + i + d * 100000;
	}
}

/*
 * The next segment of c from `dir`'s end into f: flags, `len` payload
 * bytes; `tick`: the sender's timestamp clock moved since its last one. A
 * SYN carries Linux's options (MSS, SACK permitted, timestamps, window
 * scale), every other segment NOP NOP timestamps. Returns the frame size.
 */
static unsigned mix_segment(struct mix_conn *c, unsigned dir, unsigned flags, unsigned len,
			    bool tick, unsigned char *f)
{
	unsigned o = dir ^ 1, optlen = (flags & TCPF_SYN) ? 20 : 12;
	bool guest = dir == NET_DIR_TX;
	unsigned char ga[4], pa[4], *opt;
	struct pktgen pg;

	pktgen_put32(ga, GUEST_ADDR);
	pktgen_put32(pa, c->peer_addr);
	if (tick)
		c->tsval[dir]++;
	pktgen_init(&pg, f, MIX_FRAME_MAX);
	pktgen_eth(&pg, guest ? host_mac : guest_mac, guest ? guest_mac : host_mac);
	pktgen_ipv4(&pg, guest ? ga : pa, guest ? pa : ga, 6);
	opt = pktgen_tcp(&pg, guest ? c->guest_port : c->peer_port,
			 guest ? c->peer_port : c->guest_port, c->snd_nxt[dir],
			 (flags & TCPF_ACK) ? c->snd_nxt[o] : 0, flags, optlen);
	if (opt && (flags & TCPF_SYN)) {
		memcpy(opt, "\x02\x04\x05\xb4\x04\x02\x08\x0a", 8);
		pktgen_put32(opt + 8, c->tsval[dir]);
		pktgen_put32(opt + 12, (flags & TCPF_ACK) ? c->ts_recent[dir] : 0);
		memcpy(opt + 16, "\x01\x03\x03\x07", 4);
	} else if (opt) {
		memcpy(opt, "\x01\x01\x08\x0a", 4);
		pktgen_put32(opt + 4, c->tsval[dir]);
		pktgen_put32(opt + 8, c->ts_recent[dir]);
	}
	pktgen_payload(&pg, len, 'x');
	c->snd_nxt[dir] += len + !!(flags & TCPF_SYN) + !!(flags & TCPF_FIN);
	c->ts_recent[o] = c->tsval[dir];
	return (unsigned)pktgen_finish(&pg);
}

/* Step `s` (of MIX_STEPS) of connection `i`: its frame into f, its sender into *dir. */
static unsigned mix_step(struct mix_conn *c, unsigned i, unsigned s, unsigned char *f,
			 unsigned *dir)
{
	unsigned opener = i % 2 ? NET_DIR_RX : NET_DIR_TX;
	unsigned sender = (i / 2) % 2 ? NET_DIR_TX : NET_DIR_RX;

	if (s < 3) {
		static const unsigned flags[3] = { TCPF_SYN, TCPF_SYN | TCPF_ACK, TCPF_ACK };

		*dir = s == 1 ? opener ^ 1 : opener;
		return mix_segment(c, *dir, flags[s], 0, true, f);
	}
	s -= 3;
	if (s < 3 * MIX_EXCHANGES) {
		*dir = s % 3 == 2 ? sender ^ 1 : sender;
		return mix_segment(c, *dir, TCPF_ACK, s % 3 == 2 ? 0 : MIX_MSS, s % 3 != 1, f);
	}
	s -= 3 * MIX_EXCHANGES;
	*dir = s == 1 ? opener ^ 1 : opener;
	return mix_segment(c, *dir, s == 2 ? TCPF_ACK : TCPF_FIN | TCPF_ACK, 0, true, f);
}

/*
 * One step of every connection of a cycle: the guest's frames written to
 * the tap (one write each, as QEMU does), the peer's sent out of it in
 * one batch. Each connection has one frame per step, so the order within
 * a step does not matter. Counts the frames per direction into sent[].
 */
static int mix_send_step(struct tc_bench *b, int sock, struct mix_conn *conns, unsigned s,
			 unsigned char (*frames)[MIX_FRAME_MAX], __u64 sent[NET_DIR_MAX])
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(0x0800),
		.sll_ifindex = b->ifindex,
		.sll_halen = 6,
	};
	struct iovec iov[MIX_FLOWS];
	struct mmsghdr msgs[MIX_FLOWS];
	unsigned nr_out = 0;

	memcpy(sll.sll_addr, guest_mac, 6);
	for (unsigned i = 0; i < MIX_FLOWS; i++) {
		unsigned dir, size = mix_step(&conns[i], i, s, frames[i], &dir);

		sent[dir]++;
		if (dir == NET_DIR_TX) {
			if (write(b->tap_fd, frames[i], size) != (ssize_t)size)
				return errno ? -errno : -EIO;
			continue;
		}
		iov[nr_out] = (struct iovec){ .iov_base = frames[i], .iov_len = size };
		msgs[nr_out] = (struct mmsghdr){ .msg_hdr = { .msg_name = &sll,
							      .msg_namelen = sizeof(sll),
							      .msg_iov = &iov[nr_out],
							      .msg_iovlen = 1 } };
		nr_out++;
	}
	for (unsigned done = 0; done < nr_out;) {
		int n = sendmmsg(sock, msgs + done, nr_out - done, 0);

		if (n < 0)
			return -errno;
		done += (unsigned)n;
	}
	return 0;
}

/* vmprobe's health counters that tell which path its programs took. */
struct mix_counts {
	__u64 created, closed, midstream, failed, not_parsed, unknown;
};

static void mix_counters(const struct net_probe *np, struct mix_counts *c)
{
	c->created = net_counter(np, NET_TCP_FLOWS_CREATED);
	c->closed = net_counter(np, NET_TCP_FLOWS_CLOSED);
	c->midstream = net_counter(np, NET_TCP_FLOWS_MIDSTREAM);
	c->failed = net_counter(np, NET_TCP_FLOWS_FAILED);
	c->not_parsed = net_counter(np, NET_ERR_NOT_PARSED);
	c->unknown = net_unknown_frames(np);
}

static __u64 sum_slots(const __u64 *slots, unsigned n)
{
	__u64 sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += slots[i];
	return sum;
}

/*
 * Whether vmprobe took the TCP path on every frame of the round, or a
 * cheaper one: every connection made, opened (by the side that opened
 * it), closed, no retransmission, samples on both paths, every frame
 * counted. RTT samples per connection go to *samples.
 */
static int mix_check_vmprobe(struct tc_bench *b, int slot, const struct mix_counts *c0,
			     const __u64 sent[NET_DIR_MAX], double *samples)
{
	struct mix_counts c1;
	struct net_stats st[NET_DIR_MAX];
	__u64 rtt[NET_DIR_MAX], frames[NET_DIR_MAX];

	mix_counters(b->np, &c1);
	for (unsigned d = 0; d < NET_DIR_MAX; d++) {
		net_read(b->np, (unsigned)slot, d, &st[d]);
		rtt[d] = sum_slots(st[d].rtt_slots, NET_RTT_SLOTS);
		frames[d] = sum_slots(st[d].size_slots, NET_SIZE_SLOTS);
	}
	*samples = (double)(rtt[0] + rtt[1]) / MIX_CONNS;
	if (c1.created - c0->created == MIX_CONNS && c1.closed - c0->closed == MIX_CONNS &&
	    c1.midstream == c0->midstream && c1.failed == c0->failed &&
	    c1.not_parsed == c0->not_parsed && c1.unknown == c0->unknown &&
	    st[NET_DIR_TX].tcp_opened == MIX_CONNS / 2 && st[NET_DIR_RX].tcp_opened == MIX_CONNS / 2 &&
	    st[NET_DIR_TX].tcp_retransmits == 0 && st[NET_DIR_RX].tcp_retransmits == 0 &&
	    rtt[NET_PATH_NETWORK] >= (__u64)MIX_CONNS * MIX_EXCHANGES &&
	    rtt[NET_PATH_GUEST] >= (__u64)MIX_CONNS * MIX_EXCHANGES &&
	    frames[NET_DIR_TX] == sent[NET_DIR_TX] && frames[NET_DIR_RX] == sent[NET_DIR_RX])
		return 0;
	fprintf(stderr, "bench: the TCP mix did not take vmprobe's TCP path throughout: expected "
		"%d flows created and closed, none midstream or failed, %d opened each way, no "
		"retransmits or unparsed frames, >= %d RTT samples per path, %llu+%llu frames; "
		"got created %llu closed %llu midstream %llu failed %llu not parsed %llu unknown "
		"%llu, opened by guest %llu by peer %llu, retransmits %llu+%llu, samples network "
		"%llu guest %llu, frames %llu+%llu\n", MIX_CONNS, MIX_CONNS / 2,
		MIX_CONNS * MIX_EXCHANGES, (unsigned long long)sent[NET_DIR_TX],
		(unsigned long long)sent[NET_DIR_RX], (unsigned long long)(c1.created - c0->created),
		(unsigned long long)(c1.closed - c0->closed),
		(unsigned long long)(c1.midstream - c0->midstream),
		(unsigned long long)(c1.failed - c0->failed),
		(unsigned long long)(c1.not_parsed - c0->not_parsed),
		(unsigned long long)(c1.unknown - c0->unknown),
		(unsigned long long)st[NET_DIR_TX].tcp_opened,
		(unsigned long long)st[NET_DIR_RX].tcp_opened,
		(unsigned long long)st[NET_DIR_TX].tcp_retransmits,
		(unsigned long long)st[NET_DIR_RX].tcp_retransmits,
		(unsigned long long)rtt[NET_PATH_NETWORK], (unsigned long long)rtt[NET_PATH_GUEST],
		(unsigned long long)frames[NET_DIR_TX], (unsigned long long)frames[NET_DIR_RX]);
	return -EPROTO;
}

/*
 * One round of program `p` on the TCP mix: attach (both directions),
 * MIX_CYCLES connection lifetimes, ns per run from the run-time stats
 * (vmprobe's: its two programs together; *dir_ns: each alone), detach.
 * Fails unless the program ran once per frame in each direction and, for
 * vmprobe, took the TCP path (mix_check_vmprobe) and for naive counted
 * every frame.
 */
static int mix_round(struct tc_bench *b, enum tc_prog p, int sock, unsigned *cycle,
		     unsigned char (*frames)[MIX_FRAME_MAX], double *ns, double dir_ns[NET_DIR_MAX],
		     double *samples)
{
	int fds[NET_DIR_MAX];
	__u64 t0[NET_DIR_MAX] = {}, t1[NET_DIR_MAX] = {}, c0[NET_DIR_MAX] = {}, c1[NET_DIR_MAX] = {};
	__u64 sent[NET_DIR_MAX] = {}, nv0, nv1, vm;
	struct mix_conn conns[MIX_FLOWS];
	struct mix_counts mc0;
	struct tc_attachment a;
	int slot, err = 0, derr;

	err = attach_prog(b, p, true, &slot, &a);
	if (err) {
		fprintf(stderr, "bench: attaching %s to %s failed (%s)\n", prog_names[p], TAP_NAME,
			strerror(-err));
		return err;
	}
	/* vmprobe: [NET_DIR_TX] its ingress program, [NET_DIR_RX] its egress one. */
	fds[NET_DIR_RX] = run_fd(b, p, &a, false);
	fds[NET_DIR_TX] = p == PROG_VMPROBE ? run_fd(b, p, &a, true) : -1;
	if (p == PROG_VMPROBE && (fds[0] < 0 || fds[1] < 0))
		err = fds[0] < 0 ? fds[0] : fds[1];
	mix_counters(b->np, &mc0);
	counted(b, -1, &vm, &nv0);
	for (unsigned d = 0; d < NET_DIR_MAX && !err; d++)
		if (fds[d] >= 0)
			err = prog_run_stats(fds[d], &t0[d], &c0[d]);
	for (unsigned n = 0; n < MIX_CYCLES && !err; n++, (*cycle)++) {
		for (unsigned i = 0; i < MIX_FLOWS; i++)
			mix_conn_init(&conns[i], *cycle, i);
		for (unsigned s = 0; s < MIX_STEPS && !err; s++)
			err = mix_send_step(b, sock, conns, s, frames, sent);
	}
	for (unsigned d = 0; d < NET_DIR_MAX && !err; d++)
		if (fds[d] >= 0)
			err = prog_run_stats(fds[d], &t1[d], &c1[d]);
	for (unsigned d = 0; d < NET_DIR_MAX; d++)
		run_fd_put(&a, fds[d]);
	if (!err && p == PROG_VMPROBE)
		err = mix_check_vmprobe(b, slot, &mc0, sent, samples);
	derr = detach_prog(b, slot, &a);
	if (err || derr) {
		if (err != -EPROTO)
			fprintf(stderr, "bench: the TCP mix through %s failed (%s)\n", prog_names[p],
				strerror(-(err ? err : derr)));
		return err ? err : derr;
	}
	counted(b, -1, &vm, &nv1);
	if (p == PROG_VMPROBE ? c1[NET_DIR_TX] - c0[NET_DIR_TX] != sent[NET_DIR_TX] ||
				      c1[NET_DIR_RX] - c0[NET_DIR_RX] != sent[NET_DIR_RX]
			      : c1[0] - c0[0] != sent[NET_DIR_TX] + sent[NET_DIR_RX] ||
				      (p >= PROG_NAIVE && nv1 - nv0 != c1[0] - c0[0])) {
		fprintf(stderr, "bench: TCP mix through %s: %llu frames in, %llu out; runs %llu "
			"(vmprobe: egress, then ingress %llu), reference counted %llu\n", prog_names[p],
			(unsigned long long)sent[NET_DIR_TX], (unsigned long long)sent[NET_DIR_RX],
			(unsigned long long)(c1[0] - c0[0]), (unsigned long long)(c1[1] - c0[1]),
			(unsigned long long)(nv1 - nv0));
		return -EPROTO;
	}
	*ns = (double)(t1[0] - t0[0] + t1[1] - t0[1]) / (double)(c1[0] - c0[0] + c1[1] - c0[1]);
	for (unsigned d = 0; d < NET_DIR_MAX; d++)
		dir_ns[d] = c1[d] > c0[d] ? (double)(t1[d] - t0[d]) / (double)(c1[d] - c0[d]) : 0;
	return 0;
}

/* Per-packet cost with flow tracking on: the TCP mix on the real path. */
static int bench_tc_tcp(struct tc_bench *b)
{
	static unsigned char frames[MIX_FLOWS][MIX_FRAME_MAX];
	double ns[PROG_MAX][TC_ROUNDS], vm_dir[NET_DIR_MAX][TC_ROUNDS], med[PROG_MAX], added;
	double samples = 0;
	unsigned cycle = 0;
	int sock, stats_fd = -1, err;

	sock = packet_sender();
	if (sock < 0)
		return sock;
	stats_fd = run_time_stats();
	if (stats_fd < 0) {
		err = stats_fd;
		goto cleanup;
	}
	printf("# TC cost per packet with TCP flow tracking (tc_tcp_*), real path: IPv4 TCP through "
	       "the tap both ways (guest's frames written to it: ingress; peer's sent out of it: "
	       "egress), %d connections at a time, each SYN/SYN-ACK/ACK, %d exchanges of two "
	       "%d-byte timestamped data segments and a timestamped pure ACK, FIN/FIN/ACK; %d "
	       "connection lifetimes (%d frames) per program per round, %d interleaved rounds "
	       "after a warm-up round; vmprobe's ns/run is its two programs' together\n",
	       MIX_FLOWS, MIX_EXCHANGES, MIX_MSS, MIX_CYCLES, MIX_CONNS * MIX_STEPS, TC_ROUNDS);
	for (int r = -1; r < TC_ROUNDS; r++) {
		for (int p = 0; p < PROG_MAX; p++) {
			double t = 0, dns[NET_DIR_MAX] = {};

			err = mix_round(b, p, sock, &cycle, frames, &t, dns, &samples);
			if (err)
				goto cleanup;
			if (r < 0)
				continue;
			ns[p][r] = t;
			if (p == PROG_VMPROBE)
				for (unsigned d = 0; d < NET_DIR_MAX; d++)
					vm_dir[d][r] = dns[d];
		}
	}
	err = tap_no_filters(b);
	if (err)
		goto cleanup;
	for (int p = 0; p < PROG_MAX; p++)
		med[p] = median(ns[p], TC_ROUNDS);
	print_tc("tc_tcp_", prog_names[PROG_VMPROBE], "", med);
	printf("BENCH tc_tcp_rtt_samples_per_conn %.2f samples\n", samples);
	for (int p = 0; p < PROG_MAX; p++) {
		printf("# ns/run of %s on the TCP mix by round:", prog_names[p]);
		for (int r = 0; r < TC_ROUNDS; r++)
			printf(" %.2f", ns[p][r]);
		printf("\n");
	}
	printf("# vmprobe on the TCP mix, median ns/run per program: ingress (guest's frames) %.2f, "
	       "egress (peer's) %.2f\n", median(vm_dir[NET_DIR_TX], TC_ROUNDS),
	       median(vm_dir[NET_DIR_RX], TC_ROUNDS));
	added = added_ratio(med, PROG_NAIVE);
	/*
	 * Per TCP frame, flow tracking is more work than one hash update: a
	 * lookup in a table of flows (its entries are cache misses the naive
	 * program's single entry never has), and an insert and a delete per
	 * connection. The goal is on throughput (bench/net.sh); this is the
	 * per-frame price, reported as it is.
	 */
	printf("# TCP mix, per frame: vmprobe adds %.2f ns, naive %.2f ns, atomic %.2f ns over empty "
	       "(ratio to naive %.2f; for non-TCP frames see tc_added_cost_vmprobe_vs_naive_ratio, "
	       "goal <= %.2f)\n", med[PROG_VMPROBE] - med[PROG_EMPTY],
	       med[PROG_NAIVE] - med[PROG_EMPTY], med[PROG_ATOMIC] - med[PROG_EMPTY], added,
	       GOAL_ADDED_RATIO);
cleanup:
	if (stats_fd >= 0)
		close(stats_fd);
	close(sock);
	return err;
}

/*
 * One round of the TCP mix by BPF_PROG_TEST_RUN (tc_tcp_testrun_*), as
 * the issue names the method: each frame of every connection run once
 * (flow tracking has state: no frame can be repeated), the kernel's own
 * ns for each run summed. vmprobe's runs are its tap's own programs of
 * TCX links, which bring the frame to the tap's slot by its classid as
 * on the real path; the references run as they are. Checked as
 * mix_round checks the real path.
 */
static int mix_testrun_round(struct tc_bench *b, enum tc_prog p, unsigned *cycle,
			     unsigned char (*frames)[MIX_FRAME_MAX], double *ns, double *samples)
{
	__u64 sent[NET_DIR_MAX] = {}, total_ns = 0, runs = 0, nv0, nv1, vm;
	int fds[NET_DIR_MAX] = { -1, -1 }, slot = -1, err = 0, derr;
	struct mix_conn conns[MIX_FLOWS];
	struct tc_attachment a = {};
	struct mix_counts mc0;

	/* Only vmprobe's programs need the tap: their own, of TCX links. */
	if (p == PROG_VMPROBE)
		err = attach_prog(b, p, true, &slot, &a);
	if (!err) {
		fds[NET_DIR_TX] = run_fd(b, p, &a, true);
		fds[NET_DIR_RX] = run_fd(b, p, &a, false);
		if (fds[NET_DIR_TX] < 0 || fds[NET_DIR_RX] < 0)
			err = fds[NET_DIR_TX] < 0 ? fds[NET_DIR_TX] : fds[NET_DIR_RX];
	}
	mix_counters(b->np, &mc0);
	counted(b, -1, &vm, &nv0);
	for (unsigned n = 0; n < MIX_CYCLES && !err; n++, (*cycle)++) {
		for (unsigned i = 0; i < MIX_FLOWS; i++)
			mix_conn_init(&conns[i], *cycle, i);
		for (unsigned s = 0; s < MIX_STEPS && !err; s++) {
			for (unsigned i = 0; i < MIX_FLOWS && !err; i++) {
				unsigned dir, size = mix_step(&conns[i], i, s, frames[i], &dir);
				struct __sk_buff ctx = { .ifindex = b->ifindex };
				LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frames[i],
					    .data_size_in = size, .ctx_in = &ctx,
					    .ctx_size_in = sizeof(ctx), .repeat = 1);

				if (bpf_prog_test_run_opts(fds[dir], &opts))
					err = -errno;
				else if ((int)opts.retval != TC_ACT_UNSPEC)
					err = -EPROTO;
				total_ns += opts.duration;
				runs++;
				sent[dir]++;
			}
		}
	}
	if (!err && p == PROG_VMPROBE)
		err = mix_check_vmprobe(b, slot, &mc0, sent, samples);
	counted(b, -1, &vm, &nv1);
	if (!err && p >= PROG_NAIVE && nv1 - nv0 != runs) {
		fprintf(stderr, "bench: TCP mix by test run through %s: %llu runs, counted %llu\n",
			prog_names[p], (unsigned long long)runs, (unsigned long long)(nv1 - nv0));
		err = -EPROTO;
	}
	for (unsigned d = 0; d < NET_DIR_MAX; d++)
		run_fd_put(&a, fds[d]);
	if (slot >= 0) {
		derr = detach_prog(b, slot, &a);
		err = err ? err : derr;
	}
	if (err) {
		if (err != -EPROTO)
			fprintf(stderr, "bench: the TCP mix by test run through %s failed (%s)\n",
				prog_names[p], strerror(-err));
		return err;
	}
	*ns = (double)total_ns / (double)runs;
	return 0;
}

/* The TCP mix by BPF_PROG_TEST_RUN: the method, beside the real path's. */
static int bench_tc_tcp_testrun(struct tc_bench *b)
{
	static unsigned char frames[MIX_FLOWS][MIX_FRAME_MAX];
	double ns[PROG_MAX][TC_ROUNDS], med[PROG_MAX], samples = 0;
	unsigned cycle = 1u << 15; /* port pairs of their own, after the real path's */

	if (!b->np->tcx) {
		printf("# tc_tcp_testrun_*: not run: without TCX, vmprobe's programs run by "
		       "BPF_PROG_TEST_RUN take the fallback path, not the tap's classid\n");
		return 0;
	}
	printf("# TC cost per packet with TCP flow tracking by BPF_PROG_TEST_RUN "
	       "(tc_tcp_testrun_*): the same TCP mix, each frame run once, kernel-reported ns "
	       "per run (its clock read included, alike for every program); vmprobe through its "
	       "tap's own programs of TCX links; %d interleaved rounds after a warm-up round\n",
	       TC_ROUNDS);
	for (int r = -1; r < TC_ROUNDS; r++) {
		for (int p = 0; p < PROG_MAX; p++) {
			double t = 0;
			int err = mix_testrun_round(b, p, &cycle, frames, &t, &samples);

			if (err)
				return err;
			if (r >= 0)
				ns[p][r] = t;
		}
	}
	for (int p = 0; p < PROG_MAX; p++)
		med[p] = median(ns[p], TC_ROUNDS);
	print_tc("tc_tcp_testrun_", prog_names[PROG_VMPROBE], "", med);
	printf("# TCP mix by test run, per frame: vmprobe adds %.2f ns, naive %.2f ns, atomic "
	       "%.2f ns over empty\n", med[PROG_VMPROBE] - med[PROG_EMPTY],
	       med[PROG_NAIVE] - med[PROG_EMPTY], med[PROG_ATOMIC] - med[PROG_EMPTY]);
	return 0;
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

/* The fallback path: BPF_PROG_TEST_RUN cannot set tc_classid. */
/* What the fallback-path test runs measured: ns per run, and the kernel's own ns. */
struct testrun {
	double ns[PROG_MAX][NR_SIZES][TC_ROUNDS];
	unsigned kns[PROG_MAX][NR_SIZES][TC_ROUNDS];
	__u64 runs;
};

/* Interleaved rounds of every program on every frame size; round -1 is a warm-up. */
static int testrun_rounds(struct tc_bench *b, const int fds[PROG_MAX],
			  unsigned char frame[NR_SIZES][2048], struct testrun *t)
{
	for (int r = -1; r < TC_ROUNDS; r++) {
		for (size_t s = 0; s < NR_SIZES; s++) {
			for (int p = 0; p < PROG_MAX; p++) {
				double ns = 0;
				unsigned k = 0;
				int err = time_prog(fds[p], b->ifindex, frame[s], frame_sizes[s], &ns, &k);

				if (err) {
					fprintf(stderr, "bench: test run of %s on %u bytes failed (%s)\n",
						prog_names[p], frame_sizes[s], strerror(-err));
					return err;
				}
				if (r >= 0) {
					t->ns[p][s][r] = ns;
					t->kns[p][s][r] = k;
				}
			}
			t->runs += TC_REPEAT;
		}
	}
	return 0;
}

/*
 * A program that missed its entry would be timed on a cheaper path: each
 * must have counted every run. Both reference programs count in the one entry.
 */
static int testrun_check(struct tc_bench *b, int slot, __u64 runs)
{
	struct ref_value rval = {};
	struct net_stats st;
	__u64 packets = 0;

	net_read(b->np, (unsigned)slot, NET_DIR_TX, &st);
	for (int i = 0; i < NET_SIZE_SLOTS; i++)
		packets += st.size_slots[i];
	if (bpf_map_lookup_elem(bpf_map__fd(b->ref->maps.ref_counts), &b->rkey, &rval))
		rval.packets = 0;
	if (packets == runs && rval.packets == 2 * runs && !net_unknown_frames(b->np))
		return 0;
	fprintf(stderr, "bench: the programs did not count every run: expected %llu each, "
		"vmprobe %llu, naive and atomic %llu, vmprobe unknown-device %llu\n",
		(unsigned long long)runs, (unsigned long long)packets,
		(unsigned long long)rval.packets, (unsigned long long)net_unknown_frames(b->np));
	return -EPROTO;
}

static void testrun_report(const struct testrun *t)
{
	static const char vmprobe[] = "vmprobe_fallback";
	double mix[PROG_MAX][TC_ROUNDS], med[PROG_MAX], med_size[NR_SIZES][PROG_MAX];

	for (int p = 0; p < PROG_MAX; p++) {
		for (int r = 0; r < TC_ROUNDS; r++) {
			mix[p][r] = 0;
			for (size_t s = 0; s < NR_SIZES; s++)
				mix[p][r] += t->ns[p][s][r] / NR_SIZES;
		}
		med[p] = median(mix[p], TC_ROUNDS);
		for (size_t s = 0; s < NR_SIZES; s++)
			med_size[s][p] = median(t->ns[p][s], TC_ROUNDS);
	}
	printf("# unsuffixed: each program on one %u-byte and one %u-byte frame, mean of the two\n",
	       frame_sizes[0], frame_sizes[1]);
	print_tc("tc_testrun_", vmprobe, "", med);
	for (size_t s = 0; s < NR_SIZES; s++) {
		char suffix[16];

		snprintf(suffix, sizeof(suffix), "_%ub", frame_sizes[s]);
		print_tc("tc_testrun_", vmprobe, suffix, med_size[s]);
	}
	for (int p = 0; p < PROG_MAX; p++) {
		printf("# kernel-reported ns/run of %s (whole ns; %u-byte rounds, then %u-byte):",
		       p == PROG_VMPROBE ? vmprobe : prog_names[p], frame_sizes[0], frame_sizes[1]);
		for (size_t s = 0; s < NR_SIZES; s++)
			for (int r = 0; r < TC_ROUNDS; r++)
				printf(" %u", t->kns[p][s][r]);
		printf("\n");
	}
	printf("# fallback path, not the goal: vmprobe adds %.2f ns, naive %.2f ns, atomic %.2f ns "
	       "over empty\n", med[PROG_VMPROBE] - med[PROG_EMPTY], med[PROG_NAIVE] - med[PROG_EMPTY],
	       med[PROG_ATOMIC] - med[PROG_EMPTY]);
}

static int bench_tc_testrun(struct tc_bench *b)
{
	struct net_iface_key key = { .netns_cookie = b->netns_cookie, .ifindex = b->ifindex };
	static unsigned char frame[NR_SIZES][2048];
	static struct testrun t;
	struct ref_value rval = {};
	int fds[PROG_MAX], slot, err;

	memset(&t, 0, sizeof(t));
	slot = net_slot_alloc(b->np);
	if (slot < 0)
		return slot;
	/*
	 * As net_tap_attach does, minus attaching: the runs call the programs
	 * directly. Both maps hold their entry before the first run, so every
	 * timed run takes the steady-state path: for vmprobe a found slot, for
	 * the reference programs a lookup hit (never the insert).
	 */
	if (bpf_map_update_elem(net_ifaces_fd(b->np), &key, &slot, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(b->ref->maps.ref_counts), &b->rkey, &rval, BPF_ANY)) {
		err = -errno;
		goto cleanup;
	}
	memcpy(fds, b->fds, sizeof(fds));
	/* The tap ingress program: the test runs have no direction to match. */
	fds[PROG_VMPROBE] = net_prog_fd(b->np, true);
	for (size_t s = 0; s < NR_SIZES; s++)
		udp_frame(frame[s], frame_sizes[s]);
	printf("# TC cost per packet, fallback path (tc_testrun_*): BPF_PROG_TEST_RUN cannot set "
	       "tc_classid, so vmprobe looks its slot up by (netns, ifindex); %d runs per call, "
	       "%d interleaved rounds after a warm-up round, median per program\n", TC_REPEAT,
	       TC_ROUNDS);
	err = testrun_rounds(b, fds, frame, &t);
	if (!err)
		err = testrun_check(b, slot, t.runs);
	if (!err)
		testrun_report(&t);
cleanup:
	net_tap_forget(b->np, b->netns_cookie, b->ifindex);
	net_slot_free(b->np, (unsigned)slot);
	return err;
}

/* The tap up, with no other bench before the TCP mix (bench_tc_real does it otherwise). */
static int tap_up_alone(void)
{
	int sock = packet_sender(), err;

	if (sock < 0)
		return sock;
	err = tap_up(sock, TAP_NAME);
	if (err)
		fprintf(stderr, "bench: bringing %s up failed (%s)\n", TAP_NAME, strerror(-err));
	close(sock);
	return err;
}

/* Every TC bench, or with tcp_only the TCP mix on the real path alone. */
static int bench_tc(struct net_probe *np, bool tcp_only)
{
	struct tc_bench b = { .np = np, .rkey = { .direction = REF_DIR_TX } };
	struct ref_value rval = {};
	int tap_fd, err;

	tap_fd = tapdev_open(TAP_NAME);
	if (tap_fd < 0) {
		fprintf(stderr, "bench: creating tap %s failed (%s): run as root with /dev/net/tun\n",
			TAP_NAME, strerror(-tap_fd));
		return tap_fd;
	}
	b.tap_fd = tap_fd;
	b.ifindex = (int)if_nametoindex(TAP_NAME);
	b.rkey.ifindex = b.ifindex;
	b.ref = ref_bpf__open_and_load();
	if (!b.ref) {
		err = -errno;
		fprintf(stderr, "bench: loading the reference programs failed (%s)\n", strerror(-err));
		goto cleanup;
	}
	/* Without bpf_get_netns_cookie() the programs key taps by ifindex only. */
	if (np->have_netns_cookie) {
		err = netns_current_cookie(&b.netns_cookie);
		if (err)
			goto cleanup;
	}
	/* The naive program's entry exists before its first frame: no timed insert. */
	if (bpf_map_update_elem(bpf_map__fd(b.ref->maps.ref_counts), &b.rkey, &rval, BPF_ANY)) {
		err = -errno;
		goto cleanup;
	}
	b.fds[PROG_EMPTY] = bpf_program__fd(b.ref->progs.bench_empty);
	b.fds[PROG_VMPROBE] = net_prog_fd(np, false);
	b.fds[PROG_NAIVE] = bpf_program__fd(b.ref->progs.bench_naive);
	b.fds[PROG_ATOMIC] = bpf_program__fd(b.ref->progs.bench_atomic);

	err = tcp_only ? tap_up_alone() : bench_tc_real(&b);
	if (!err)
		err = bench_tc_tcp(&b);
	if (!err && !tcp_only)
		err = bench_tc_tcp_testrun(&b);
	if (!err && !tcp_only)
		err = bench_tc_testrun(&b);
cleanup:
	ref_bpf__destroy(b.ref);
	close(tap_fd);
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

/* IFNAME's counter STAT (64 bits, unlike getifaddrs'), as the current network namespace has it. */
static int read_ifstat(const char *ifname, const char *stat, __u64 *out)
{
	char path[128], buf[32];
	long n;

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", ifname, stat);
	n = read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	*out = strtoull(buf, NULL, 10);
	return 0;
}

static void sleep_ns(double ns)
{
	long long n = (long long)ns;
	struct timespec ts = { .tv_sec = (time_t)(n / 1000000000), .tv_nsec = (long)(n % 1000000000) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * What `bench alternate` switches between: a program, and the hook it
 * hangs from. vmprobe attaches as `vmprobe serve` does (network.tc_hook
 * auto: TCX links where the kernel has them); the references as a
 * generic exporter on libbpf 1.1 does (clsact filters). Only when CONFIGS
 * names them: vmprobe from clsact filters and the references from TCX
 * links (each program on the other hook), and vmprobe without TCP flow
 * tracking (what the tracking costs).
 */
enum alt_prog { AP_NONE, AP_EMPTY, AP_VMPROBE, AP_NAIVE, AP_ATOMIC };
/* vmprobe's programs as loaded for a config: its struct alt_run.np[] index. */
enum alt_load { AL_DEFAULT, AL_CLSACT, AL_NO_FLOWS, AL_MAX };
static const struct alt_config {
	const char *name;
	enum alt_prog prog;
	bool tcx;           /* a reference program from TCX links */
	enum alt_load load; /* vmprobe */
	bool extra;         /* only when CONFIGS names it */
} alt_configs[] = {
	{ "none", AP_NONE, false, AL_DEFAULT, false },
	{ "empty", AP_EMPTY, false, AL_DEFAULT, false },
	{ "vmprobe", AP_VMPROBE, false, AL_DEFAULT, false },
	{ "naive", AP_NAIVE, false, AL_DEFAULT, false },
	{ "atomic", AP_ATOMIC, false, AL_DEFAULT, false },
	{ "vmprobe-clsact", AP_VMPROBE, false, AL_CLSACT, true },
	{ "vmprobe-noflows", AP_VMPROBE, false, AL_NO_FLOWS, true },
	{ "tcx-empty", AP_EMPTY, true, AL_DEFAULT, true },
	{ "tcx-naive", AP_NAIVE, true, AL_DEFAULT, true },
};
#define ALT_MAX (sizeof(alt_configs) / sizeof(alt_configs[0]))

/* vmprobe as each load has it, each with a tap slot, and the references. */
struct alt_run {
	int ifindex;
	__u64 cookie;
	struct net_probe np[AL_MAX];
	int slot[AL_MAX];
	struct ref_bpf *ref;
	struct ref_key rkey;
	/* What the current segment attached. */
	struct tc_attachment a;
	int links[2];
};

static void tcx_detach(int links[2])
{
	for (int i = 0; i < 2; i++) {
		if (links[i] >= 0)
			close(links[i]);
		links[i] = -1;
	}
}

static int tcx_attach(int ifindex, int prog_fd, int links[2])
{
	links[0] = links[1] = -1;
	for (int i = 0; i < 2; i++) {
		int fd = bpf_link_create(prog_fd, ifindex,
					 (enum bpf_attach_type)(i == 0 ? TCX_INGRESS : TCX_EGRESS),
					 NULL);

		if (fd < 0) {
			tcx_detach(links);
			return -errno;
		}
		links[i] = fd;
	}
	return 0;
}

/*
 * vmprobe's drop tracepoint (kfree_skb: every freed skb on the host, e.g.
 * a UDP socket's overflow) is part of its cost: attached only for its
 * segments, as its TC programs are.
 */
static int alt_drops(struct net_probe *np, bool on)
{
	struct net_bpf *skel = np->skel;

	if (!on) {
		bpf_link__destroy(skel->links.net_kfree_skb);
		skel->links.net_kfree_skb = NULL;
		return 0;
	}
	if (!np->drops_on || skel->links.net_kfree_skb)
		return 0;
	skel->links.net_kfree_skb = bpf_program__attach(skel->progs.net_kfree_skb);
	return skel->links.net_kfree_skb ? 0 : -errno;
}

static int ref_fd(const struct alt_run *r, enum alt_prog p)
{
	return bpf_program__fd(p == AP_EMPTY ? r->ref->progs.bench_empty
			       : p == AP_NAIVE ? r->ref->progs.bench_naive
			       : r->ref->progs.bench_atomic);
}

/* Attaches config c for a segment; on failure leaves nothing attached. */
static int alt_attach(struct alt_run *r, const struct alt_config *c)
{
	struct net_probe *np = &r->np[c->load];
	int err;

	memset(&r->a, 0, sizeof(r->a));
	r->links[0] = r->links[1] = -1;
	if (c->prog == AP_NONE)
		return 0;
	if (c->prog != AP_VMPROBE)
		return c->tcx ? tcx_attach(r->ifindex, ref_fd(r, c->prog), r->links)
			      : ref_attach(r->ifindex, ref_fd(r, c->prog), true, &r->a);
	err = alt_drops(np, true);
	if (!err)
		err = net_tap_attach(np, r->ifindex, (unsigned)r->slot[c->load], &r->a);
	if (err)
		alt_drops(np, false);
	return err;
}

static int alt_detach(struct alt_run *r, const struct alt_config *c)
{
	int err = 0;

	if (c->tcx)
		tcx_detach(r->links);
	else if (c->prog == AP_VMPROBE)
		err = net_tap_detach(&r->np[c->load], r->cookie, &r->a);
	else if (c->prog != AP_NONE)
		err = ref_detach(&r->a);
	if (c->prog == AP_VMPROBE)
		alt_drops(&r->np[c->load], false);
	return err;
}

/* Frames vmprobe or a reference program counted so far (the empty one counts none). */
static __u64 alt_counted(const struct alt_run *r, const struct alt_config *c)
{
	__u64 frames = 0;

	if (c->prog == AP_VMPROBE) {
		for (unsigned d = 0; d < NET_DIR_MAX; d++) {
			struct net_stats st;

			net_read(&r->np[c->load], (unsigned)r->slot[c->load], d, &st);
			frames += sum_slots(st.size_slots, NET_SIZE_SLOTS);
		}
	} else if (c->prog == AP_NAIVE || c->prog == AP_ATOMIC) {
		struct ref_value v = {};

		bpf_map_lookup_elem(bpf_map__fd(r->ref->maps.ref_counts), &r->rkey, &v);
		frames = v.packets;
	}
	return frames;
}

/*
 * Each frame received in the window met the probe: vmprobe (per-CPU
 * counters, exact) and atomic counted at least as many. The naive
 * program's unlocked read-modify-write loses updates when CPUs race, as
 * such exporters do: it must only have run.
 */
static int alt_check(const struct alt_config *c, __u64 counted, __u64 received)
{
	if ((c->prog == AP_VMPROBE || c->prog == AP_ATOMIC) && counted < received) {
		fprintf(stderr, "bench: %s counted %llu frames, fewer than the %llu received\n",
			c->name, (unsigned long long)counted, (unsigned long long)received);
		return -EPROTO;
	}
	if (c->prog == AP_NAIVE && received && !counted) {
		fprintf(stderr, "bench: %s counted nothing of %llu frames\n", c->name,
			(unsigned long long)received);
		return -EPROTO;
	}
	return 0;
}

/* The configs CONFIGS names (comma-separated), or all but the extra ones; their number. */
static unsigned alt_choose(const char *configs, unsigned order[ALT_MAX])
{
	unsigned nr = 0;

	for (unsigned i = 0; i < ALT_MAX; i++) {
		const char *name = alt_configs[i].name, *p = configs;
		size_t n = strlen(name);
		bool named = false;

		while (p && !named) {
			named = !strncmp(p, name, n) && (p[n] == ',' || !p[n]);
			p = strchr(p, ',');
			p = p ? p + 1 : NULL;
		}
		if (configs ? named : !alt_configs[i].extra)
			order[nr++] = i;
	}
	return nr;
}

static int alt_open(struct alt_run *r, const unsigned order[], unsigned nr)
{
	struct config cfg;
	struct ref_value zero = {};
	int err;

	err = config_load_default(&cfg);
	if (err)
		return err;
	for (unsigned t = 0; t < AL_MAX; t++) {
		bool wanted = false;

		for (unsigned i = 0; i < nr; i++)
			wanted |= alt_configs[order[i]].prog == AP_VMPROBE && alt_configs[order[i]].load == t;
		if (!wanted)
			continue;
		struct net_sizes sz = { cfg.max_vms, cfg.max_interfaces,
					t == AL_NO_FLOWS ? 0 : cfg.max_tcp_flows };

		err = net_probe_open(&r->np[t], &sz, t == AL_CLSACT ? TC_HOOK_CLSACT : cfg.tc_hook,
				     NULL);
		if (err)
			return err;
		if (r->np[t].have_netns_cookie) {
			err = netns_current_cookie(&r->cookie);
			if (err)
				return err;
		}
		err = alt_drops(&r->np[t], false);
		if (err)
			return err;
		r->slot[t] = net_slot_alloc(&r->np[t]);
		if (r->slot[t] < 0)
			return r->slot[t];
	}
	r->ref = ref_bpf__open_and_load();
	if (!r->ref)
		return -errno;
	r->rkey.ifindex = (__u32)r->ifindex;
	r->rkey.direction = REF_DIR_TX;
	/* The references' entry exists before their first frame, as in a steady state. */
	if (bpf_map_update_elem(bpf_map__fd(r->ref->maps.ref_counts), &r->rkey, &zero, BPF_ANY))
		return -errno;
	return 0;
}

static void alt_close(struct alt_run *r)
{
	for (unsigned t = 0; t < AL_MAX; t++) {
		if (r->slot[t] >= 0)
			net_slot_free(&r->np[t], (unsigned)r->slot[t]);
		if (r->np[t].skel)
			net_probe_close(&r->np[t]);
	}
	ref_bpf__destroy(r->ref);
}

/*
 * One segment of `bench alternate`: config c attached to ifname, settle_ns
 * waited, then IFNAME's `stat` per second over seg_ns into *rate; c
 * detached, and its count checked against the frames that went by. 0 or
 * -errno (said).
 */
static int alt_segment(struct alt_run *r, const struct alt_config *c, const char *ifname,
		       const char *stat, double seg_ns, double settle_ns, double *rate)
{
	__u64 v0 = 0, v1 = 0, p0 = 0, p1 = 0, n0, n1;
	double t0, t1;
	int err, e;

	err = alt_attach(r, c);
	if (err) {
		fprintf(stderr, "bench: attaching %s to %s failed (%s)\n", c->name, ifname,
			strerror(-err));
		return err;
	}
	n0 = alt_counted(r, c);
	sleep_ns(settle_ns);
	err = read_ifstat(ifname, stat, &v0);
	if (!err)
		err = read_ifstat(ifname, "rx_packets", &p0);
	t0 = now_ns(CLOCK_MONOTONIC);
	sleep_ns(seg_ns);
	if (!err)
		err = read_ifstat(ifname, stat, &v1);
	if (!err)
		err = read_ifstat(ifname, "rx_packets", &p1);
	t1 = now_ns(CLOCK_MONOTONIC);
	/* Lets the window's frames through the hook before it goes. */
	sleep_ns(settle_ns / 3);
	n1 = alt_counted(r, c);
	e = alt_detach(r, c);
	err = err ? err : e;
	if (err) {
		fprintf(stderr, "bench: reading or detaching on %s failed (%s)\n", ifname,
			strerror(-err));
		return err;
	}
	*rate = (double)(v1 - v0) * 1e9 / (t1 - t0);
	return alt_check(c, n1 - n0, p1 - p0);
}

/*
 * `bench alternate IFNAME SECONDS SEGMENT_MS SETTLE_MS METRIC packets|bits
 * [CONFIGS]`, for bench/net.sh: while traffic flows into IFNAME (in the
 * current network namespace), switches between no probe, the empty
 * program, vmprobe (as `vmprobe serve` attaches it) and the two reference
 * programs, in an order shuffled round by round. Each segment waits
 * SETTLE_MS after the switch (the attach's deferred work, the traffic's
 * own recovery), then prints "ROUND CONFIG METRIC RATE": IFNAME's received
 * packets or bits (Ethernet headers included) per second over the next
 * SEGMENT_MS. CONFIGS (e.g. "none,vmprobe", or "tcx-empty" among them)
 * narrows or widens the set (alt_configs). No round starts that would end after
 * SECONDS. Every config gets a segment in every round, so the drifts of
 * the shared machine that pairing within a round cancels are those slower
 * than a round, not than a whole run.
 */
static int alternate_main(char **argv, const char *configs)
{
	const char *ifname = argv[0], *metric = argv[4];
	double secs = atof(argv[1]), seg_ns = atof(argv[2]) * 1e6, settle_ns = atof(argv[3]) * 1e6;
	struct alt_run r = { .links = { -1, -1 } };
	bool bits = !strcmp(argv[5], "bits");
	const char *stat = bits ? "rx_bytes" : "rx_packets";
	unsigned order[ALT_MAX], nr, rounds = 0;
	double end, round_ns;
	int err;

	if (secs <= 0 || seg_ns <= 0 || settle_ns < 0 || (!bits && strcmp(argv[5], "packets"))) {
		fprintf(stderr, "usage: bench alternate IFNAME SECONDS SEGMENT_MS SETTLE_MS METRIC "
			"packets|bits [CONFIGS]\n");
		return 2;
	}
	nr = alt_choose(configs, order);
	if (nr < 2) {
		fprintf(stderr, "bench: CONFIGS must name two or more of");
		for (unsigned i = 0; i < ALT_MAX; i++)
			fprintf(stderr, "%s%s", i ? "," : " ", alt_configs[i].name);
		fprintf(stderr, "\n");
		return 2;
	}
	for (unsigned t = 0; t < AL_MAX; t++)
		r.slot[t] = -1;
	r.ifindex = (int)if_nametoindex(ifname);
	if (!r.ifindex) {
		fprintf(stderr, "bench: no interface %s here (%s)\n", ifname, strerror(errno));
		return 1;
	}
	err = alt_open(&r, order, nr);
	if (err) {
		fprintf(stderr, "bench: setting up on %s failed (%s): run as root\n", ifname,
			strerror(-err));
		goto cleanup;
	}
	round_ns = nr * (seg_ns + settle_ns * 4 / 3);
	srand(1);
	end = now_ns(CLOCK_MONOTONIC) + secs * 1e9;
	while (!err && now_ns(CLOCK_MONOTONIC) + round_ns < end) {
		/* Fisher-Yates: no config always follows the same one. */
		for (unsigned i = nr - 1; i > 0; i--) {
			unsigned j = (unsigned)rand() % (i + 1), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		for (unsigned i = 0; i < nr && !err; i++) {
			const struct alt_config *c = &alt_configs[order[i]];
			double rate = -1; /* set once the segment is measured, even if its check fails */

			err = alt_segment(&r, c, ifname, stat, seg_ns, settle_ns, &rate);
			if (rate >= 0)
				printf("%u %s %s %.0f\n", rounds, c->name, metric,
				       rate * (bits ? 8 : 1));
		}
		rounds++;
	}
	fflush(stdout);
cleanup:
	alt_close(&r);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct net_probe np = {};
	struct config cfg;
	bool tcp_only;
	int err;

	if ((argc == 8 || argc == 9) && !strcmp(argv[1], "alternate"))
		return alternate_main(argv + 2, argc == 9 ? argv[8] : NULL);
	tcp_only = argc == 2 && !strcmp(argv[1], "tcp");
	if (argc != 1 && !tcp_only) {
		fprintf(stderr, "usage: bench [tcp | alternate IFNAME SECONDS SEGMENT_MS SETTLE_MS METRIC packets|bits [CONFIGS]]\n");
		return 2;
	}
	err = config_load_default(&cfg);
	if (err) {
		fprintf(stderr, "bench: the default config does not load (%s)\n", strerror(-err));
		return 1;
	}
	/*
	 * The bench's own network namespace: nothing else sends on its tap or
	 * reacts to it, and the tap goes with the bench however it ends.
	 */
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "bench: creating a network namespace failed (%s): run as root\n",
			strerror(errno));
		return 1;
	}
	pin_to_current_cpu();
	err = net_probe_open(&np, &(struct net_sizes){ cfg.max_vms, cfg.max_interfaces, cfg.max_tcp_flows },
			     cfg.tc_hook, NULL);
	if (err) {
		fprintf(stderr, "bench: opening the network probe failed (%s): run as root\n",
			strerror(-err));
		return 1;
	}
	err = bench_tc(&np, tcp_only);
	net_probe_close(&np);
	return err ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * BPF_PROG_TEST_RUN of the tap programs on crafted frames: exact map
 * effects (bytes, size slots, direction, unknown-device counter) and the
 * frame and verdict left as they were; and of a tap's own programs of
 * TCX links, which must bring each frame to its slot with no lookup.
 * Prints TAP.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdarg.h>
#include <linux/bpf.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bpftest.h"
#include "../lib/pktgen.h"
#include "net.skel.h"
#include "probes/net/net_probe.h"
#include "core/tapdev.h"
#include "core/netns.h"

/* A local experimental EtherType: the program must not care. */
static void frame_of(unsigned char *f, unsigned size)
{
	static const unsigned char a[6] = { 0x52, 0x54, 0, 0, 0, 1 }, b[6] = { 0x52, 0x54, 0, 0, 0, 2 };

	pktgen_eth_frame(f, size, a, b, PKTGEN_ETH_P_LOCAL);
}

/* The test's probe, tap and slot. */
static struct net_probe np;
static struct net_iface_key key;
static int ifindex, slot;
static unsigned char frame[16384];
static __u64 want_bytes[NET_DIR_MAX];

/* Frames of many sizes each way: verdict, bytes and the size histogram's slot. */
static void case_sizes(void)
{
	static const struct {
		unsigned size;
		unsigned slot; /* ceil(log2(size)) */
		int ingress;
	} cases[] = {
		/* BPF_PROG_TEST_RUN takes 15 to about 3.5k bytes; larger
		 * frames are covered by the integration tests. */
		{ 15, 4, 1 },   { 16, 4, 0 },   { 17, 5, 1 },     { 60, 6, 1 },
		{ 64, 6, 1 },   { 65, 7, 1 },   { 128, 7, 0 },    { 129, 8, 0 },
		{ 1514, 11, 0 }, { 1518, 11, 1 }, { 2048, 11, 0 }, { 2049, 12, 1 },
		{ 3000, 12, 0 },
	};
	__u64 want_slots[NET_DIR_MAX][NET_SIZE_SLOTS] = {};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned dir = cases[i].ingress ? NET_DIR_TX : NET_DIR_RX;
		struct net_stats st;
		char what[128];
		int retval, same, err;

		frame_of(frame, cases[i].size);
		err = run(net_prog_fd(&np, cases[i].ingress), ifindex, frame, cases[i].size, &retval,
			  &same);
		want_bytes[dir] += cases[i].size;
		want_slots[dir][cases[i].slot]++;
		snprintf(what, sizeof(what), "%s frame of %u bytes: verdict TC_ACT_UNSPEC, frame unchanged",
			 cases[i].ingress ? "ingress" : "egress", cases[i].size);
		report(!err && retval == TC_ACT_UNSPEC && same, what,
		       "err %d, expected retval %d, actual %d, frame unchanged: %d", err,
		       TC_ACT_UNSPEC, retval, same);
		net_read(&np, slot, dir, &st);
		snprintf(what, sizeof(what), "%u-byte frame counted in slot %u of direction %s",
			 cases[i].size, cases[i].slot, dir == NET_DIR_TX ? "tx" : "rx");
		report(st.bytes == want_bytes[dir] &&
			       memcmp(st.size_slots, want_slots[dir], sizeof(st.size_slots)) == 0,
		       what, "bytes expected %llu actual %llu; slot %u expected %llu actual %llu",
		       (unsigned long long)want_bytes[dir], (unsigned long long)st.bytes,
		       cases[i].slot, (unsigned long long)want_slots[dir][cases[i].slot],
		       (unsigned long long)st.size_slots[cases[i].slot]);
	}
}

/* Slot 0 was allocated but never mapped: it must stay empty. */
static void case_other_slots(void)
{
	struct net_stats st0[NET_DIR_MAX];
	__u64 total = 0;

	net_read(&np, 0, NET_DIR_RX, &st0[0]);
	net_read(&np, 0, NET_DIR_TX, &st0[1]);
	for (int d = 0; d < NET_DIR_MAX; d++) {
		total += st0[d].bytes;
		for (int s = 0; s < NET_SIZE_SLOTS; s++)
			total += st0[d].size_slots[s];
	}
	report(total == 0, "other slots untouched", "slot 0 has %llu", (unsigned long long)total);
}

/* A device with no slot: counted as unknown, stats untouched, frame passed. */
static void case_unknown_device(void)
{
	__u64 before = net_unknown_frames(&np);
	struct net_stats st;
	int retval, same, err;

	bpf_map_delete_elem(net_ifaces_fd(&np), &key);
	frame_of(frame, 100);
	err = run(net_prog_fd(&np, true), ifindex, frame, 100, &retval, &same);
	net_read(&np, slot, NET_DIR_TX, &st);
	report(!err && retval == TC_ACT_UNSPEC && same, "unknown device: frame passed unchanged",
	       "err %d retval %d same %d", err, retval, same);
	report(net_unknown_frames(&np) == before + 1 && st.bytes == want_bytes[NET_DIR_TX],
	       "unknown device: counted as unknown, no slot touched",
	       "unknown expected %llu actual %llu; bytes expected %llu actual %llu",
	       (unsigned long long)before + 1, (unsigned long long)net_unknown_frames(&np),
	       (unsigned long long)want_bytes[NET_DIR_TX], (unsigned long long)st.bytes);
}

/* The same ifindex in another namespace is another key. */
static void case_netns_key(void)
{
	struct net_iface_key other = key;
	__u32 got;

	other.netns_cookie ^= 1;
	bpf_map_update_elem(net_ifaces_fd(&np), &key, &slot, BPF_ANY);
	report(bpf_map_lookup_elem(net_ifaces_fd(&np), &other, &got) != 0,
	       "tap key includes the network namespace", "lookup with another cookie found slot %u",
	       got);
}

/*
 * From TCX, the tap's own programs set its classid and go on to the
 * shared program of their direction. With the tap's key gone from the
 * hash, only that classid can bring a frame to the slot.
 */
static void case_tcx(void)
{
	struct tc_attachment a;
	struct net_stats before[NET_DIR_MAX], after[NET_DIR_MAX];
	__u64 unknown = net_unknown_frames(&np);
	int retval[2] = {}, same[2] = {}, prog[2], err;

	err = net_tap_attach(&np, ifindex, slot, &a);
	report(!err && a.tcx, "TCX: the tap's programs attach", "err %d tcx %d", err, a.tcx);
	prog[0] = tcx_link_prog_fd(&a, true);
	prog[1] = tcx_link_prog_fd(&a, false);
	net_tap_forget(&np, key.netns_cookie, ifindex);
	for (int d = 0; d < NET_DIR_MAX; d++)
		net_read(&np, slot, d, &before[d]);
	frame_of(frame, 100);
	err = run(prog[0], ifindex, frame, 100, &retval[0], &same[0]);
	frame_of(frame, 300);
	if (!err)
		err = run(prog[1], ifindex, frame, 300, &retval[1], &same[1]);
	close(prog[0]);
	close(prog[1]);
	for (int d = 0; d < NET_DIR_MAX; d++)
		net_read(&np, slot, d, &after[d]);
	report(!err && retval[0] == TC_ACT_UNSPEC && retval[1] == TC_ACT_UNSPEC && same[0] &&
		       same[1],
	       "TCX: frames passed unchanged", "err %d retval %d %d same %d %d", err, retval[0],
	       retval[1], same[0], same[1]);
	report(after[NET_DIR_TX].bytes - before[NET_DIR_TX].bytes == 100 &&
		       after[NET_DIR_RX].bytes - before[NET_DIR_RX].bytes == 300 &&
		       net_unknown_frames(&np) == unknown,
	       "TCX: ingress counted as tx, egress as rx, in the tap's slot with no lookup",
	       "tx bytes expected 100 actual %llu, rx bytes expected 300 actual %llu, "
	       "unknown-device frames +%llu",
	       (unsigned long long)(after[NET_DIR_TX].bytes - before[NET_DIR_TX].bytes),
	       (unsigned long long)(after[NET_DIR_RX].bytes - before[NET_DIR_RX].bytes),
	       (unsigned long long)(net_unknown_frames(&np) - unknown));
	err = net_tap_detach(&np, key.netns_cookie, &a);
	report(!err, "TCX: the tap's programs detach", "err %d", err);
}

/*
 * QEMU's TCP sockets when host_socks is full: the one that found no room
 * is added once there is room, when asked to retry, though it is in both
 * the old and the new list; none is counted twice.
 */
static void case_host_socks_full(void)
{
	const __u32 vm = 4242, other = 1;
	const __u64 sock = 1ULL << 40, fill = 1ULL << 41;
	int fd = bpf_map__fd(np.skel->maps.host_socks), err, err2;
	unsigned before = np.host_socks_nr;
	__u32 got = 0;
	__u64 k;

	if (!np.host_tcp_on) {
		n_test++;
		printf("ok %d - host sockets: a full map # SKIP no host TCP tracepoints here\n", n_test);
		return;
	}
	/* Full with another's entries (as if other VMs had them). */
	for (k = 0; k < NET_HOST_SOCKS_MAX; k++)
		bpf_map_update_elem(fd, &(__u64){ fill + k }, &other, BPF_ANY);
	err = net_host_socks_set(&np, vm, NULL, 0, &sock, 1, false);
	bpf_map_delete_elem(fd, &(__u64){ fill });
	/* Room again; the socket is in both lists now. */
	err2 = net_host_socks_set(&np, vm, &sock, 1, &sock, 1, true);
	report(err == -E2BIG && !err2 && !bpf_map_lookup_elem(fd, &sock, &got) && got == vm &&
		       np.host_socks_nr == before + 1,
	       "host sockets: one that found the map full is added when tried again",
	       "first %d (want %d), retry %d, entry %u, watched %u (want %u)", err, -E2BIG, err2,
	       got, np.host_socks_nr, before + 1);
	err = net_host_socks_set(&np, vm, &sock, 1, &sock, 1, true);
	report(!err && np.host_socks_nr == before + 1, "host sockets: a retry counts none twice",
	       "err %d, watched %u (want %u)", err, np.host_socks_nr, before + 1);
	net_host_socks_set(&np, vm, &sock, 1, NULL, 0, false);
	for (k = 1; k < NET_HOST_SOCKS_MAX; k++)
		bpf_map_delete_elem(fd, &(__u64){ fill + k });
}

int main(void)
{
	int tap_fd, err;

	err = net_probe_open(&np, &(struct net_sizes){ .vms = 8, .ifaces = 8, .flows = 1024 },
			     TC_HOOK_AUTO, NULL);
	if (err) {
		printf("not ok 1 - load the network probe\n#   %s\n", strerror(-err));
		return 1;
	}
	tap_fd = tapdev_open("vmpt-testrun");
	ifindex = (int)if_nametoindex("vmpt-testrun");
	if (tap_fd < 0 || !ifindex) {
		printf("not ok 1 - create a tap device\n#   %s\n", strerror(-tap_fd));
		return 1;
	}
	/* A slot other than 0 shows the index math, not a lucky default. */
	net_slot_alloc(&np);
	slot = net_slot_alloc(&np);
	if (np.have_netns_cookie)
		netns_current_cookie(&key.netns_cookie);
	key.ifindex = ifindex;
	bpf_map_update_elem(net_ifaces_fd(&np), &key, &slot, BPF_ANY);
	case_sizes();
	case_other_slots();
	case_unknown_device();
	case_netns_key();
	case_host_socks_full();
	if (np.tcx) {
		case_tcx();
	} else {
		n_test++;
		printf("ok %d - TCX: the tap's own programs # SKIP this kernel has no TCX\n", n_test);
	}
	close(tap_fd);
	net_probe_close(&np);
	printf("1..%d\n", n_test);
	return n_failed ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* TC programs on VM taps: per-slot frame counts, bytes and sizes (TCP: tcp.bpf.h). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "maps.bpf.h"
#include "vmprobe/net.h"
#include "hist.bpf.h"

#define TC_ACT_UNSPEC (-1)
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_TCP 6

/* Set by user space before load. */
const volatile __u32 max_ifaces = NET_DEFAULT_MAX_IFACES;
/*
 * bpf_get_netns_cookie() became callable from TC programs only in recent
 * kernels ("bpf: add bpf_get_netns_cookie helper to tc programs", 2025);
 * user space probes for it. Without it the verifier never walks the call.
 */
const volatile bool have_netns_cookie = true;
/* TCP flow tracking; off when network.max_tcp_flows is 0. */
const volatile bool tcp_on = true;

VMPROBE_MAP(net_ifaces, BPF_MAP_TYPE_HASH, struct net_iface_key, __u32, NET_DEFAULT_MAX_IFACES);

/* User space's record of each slot's tap, for the next serve (vmprobe/net.h); sized as net_ifaces. */
VMPROBE_MAP(net_slots, BPF_MAP_TYPE_ARRAY, __u32, struct net_slot, NET_DEFAULT_MAX_IFACES);

/*
 * When each slot's counting began (CLOCK_REALTIME ns, 0: unknown), kept by
 * user space and read by no program: pinned with the counters, so that an
 * adopted slot's _created is the one it had. Sized as net_ifaces.
 */
VMPROBE_MMAP_ARRAY(net_born, __u64, NET_DEFAULT_MAX_IFACES);

/* Per CPU, see net_stats_index(); sized by user space (CPUs x taps x 2). */
VMPROBE_MMAP_ARRAY(net_stats, struct net_pkt_cell, NET_DEFAULT_MAX_IFACES * NET_DIR_MAX);

/* Shared by all CPUs, see net_tcp_index(). */
VMPROBE_MMAP_ARRAY(net_tcp, struct net_tcp_cell, NET_DEFAULT_MAX_IFACES * NET_DIR_MAX);

VMPROBE_MAP(net_errors, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, NET_ERR_MAX);

static __always_inline void count_error(__u32 err)
{
	__u64 *v = bpf_map_lookup_elem(&net_errors, &err);

	if (v)
		*v += 1;
}

/*
 * From a TCX link: each tap's own small program (user/probes/net/tc.c) sets
 * skb->tc_classid and tail-calls the program for its direction,
 * [0] ingress, [1] egress. Filled by user space.
 */
VMPROBE_MAP(net_tap_progs, BPF_MAP_TYPE_PROG_ARRAY, __u32, __u32, 2);

/*
 * The tap's slot, with no lookup at all on the hot path: skb->tc_classid
 * holds slot+1. Under clsact, vmprobe attaches each filter with that
 * classid and cls_bpf stores it there before running the filter; from
 * TCX, the tap's own program stores it. A frame without one (a run
 * outside both, e.g. BPF_PROG_TEST_RUN, which cannot set tc_classid)
 * falls back to the (netns, ifindex) hash; the netns is skb->sk's, which
 * only a test run's frame is sure to have (user/probes/net/net.c).
 */
static __always_inline int tap_slot(struct __sk_buff *skb)
{
	struct net_iface_key key = {};
	__u32 *slot;

	if (skb->tc_classid)
		return skb->tc_classid - 1;
	if (have_netns_cookie)
		key.netns_cookie = bpf_get_netns_cookie(skb);
	key.ifindex = skb->ifindex;
	slot = bpf_map_lookup_elem(&net_ifaces, &key);
	return slot ? (int)*slot : -1;
}

#include "tcp.bpf.h"

static __always_inline int account(struct __sk_buff *skb, __u32 dir)
{
	struct net_pkt_cell *st;
	__u32 idx;
	int slot;

	slot = tap_slot(skb);
	if (slot < 0 || slot >= (int)max_ifaces) {
		count_error(NET_ERR_UNKNOWN_IFACE);
		return TC_ACT_UNSPEC;
	}
	idx = net_stats_index(bpf_get_smp_processor_id(), slot, dir, max_ifaces);
	st = bpf_map_lookup_elem(&net_stats, &idx);
	if (!st)
		return TC_ACT_UNSPEC;
	/* This CPU's cell: plain adds, no other writer. */
	st->bytes += skb->len;
	st->size_slots[hist_slot(skb->len, NET_SIZE_SLOTS)] += 1;
	if (tcp_on)
		tcp_track(skb, slot, dir);
	return TC_ACT_UNSPEC;
}

/* Tap ingress carries what the guest sent. */
SEC("tc")
int vmprobe_tap_ingress(struct __sk_buff *skb)
{
	return account(skb, NET_DIR_TX);
}

/* Tap egress carries what is delivered to the guest. */
SEC("tc")
int vmprobe_tap_egress(struct __sk_buff *skb)
{
	return account(skb, NET_DIR_RX);
}

VMPROBE_MAP(net_drops, BPF_MAP_TYPE_HASH, struct net_drop_key, __u64, 8192);

/*
 * A frame freed as dropped, with the kernel's reason. It is a VM's if its
 * device is a counted tap. Direction: on its way to the guest, a frame
 * went through dev_queue_xmit(), which sets the link-layer header where
 * the data starts, and stays so until the tap queues it (or drops it,
 * e.g. FULL_RING when the guest does not drain its ring). Any other frame
 * on the tap came from the guest: received (skb_iif is the tap), or
 * dropped while the tap built it from the guest's write (tun_get_user:
 * DEV_READY when the tap is down, DEV_HDR...), with no link-layer header
 * yet or its Ethernet header already pulled.
 */
SEC("tp_btf/kfree_skb")
int BPF_PROG(net_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct net_iface_key key = {};
	struct net_drop_key dkey = {};
	struct net_device *dev = skb->dev;
	__u64 one = 1, *v;
	bool to_guest;
	__u32 *slot;

	if (!dev)
		return 0;
	key.ifindex = dev->ifindex;
	if (have_netns_cookie)
		key.netns_cookie = BPF_CORE_READ(dev, nd_net.net, net_cookie);
	slot = bpf_map_lookup_elem(&net_ifaces, &key);
	if (!slot)
		return 0;
	dkey.slot = *slot;
	to_guest = skb->skb_iif != dev->ifindex && skb->mac_header != (__u16)~0U &&
		   (__u64)skb->data == (__u64)skb->head + skb->mac_header;
	dkey.dir = to_guest ? NET_DIR_RX : NET_DIR_TX;
	dkey.reason = reason;
	v = bpf_map_lookup_elem(&net_drops, &dkey);
	if (v)
		__sync_fetch_and_add(v, 1);
	else if (bpf_map_update_elem(&net_drops, &dkey, &one, BPF_NOEXIST))
		/* Raced with another CPU's first drop of this kind. */
		if ((v = bpf_map_lookup_elem(&net_drops, &dkey)))
			__sync_fetch_and_add(v, 1);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_HOST_SOCKS_MAX);
	__type(key, __u64); /* socket inode */
	__type(value, __u32); /* QEMU's tgid */
} host_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_HOST_VMS_MAX);
	__type(key, __u32); /* QEMU's tgid, entry made by user space */
	__type(value, struct net_host_tcp);
} host_tcp SEC(".maps");

/* Entries in host_socks, kept by user space: 0 makes the hooks free. */
volatile __u32 host_socks_nr;

/* The counters of the VM owning this socket, if a VM does. */
static __always_inline struct net_host_tcp *host_tcp_of(const struct sock *sk)
{
	__u64 ino;
	__u32 *tgid;

	if (!host_socks_nr)
		return NULL;
	ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
	tgid = ino ? bpf_map_lookup_elem(&host_socks, &ino) : NULL;
	return tgid ? bpf_map_lookup_elem(&host_tcp, tgid) : NULL;
}

/*
 * A segment received on an established socket: one sample of its
 * smoothed RTT (the kernel's srtt_us holds 8x the microseconds).
 */
SEC("tp_btf/tcp_probe")
int BPF_PROG(host_tcp_probe, struct sock *sk)
{
	struct net_host_tcp *h = host_tcp_of(sk);
	__u64 ns;

	if (!h)
		return 0;
	ns = (__u64)(BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3) * 1000;
	__sync_fetch_and_add(&h->srtt_sum_ns, ns);
	__sync_fetch_and_add(&h->srtt_slots[time_slot(ns, NET_RTT_SLOTS)], 1);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(host_tcp_retransmit, const struct sock *sk)
{
	struct net_host_tcp *h = host_tcp_of(sk);

	if (h)
		__sync_fetch_and_add(&h->retransmits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

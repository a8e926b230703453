// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* TC programs on VM taps: per-slot frame counts, bytes and sizes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vmprobe/net.h"
#include "hist.bpf.h"

#define TC_ACT_UNSPEC (-1)

/* Set by user space before load. */
const volatile __u32 max_ifaces = NET_DEFAULT_MAX_IFACES;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_DEFAULT_MAX_IFACES);
	__type(key, struct net_iface_key);
	__type(value, __u32);
} net_ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, NET_DEFAULT_MAX_IFACES * NET_DIR_MAX);
	__type(key, __u32);
	__type(value, struct net_stats);
} net_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NET_ERR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} net_errors SEC(".maps");

static __always_inline void count_error(__u32 err)
{
	__u64 *v = bpf_map_lookup_elem(&net_errors, &err);

	if (v)
		*v += 1;
}

static __always_inline int account(struct __sk_buff *skb, __u32 dir)
{
	struct net_iface_key key = {};
	struct net_stats *st;
	__u32 *slot, cpu, idx;

	key.netns_cookie = bpf_get_netns_cookie(skb);
	key.ifindex = skb->ifindex;
	slot = bpf_map_lookup_elem(&net_ifaces, &key);
	if (!slot) {
		count_error(NET_ERR_UNKNOWN_IFACE);
		return TC_ACT_UNSPEC;
	}
	cpu = bpf_get_smp_processor_id();
	idx = net_stats_index(cpu, *slot, dir, max_ifaces);
	st = bpf_map_lookup_elem(&net_stats, &idx);
	if (!st)
		return TC_ACT_UNSPEC;
	/* This CPU's cell: plain adds, no other writer. */
	st->bytes += skb->len;
	st->size_slots[hist_slot(skb->len, NET_SIZE_SLOTS)] += 1;
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Reference TC programs for `make bench`: the floor (a program that does
 * nothing) and what generic exporters do per packet (a hash-map update,
 * or atomic adds to a hash-map entry), to put the cost of vmprobe's tap
 * programs in proportion.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ref.h"

#define TC_ACT_UNSPEC (-1)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ref_key);
	__type(value, struct ref_value);
} ref_counts SEC(".maps");

SEC("tc")
int bench_empty(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}

/*
 * A generic exporter as the foundation issue has it: a hash-map update per
 * packet, the new value read, incremented and written back. Unlocked, so
 * two CPUs racing on one entry lose an update, as such exporters do.
 */
SEC("tc")
int bench_naive(struct __sk_buff *skb)
{
	struct ref_key key = {};
	struct ref_value val = {}, *old;

	key.ifindex = skb->ifindex;
	key.direction = REF_DIR_TX;
	old = bpf_map_lookup_elem(&ref_counts, &key);
	if (old)
		val = *old;
	val.packets++;
	val.bytes += skb->len;
	bpf_map_update_elem(&ref_counts, &key, &val, BPF_ANY);
	return TC_ACT_UNSPEC;
}

/*
 * A leaner exporter: the update only for a device's first packet, then
 * atomic adds in place. Exact, and cheaper than bench_naive: the stricter
 * reference. Same map and key, never attached alongside bench_naive.
 */
SEC("tc")
int bench_atomic(struct __sk_buff *skb)
{
	struct ref_key key = {};
	struct ref_value *v;

	key.ifindex = skb->ifindex;
	key.direction = REF_DIR_TX;
	v = bpf_map_lookup_elem(&ref_counts, &key);
	if (!v) {
		struct ref_value zero = {};

		bpf_map_update_elem(&ref_counts, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&ref_counts, &key);
		if (!v)
			return TC_ACT_UNSPEC;
	}
	/* Shared across CPUs, hence atomic. */
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, skb->len);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

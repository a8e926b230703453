// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Another tool's TC programs, for tests, counting frames: a clsact filter
 * that ends classification, and a TCX program that lets the next one run.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK 0
#define TCX_NEXT (-1)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} foreign_hits SEC(".maps");

SEC("tc")
int foreign(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&foreign_hits, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return TC_ACT_OK;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} foreign_next_hits SEC(".maps");

SEC("tc")
int foreign_next(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&foreign_next_hits, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return TCX_NEXT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

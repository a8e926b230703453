// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Another tool's TC programs, for tests, counting frames in foreign_hits:
 * a clsact filter that ends classification (key 0), and a TCX program
 * that lets the next one run (key 1).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK 0
#define TCX_NEXT (-1)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} foreign_hits SEC(".maps");

static __always_inline void hit(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&foreign_hits, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tc")
int foreign(struct __sk_buff *skb)
{
	hit(0);
	return TC_ACT_OK;
}

SEC("tc")
int foreign_next(struct __sk_buff *skb)
{
	hit(1);
	return TCX_NEXT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

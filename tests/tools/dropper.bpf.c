// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * For tests: a TC filter (at the receiver's ingress) that drops the first IPv4 TCP segment carrying
 * data from source port 19479, to make that socket retransmit once; it
 * passes everything else. drops[0] counts what it dropped.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define DROP_SPORT 19479

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

SEC("tc")
int dropper(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip + 1);
	__u32 key = 0;
	__u64 *n;

	if ((void *)(th + 1) > end || eth->h_proto != bpf_htons(0x0800) || ip->protocol != 6 ||
	    ip->ihl != 5 || th->source != bpf_htons(DROP_SPORT))
		return TC_ACT_OK;
	if (bpf_ntohs(ip->tot_len) <= 20 + th->doff * 4) /* no data */
		return TC_ACT_OK;
	n = bpf_map_lookup_elem(&drops, &key);
	if (!n || *n >= 1)
		return TC_ACT_OK;
	__sync_fetch_and_add(n, 1);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

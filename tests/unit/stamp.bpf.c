// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A probe's object in miniature, built in variants for test_pins: a map
 * the programs write (pinned) whose values change layout from variant to
 * variant, read-only data, and a program. Variants (-D):
 *   (none)        ops, bytes, a latency histogram;
 *   STAMP_ERRORS  an errors counter added after bytes, as drive_stats gained one;
 *   STAMP_MOVED   the same fields as STAMP_ERRORS and the same size, errors before bytes;
 *   STAMP_CODE    the first layout, other code and other read-only data.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct stamp_stats {
	__u64 ops;
#ifdef STAMP_MOVED
	__u64 errors;
	__u64 bytes;
#else
	__u64 bytes;
#ifdef STAMP_ERRORS
	__u64 errors;
#endif
#endif
	__u64 lat[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct stamp_stats);
} stamp_stats SEC(".maps");

#ifdef STAMP_CODE
const volatile __u32 stamp_slot = 1;
#else
const volatile __u32 stamp_slot = 0;
#endif

SEC("socket")
int stamp_count(struct __sk_buff *skb)
{
	__u32 key = stamp_slot;
	struct stamp_stats *s = bpf_map_lookup_elem(&stamp_stats, &key);

	if (s) {
		__sync_fetch_and_add(&s->ops, 1);
#ifdef STAMP_CODE
		__sync_fetch_and_add(&s->bytes, skb->len);
#endif
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

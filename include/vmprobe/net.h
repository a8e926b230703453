/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Network probe: what bpf/net.bpf.c and user/net.c agree on. */
#ifndef VMPROBE_NET_H
#define VMPROBE_NET_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/*
 * Frame-size histogram: slot i counts frames of (2^(i-1), 2^i] bytes, so
 * the cumulative bucket le=2^i is the sum of slots 0..i. The last slot
 * counts everything larger than 2^(NET_SIZE_SLOTS-2): it only feeds +Inf.
 */
#define NET_SIZE_SLOTS 19

enum net_dir {
	NET_DIR_RX = 0, /* into the guest: egress of the tap */
	NET_DIR_TX = 1, /* out of the guest: ingress of the tap */
	NET_DIR_MAX,
};

/* Default number of tap slots; `net.max_interfaces` in the config. */
#define NET_DEFAULT_MAX_IFACES 1024

/* Key of the tap→slot hash: a tap is unique by (netns, ifindex). */
struct net_iface_key {
	__u64 netns_cookie;
	__u32 ifindex;
	__u32 pad;
};
_Static_assert(sizeof(struct net_iface_key) == 16, "net_iface_key layout");

/*
 * Counters of one (slot, direction) on one CPU. Packets are not stored:
 * they are the sum of the size slots.
 */
struct net_stats {
	__u64 bytes;
	__u64 size_slots[NET_SIZE_SLOTS];
};
_Static_assert(sizeof(struct net_stats) == 8 * (1 + NET_SIZE_SLOTS), "net_stats layout");

/*
 * Drops on the way to or from a VM: key of the BPF-filled hash. reason is
 * the kernel's enum skb_drop_reason; user space names it from BTF.
 */
struct net_drop_key {
	__u32 slot;
	__u32 dir;
	__u32 reason; /* 6.8+: subsystem << 16 | reason within it */
	__u32 pad;
};
_Static_assert(sizeof(struct net_drop_key) == 16, "net_drop_key layout");

/* Per-CPU health counters of the TC programs, indexed by enum net_err. */
enum net_err {
	NET_ERR_UNKNOWN_IFACE = 0, /* a frame on a tap with no slot */
	NET_ERR_MAX,
};

/*
 * Index of a (cpu, slot, dir) cell in the mmapable stats array. Each CPU
 * owns a contiguous region, so the programs update with plain adds and a
 * reader sums the regions.
 */
static inline __u32 net_stats_index(__u32 cpu, __u32 slot, __u32 dir, __u32 max_ifaces)
{
	return (cpu * max_ifaces + slot) * NET_DIR_MAX + dir;
}

#endif

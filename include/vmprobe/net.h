/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Network probe: what bpf/net.bpf.c and user/probes/net/ agree on. */
#ifndef VMPROBE_NET_H
#define VMPROBE_NET_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif
#include "vmprobe/hist.h"

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
/* Default size of the TCP flow table; `network.max_tcp_flows`. */
#define NET_DEFAULT_MAX_FLOWS 65536

/*
 * TCP round-trip time, log2 slots of time units (vmprobe/hist.h): up to
 * 2^34 units (16 s), the last slot beyond.
 */
#define NET_RTT_SLOTS 36

/*
 * An RTT sample times a segment in one direction until its answer: a
 * segment the guest sent is answered by the peer, its RTT is the network
 * path; a segment delivered to the guest is answered by the guest. The
 * program that sees the answer records the sample, in the cell of the
 * answer's direction: network-path samples in rx, guest-path in tx.
 */
#define NET_PATH_NETWORK NET_DIR_RX
#define NET_PATH_GUEST NET_DIR_TX

/* Key of the tap→slot hash: a tap is unique by (netns, ifindex). */
struct net_iface_key {
	__u64 netns_cookie;
	__u32 ifindex;
	__u32 pad;
};
_Static_assert(sizeof(struct net_iface_key) == 16, "net_iface_key layout");

/*
 * What user space attached for a slot (net_slots, indexed by slot; no
 * program reads it): pinned with the counters, so that the next vmprobe
 * serve knows which tap each slot counts and how its programs hang there.
 */
struct net_slot {
	__u64 netns_cookie; /* the tap's network namespace */
	__u32 ifindex;
	__u32 flags; /* NET_SLOT_* */
#ifdef VMPROBE_TEST_UPGRADE_VARIANT
	/* Test only (Makefile's TEST_UPGRADE_VARIANT): another layout of a pinned map. */
	__u64 test_layout_variant;
#define NET_SLOT_TEST_BYTES 8
#else
#define NET_SLOT_TEST_BYTES 0
#endif
};
_Static_assert(sizeof(struct net_slot) == 16 + NET_SLOT_TEST_BYTES, "net_slot layout");

#define NET_SLOT_USED (1u << 0)  /* the slot counts a tap */
#define NET_SLOT_TCX (1u << 1)   /* by TCX links (pinned as links/tapSLOT_in, _eg), else clsact */
#define NET_SLOT_QDISC (1u << 2) /* clsact: vmprobe made the qdisc */

/*
 * Members declared once, reachable both as a named struct TAG (a map
 * cell) and directly in the enclosing struct: the kernel's
 * __struct_group() (uapi/linux/stddef.h), which BPF code cannot include.
 */
#define NET_STRUCT_GROUP(TAG, NAME, ...)    \
	union {                             \
		struct {                    \
			__VA_ARGS__         \
		};                          \
		struct TAG {                \
			__VA_ARGS__         \
		} NAME;                     \
	}

/*
 * Counters of one (slot, direction), as a reader gets them (summed over
 * CPUs). The programs keep them in two maps:
 * - pkt, struct net_pkt_cell, in net_stats: what every frame updates, one
 *   cell per CPU so that frames cost plain adds. Packets are not stored:
 *   they are the sum of the size slots.
 * - tcp, struct net_tcp_cell, in net_tcp: updated per TCP event and RTT
 *   sample, not per frame, so one cell shared by all CPUs (atomic adds):
 *   two thirds of the counters, kept once instead of once per CPU.
 */
struct net_stats {
	NET_STRUCT_GROUP(net_pkt_cell, pkt,
		__u64 bytes;
		__u64 size_slots[NET_SIZE_SLOTS];
	);
	NET_STRUCT_GROUP(net_tcp_cell, tcp,
		/* TCP segments of this direction (tx: sent by the guest). */
		__u64 tcp_retransmits;
		__u64 tcp_resets;
		/* Handshakes completed whose SYN went this way (tx: opened by the guest). */
		__u64 tcp_opened;
		/* RTT samples answered in this direction: see NET_PATH_*. */
		__u64 rtt_sum_ns;
		__u64 rtt_slots[NET_RTT_SLOTS];
	);
};
_Static_assert(sizeof(struct net_pkt_cell) == 8 * (1 + NET_SIZE_SLOTS), "net_pkt_cell layout");
_Static_assert(sizeof(struct net_tcp_cell) == 8 * (4 + NET_RTT_SLOTS), "net_tcp_cell layout");
_Static_assert(sizeof(struct net_stats) ==
		       sizeof(struct net_pkt_cell) + sizeof(struct net_tcp_cell),
	       "net_stats layout");

/*
 * A TCP connection through a tap, from the guest's side. IPv4 addresses
 * are stored IPv4-mapped (::ffff:a.b.c.d); ports in network order.
 */
struct net_flow_key {
	__u32 slot;
	__u16 guest_port;
	__u16 peer_port;
	__u32 guest_addr[4];
	__u32 peer_addr[4];
};
_Static_assert(sizeof(struct net_flow_key) == 40, "net_flow_key layout");

/*
 * What the TC programs remember of a connection; arrays are indexed by
 * direction (enum net_dir). Times are bpf_ktime_get_ns(); 0 = none.
 *
 * The two directions of a flow run on two CPUs (e.g. data arriving from
 * the guest, ACKs from the host). Every segment reads the other
 * direction's pending samples, but only a segment with data writes (nxt,
 * the gap): those fields lie at least a cache line away from the rest, so
 * a bulk transfer's data does not evict, on the ACKs' CPU, the line every
 * ACK reads, nor the reverse.
 */
struct net_flow {
	/* Read by both directions on every segment; written per sample. */
	__u64 hs_ns;         /* handshake: when the SYN, then the SYN-ACK, passed */
	__u64 ts_ns[2];      /* when the pending TSval was first seen */
	__u64 seq_ns[2];     /* when the pending sequence range was sent */
	__u32 tsval[2];      /* pending TSval, waiting for its echo */
	__u32 last_tsval[2]; /* last TSval timed: each value is timed once */
	__u32 seq_end[2];    /* end of the pending range, waiting for its ack */
	__u32 net_rtt_us;    /* last network-path sample */
	__u8 state;          /* enum net_flow_state */
	__u8 opener;         /* direction of the SYN; NET_DIR_MAX if unknown */
	__u8 flags;          /* NET_FLOW_* */
	__u8 ts_pure;        /* bit dir: the pending TSval came on a pure ACK */
	__u8 apart[64];      /* whatever the map element's alignment */
	/* Written by every segment carrying data, read by its direction only. */
	__u32 nxt[2];        /* highest sequence end seen */
	__u32 hole_lo[2];    /* one gap in the sequence seen, [lo, hi) */
	__u32 hole_hi[2];
	__u64 hole_ns[2];    /* when the sequence gap opened */
};
_Static_assert(sizeof(struct net_flow) == 176, "net_flow layout");

enum net_flow_state {
	NET_FLOW_SYN_SENT = 1,
	NET_FLOW_SYN_RCVD,
	NET_FLOW_ESTABLISHED,
};

#define NET_FLOW_NXT(dir) (1u << (dir))      /* nxt[dir] is valid */
#define NET_FLOW_FIN(dir) (1u << (2 + (dir))) /* dir sent its FIN */
#define NET_FLOW_HOLE(dir) (1u << (4 + (dir)))
#define NET_FLOW_TS (1u << 6)                 /* the flow uses timestamps */

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
/* Entries of the drop map user space makes per tap: (direction, reason) kinds seen. */
#define NET_DROPS_PER_IFACE 16

/*
 * TCP sockets of QEMU processes on the host (migration, NBD, VNC, ...):
 * socket inode -> QEMU's tgid, filled by discovery; counters per tgid.
 */
#define NET_HOST_SOCKS_MAX 4096
#define NET_HOST_VMS_MAX 4096 /* user space sets it to network.max_interfaces */

struct net_host_tcp {
	__u64 retransmits;
	__u64 srtt_sum_ns;
	__u64 srtt_slots[NET_RTT_SLOTS];
	/* CLOCK_REALTIME ns when user space made the entry (its _created); no program writes it */
	__u64 born_ns;
};
_Static_assert(sizeof(struct net_host_tcp) == 8 * (3 + NET_RTT_SLOTS), "net_host_tcp layout");

/* Per-CPU health counters of the TC programs, indexed by enum net_err. */
enum net_err {
	NET_ERR_UNKNOWN_IFACE = 0, /* a frame on a tap with no slot */
	NET_ERR_NOT_PARSED,        /* IP frames whose headers could not be read */
	NET_TCP_FLOWS_CREATED,     /* flow table entries made */
	NET_TCP_FLOWS_CLOSED,      /* entries removed at FIN/ACK or RST */
	NET_TCP_FLOWS_MIDSTREAM,   /* entries made for a flow seen without its handshake */
	NET_TCP_FLOWS_FAILED,      /* entries that could not be made */
	NET_ERR_MAX,
};

/*
 * Index of a (cpu, slot, dir) cell in the mmapable net_stats array. Each
 * CPU owns a contiguous region, so the programs update with plain adds
 * and a reader sums the regions.
 */
static inline __u32 net_stats_index(__u32 cpu, __u32 slot, __u32 dir, __u32 max_ifaces)
{
	return (cpu * max_ifaces + slot) * NET_DIR_MAX + dir;
}

/* Index of a (slot, dir) cell in the shared net_tcp array. */
static inline __u32 net_tcp_index(__u32 slot, __u32 dir)
{
	return slot * NET_DIR_MAX + dir;
}

#endif

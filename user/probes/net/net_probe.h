/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The network probe: TC programs on the VMs' taps (net.c loads them, tc.c
 * hangs them from a tap), per-VM state (vm.c), metric families (metrics.c).
 */
#ifndef VMPROBE_NET_PROBE_H
#define VMPROBE_NET_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/probe.h"
#include "core/qemu.h"
#include "probes/net/tc.h"
#include "core/util.h"
#include "vmprobe/net.h"

struct net_bpf;
struct probe_pins;

/* An entry of the host_socks map: a QEMU TCP socket and its VM. */
struct net_host_sock {
	__u64 ino;
	__u32 tgid;
};

/* Names kept for enum skb_drop_reason values below this. */
#define NET_DROP_REASONS 256

struct net_probe {
	struct net_bpf *skel;
	unsigned max_ifaces;
	unsigned max_flows; /* TCP flow table; 0: no flow tracking */
	unsigned nr_cpus;
	struct net_pkt_cell *stats; /* the mmapped net_stats array, per CPU */
	size_t stats_len;
	struct net_tcp_cell *tcp; /* the mmapped net_tcp array */
	size_t tcp_len;
	__u64 *born; /* the mmapped net_born array: the slots' birth (slot_pool) */
	size_t born_len;
	struct slot_pool slots;
	bool tcx;               /* taps attach as TCX links, else clsact filters */
	bool have_netns_cookie; /* in TC programs, for the fallback key */
	bool drops_on;          /* kfree_skb with drop reasons */
	int drops_err;          /* last failure to attach kfree_skb, said once */
	unsigned nr_taps;       /* taps attached: kfree_skb is hooked while > 0 */
	bool host_tcp_on;       /* tcp_probe and tcp_retransmit_skb */
	int host_tcp_err;       /* last failure to attach them, said once */
	unsigned host_socks_nr; /* QEMU TCP sockets watched */
	__u64 flows_evicted;    /* last value reported, see net_flows_evicted() */
	bool flows_full_said;   /* evictions were logged */
	int tcx_said[8];        /* TCX attach failures logged, see tcx_fallback_said() */
	unsigned nr_tcx_said;
	char drop_reason[NET_DROP_REASONS][48];
	struct probe_pins *pins; /* serve's (core/pin.h), else NULL */
	/*
	 * While adopting an earlier serve's pins (pins.c): its slots' records
	 * not claimed yet (flags 0 once claimed, or never used), and its
	 * QEMU sockets (host_socks) with the VMs that claimed theirs.
	 */
	struct net_slot *adopt;
	struct net_host_sock *adopt_socks;
	size_t nr_adopt_socks;
	__u64 *adopt_tgids;
	size_t nr_adopt_tgids, cap_adopt_tgids;
};


/* What the maps are sized for (config: max_vms, network.max_*). */
struct net_sizes {
	unsigned vms;    /* VMs whose QEMU host sockets are counted */
	unsigned ifaces; /* taps counted at once */
	unsigned flows;  /* TCP flows tracked at once; 0: no flow tracking */
};

/*
 * Opens, sizes and loads the programs and maps, for taps to be attached
 * from `hook`; with serve's pins, adopting what an earlier serve pinned.
 * 0 or -errno.
 */
int net_probe_open(struct net_probe *np, const struct net_sizes *sz, enum tc_hook hook,
		   struct probe_pins *pins);
void net_probe_close(struct net_probe *np);

/*
 * Sizes an opened skeleton's maps for nr_cpus possible CPUs: what
 * net_probe_open() loads, and what the memory model
 * (tests/unit/test_memory.c) counts. 0 or -errno.
 */
int net_maps_size(struct net_bpf *skel, unsigned nr_cpus, const struct net_sizes *sz);

/*
 * Counts the tap `ifindex` of the current network namespace as `slot`
 * (from net_slot_alloc) and attaches the TC programs: from TCX links if
 * the probe uses them, else, or when those fail (a->tcx_err says why),
 * from clsact filters; 0 or -errno.
 */
int net_tap_attach(struct net_probe *np, int ifindex, unsigned slot, struct tc_attachment *a);
/* A tap is counted as `a` says: recorded for the next serve, the drop hook on. */
void net_tap_counted(struct net_probe *np, const struct tc_attachment *a);
/* Attaches kfree_skb while a tap is counted, detaches it when none is. */
void net_drop_hook(struct net_probe *np);
/* Detaches (current namespace) and forgets the tap's key. */
int net_tap_detach(struct net_probe *np, __u64 netns_cookie, struct tc_attachment *a);
/* Forgets the key only: the tap and its filters are already gone. */
void net_tap_forget(struct net_probe *np, __u64 netns_cookie, int ifindex);

/* A zeroed slot, or -ENOSPC. */
int net_slot_alloc(struct net_probe *np);
void net_slot_free(struct net_probe *np, unsigned slot);

/* Sums one (slot, direction) over all CPUs. */
void net_read(const struct net_probe *np, unsigned slot, unsigned dir, struct net_stats *out);

/* Calls fn for every (slot, direction, reason) with drops; stops on non-zero. */
int net_drops_foreach(const struct net_probe *np,
		      int (*fn)(const struct net_drop_key *k, __u64 count, void *arg), void *arg);

/* Frames the programs saw on a device they have no slot for. */
__u64 net_unknown_frames(const struct net_probe *np);
/* One of the programs' health counters, summed over CPUs. */
__u64 net_counter(const struct net_probe *np, enum net_err which);
/* Entries in the TCP flow table now (a walk of it). */
long net_flows_live(const struct net_probe *np);
/*
 * Flows the full table evicted, as far as can be told (monotonic); also
 * the entries now, from the same walk.
 */
__u64 net_flows_evicted(struct net_probe *np, long *live);

/*
 * QEMU's own TCP sockets on the host. A VM's counters exist from
 * net_host_vm_add() to net_host_vm_del(); net_host_socks_set() replaces
 * its sockets `old` by `now` (socket inodes, both sorted and each once, as
 * host_socks_sort leaves them). 0 or -errno: then some of `now` are not in
 * the map (full); call again with `retry` and they are added where they
 * fit (those in both `old` and `now` too).
 */
int net_host_vm_add(struct net_probe *np, __u32 tgid);
void net_host_vm_del(struct net_probe *np, __u32 tgid);
int net_host_socks_set(struct net_probe *np, __u32 tgid, const __u64 *old, size_t nr_old,
		       const __u64 *now, size_t nr_now, bool retry);
/*
 * Attaches (on) or detaches the host TCP tracepoints; net_host_socks_set()
 * keeps them attached exactly while sockets are watched. 0 or -errno.
 */
int net_host_tcp_hooks(struct net_probe *np, bool on);
/* Calls fn with every VM's counters (read in batches); stops on non-zero. */
int net_host_foreach(const struct net_probe *np,
		     int (*fn)(__u32 tgid, const struct net_host_tcp *t, void *arg), void *arg);

/*
 * The probe's pins (pins.c): each slot's record (net_slots) and TCX
 * links, and adopting those an earlier serve left.
 */
/* Records the tap of a->classid - 1 and pins its TCX links (serve with persist). */
void net_slot_record(struct net_probe *np, const struct tc_attachment *a);
/* Forgets that record and removes those pins. */
void net_slot_unrecord(struct net_probe *np, struct tc_attachment *a);
/* serve's pins: lets go of the tap, which goes on counting for the next serve. */
void net_tap_leave(struct net_probe *np, struct tc_attachment *a);
/* After loading: an earlier serve's slots, sockets and hooks to adopt; 0 or -errno. */
int net_adopt_open(struct net_probe *np);
void net_adopt_free(struct net_probe *np);
/* Whether an earlier serve's slots wait to be claimed. */
bool net_adopting(const struct net_probe *np);
/*
 * The slot an earlier serve counted the tap (netns_cookie, ifindex) in:
 * claimed (its counters go on), or -ENOENT. Its record in *rec.
 */
int net_tap_claim(struct net_probe *np, __u64 netns_cookie, int ifindex, struct net_slot *rec);
/*
 * Counts the tap of a claimed slot: takes its programs over where the
 * earlier serve hung them (no frame uncounted), else attaches them
 * afresh; 0 or -errno.
 */
int net_tap_adopt(struct net_probe *np, int ifindex, unsigned slot, const struct net_slot *rec,
		  struct tc_attachment *a);
/*
 * The QEMU sockets an earlier serve watched for the VM `tgid`, now this
 * serve's (sorted, malloc'ed; NULL and 0 if none).
 */
__u64 *net_host_adopt_socks(struct net_probe *np, __u32 tgid, size_t *nr);
/* The first scan is over: what no VM claimed is released, hooks follow what is counted. */
void net_adopted(struct net_probe *np);

/* Program fds, for the bench and the BPF_PROG_TEST_RUN tests. */
int net_prog_fd(const struct net_probe *np, bool ingress);
int net_ifaces_fd(const struct net_probe *np);
/* The program array the taps' own TCX programs tail-call: [0] ingress, [1] egress. */
int net_tap_progs_fd(const struct net_probe *np);

/* One tap of a VM as the probe counts it. */
struct tap_state {
	int ifindex;
	__u64 netns_cookie;
	int slot; /* -1 while not counted */
	struct tc_attachment att;
	int last_error; /* of the last attach try, to log each failure once */
};

/* QEMU's TCP socket inodes, sorted, each once: watched, and listening (never watched). */
struct host_socks {
	__u64 *watch, *listen;
	size_t nr_watch, nr_listen;
};

/*
 * Sorts the TCP sockets of a walk (`socks`: those sockfs calls TCP or
 * TCPv6, or could not name) into `now`'s watched (established and the
 * like) and listening: they receive and retransmit no segment, and nearly
 * every VM has one (VNC, the monitor), which would keep the host TCP hooks
 * attached for nothing. The rest, which no table lists (not connected,
 * or reset), are neither: looked at again at the next walk. A socket `was`
 * sorted keeps its verdict while QEMU holds it: NET_DIR/tcp and tcp6, which
 * list every TCP socket of the namespace (tens of thousands on a busy host,
 * milliseconds to read, and not read atomically), are read only for sockets
 * not sorted before. A `partial` walk (an fd it could not tell a socket
 * or not) drops no watched socket. A socket held by two fds, or listed
 * twice, is in `now` once. Returns how many tables it read, or -errno
 * (`now` empty).
 */
int host_socks_sort(const char *net_dir, const struct host_socks *was, const __u64 *socks,
		    size_t n, bool partial, struct host_socks *now);
void host_socks_free(struct host_socks *s);

/* The probe's state of one VM (its taps' is in each vm_iface): QEMU's host sockets. */
struct net_vm {
	struct host_socks socks; /* QEMU's TCP sockets, by verdict */
	bool socks_missing; /* some watched ones are not in host_socks (full): tried again */
	bool host_counted; /* its host_tcp entry is made */
	int host_err;      /* the last failure to make it, said once */
};

struct discovery;
struct expo_family;
struct expo;
struct strbuf;
struct vm;
struct vm_iface;

extern const struct probe_ops net_probe_ops;

/* probe_ops of the VM table (vm.c). */
int net_vm_add(struct probe *p, struct discovery *d, struct vm *vm);
bool net_vm_pending(struct probe *p, const struct vm *vm);
void net_vm_sync(struct probe *p, struct discovery *d, struct vm *vm,
		 const struct vm_snapshot *snap);
void net_vm_del(struct probe *p, struct discovery *d, struct vm *vm);
/* The slot of a VM's NIC, -1 if it is not counted. */
int net_iface_slot(const struct probe *p, const struct vm_iface *ifc);
/* The hook a counted NIC's programs hang from ("tcx", "clsact"), NULL if not counted. */
const char *net_iface_hook(const struct probe *p, const struct vm_iface *ifc);

/* Metric families (metrics.c). */
const struct expo_family *net_families(size_t *nr);
void net_render(struct probe *p, struct discovery *d, struct expo *e);
void net_render_self(struct probe *p, struct discovery *d, struct expo *e);

#endif

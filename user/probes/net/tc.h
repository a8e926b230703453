/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * TC attachment that leaves other programs and filters alone: TCX links
 * where the kernel has them, classic clsact/cls_bpf filters otherwise.
 */
#ifndef VMPROBE_TC_H
#define VMPROBE_TC_H

#include <linux/types.h>
#include <stdbool.h>

struct btf;

/* Which TC hook vmprobe's programs hang from (network.tc_hook). */
enum tc_hook {
	TC_HOOK_AUTO,   /* TCX where the kernel has it, else clsact */
	TC_HOOK_TCX,    /* TCX links (Linux 6.6+) */
	TC_HOOK_CLSACT, /* cls_bpf filters under a clsact qdisc */
	TC_HOOK_MAX,
};

extern const char *const tc_hook_names[TC_HOOK_MAX];

/*
 * TCX's attach types, as the kernel's UAPI numbers them (enum
 * bpf_attach_type, a stable ABI); Debian 12's headers and libbpf 1.1
 * predate them.
 */
#define TCX_INGRESS 46 /* BPF_TCX_INGRESS */
#define TCX_EGRESS 47  /* BPF_TCX_EGRESS */

/*
 * Does this kernel have TCX ("bpf: Add fd-based tcx multi-prog infra with
 * link support", Linux 6.6)? Told by its BTF: the attach type exists.
 */
bool tcx_supported(const struct btf *vmlinux);

/* vmprobe's two programs on one device, as the kernel numbered them. */
struct tc_attachment {
	int ifindex;
	bool tcx;           /* TCX links below; else clsact filters */
	bool created_qdisc; /* the clsact qdisc did not exist before us */
	bool attached[2];   /* [0] ingress, [1] egress */
	__u32 handle[2];
	__u32 priority[2];
	int link_fd[2];     /* TCX: the links, each to the device's own program */
	__u32 classid;      /* what the programs see in skb->tc_classid */
	int tcx_err;        /* the TCX attach failed so (-errno): clsact filters instead */
};

/*
 * Starts an attachment to `ifindex` (current namespace): the clsact qdisc,
 * made if missing (a->created_qdisc says so); 0 or -errno.
 */
int tc_clsact_ensure(int ifindex, struct tc_attachment *a);

/*
 * Adds the ingress and egress programs to `ifindex` in the current
 * network namespace, creating clsact if needed, ahead of any filter
 * already there, each with `classid` (skb->tc_classid while it runs);
 * 0 or -errno (nothing left behind on failure).
 */
int tc_attach_pair(int ifindex, int ingress_fd, int egress_fd, __u32 classid,
		   struct tc_attachment *a);

/*
 * Attaches, as TCX links at the front of ingress and egress of `ifindex`
 * in the current network namespace, one small program per direction that
 * sets skb->tc_classid to `classid` (as cls_bpf would) and tail-calls
 * entry 0 (ingress) or 1 (egress) of the program array `progs_fd`. A TCX
 * link carries no classid and the device's slot must not cost a lookup
 * per frame: each device gets its own 8-instruction program instead.
 * 0 or -errno (nothing left behind on failure). The links last as long
 * as their fds: a vmprobe that dies leaves nothing attached.
 */
int tcx_attach_pair(int ifindex, int progs_fd, __u32 classid, struct tc_attachment *a);

/*
 * Takes over the TCX links `link_fd` (ingress, egress) an earlier vmprobe
 * made on `ifindex`: each must still be attached there, and is moved
 * (BPF_LINK_UPDATE, atomic: no frame goes uncounted) to a new program of
 * the device's own, as tcx_attach_pair() makes, with `classid`. 0 (`a`
 * holds the links now), or -errno (nothing changed; the fds stay the
 * caller's).
 */
int tcx_adopt_pair(int ifindex, int progs_fd, __u32 classid, const int link_fd[2],
		   struct tc_attachment *a);

/*
 * Takes over the filters an earlier vmprobe left on `ifindex` (current
 * namespace), known by their name: the first of each direction is
 * replaced in place (atomic: no frame goes uncounted) by ingress_fd or
 * egress_fd with `classid`, any other is removed. 0, or -ENOENT when a
 * direction has none (nothing changed), or another -errno.
 */
int tc_adopt_pair(int ifindex, int ingress_fd, int egress_fd, __u32 classid, bool created_qdisc,
		  struct tc_attachment *a);

/* Why a TCX attach may have failed with -err, for the log ("" if no idea). */
const char *tcx_error_hint(int err);
/* Why a clsact attach failed with err, for the log and the reason (" (...)", or ""). */
const char *tc_error_hint(int err);

/* A new fd of the device's own program behind one TCX link of `a`, or -errno. */
int tcx_link_prog_fd(const struct tc_attachment *a, bool ingress);

/*
 * Removes exactly what tc_attach_pair() or tcx_attach_pair() added;
 * removes the clsact qdisc only if we created it and no other filter has
 * appeared on it since.
 */
int tc_detach_pair(struct tc_attachment *a);

#define TC_MAX_STALE 8

struct tc_filters {
	unsigned count;        /* filters under the hook, vmprobe's stale ones aside */
	unsigned min_priority; /* the first to run, when count > 0 */
	unsigned max_priority; /* the last to run */
	unsigned nr_stale;     /* filters a killed vmprobe left behind */
	struct {
		__u32 priority, handle;
	} stale[TC_MAX_STALE];
};

/*
 * Removes the filters an earlier vmprobe left on `ifindex` (current
 * namespace), up to TC_MAX_STALE a hook: how many. *err (if err is not
 * NULL): why a hook could not be listed or a filter not removed, but for
 * the device gone; untouched otherwise.
 */
int tc_remove_stale(int ifindex, int *err);
/*
 * Removes the device's clsact qdisc if it holds no filter but vmprobe's:
 * for one vmprobe made (NET_SLOT_QDISC, created_qdisc), once its own
 * filters are removed. 0 (also when there is nothing to remove) or -errno.
 */
int tc_clsact_drop_empty(int ifindex);

/* Lists the filters under a clsact hook (ingress or egress); 0 or -errno. */
int tc_list_filters(int ifindex, bool ingress, struct tc_filters *out);

#endif

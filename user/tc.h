/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Classic clsact/cls_bpf attachment that leaves other filters alone. */
#ifndef VMPROBE_TC_H
#define VMPROBE_TC_H

#include <linux/types.h>
#include <stdbool.h>

/* vmprobe's two filters on one device, as the kernel numbered them. */
struct tc_attachment {
	int ifindex;
	bool created_qdisc; /* the clsact qdisc did not exist before us */
	bool attached[2];   /* [0] ingress, [1] egress */
	__u32 handle[2];
	__u32 priority[2];
};

/*
 * Adds the ingress and egress programs to `ifindex` in the current
 * network namespace, creating clsact if needed, ahead of any filter
 * already there, each with `classid` (skb->tc_classid while it runs);
 * 0 or -errno (nothing left behind on failure).
 */
int tc_attach_pair(int ifindex, int ingress_fd, int egress_fd, __u32 classid,
		   struct tc_attachment *a);

/*
 * Removes exactly our filters; removes the clsact qdisc only if we
 * created it and no other filter has appeared on it since.
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

/* Lists the filters under a clsact hook (ingress or egress); 0 or -errno. */
int tc_list_filters(int ifindex, bool ingress, struct tc_filters *out);

#endif

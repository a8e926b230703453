// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "tc.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

static const enum bpf_tc_attach_point points[2] = { BPF_TC_INGRESS, BPF_TC_EGRESS };

int tc_attach_pair(int ifindex, int ingress_fd, int egress_fd, struct tc_attachment *a)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	const int fds[2] = { ingress_fd, egress_fd };
	int err;

	memset(a, 0, sizeof(*a));
	a->ifindex = ifindex;
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	a->created_qdisc = err == 0;

	for (int i = 0; i < 2; i++) {
		/* handle 0 and priority 0: the kernel picks numbers nobody uses. */
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = fds[i]);

		hook.attach_point = points[i];
		err = bpf_tc_attach(&hook, &opts);
		if (err) {
			tc_detach_pair(a);
			return err;
		}
		a->attached[i] = true;
		a->handle[i] = opts.handle;
		a->priority[i] = opts.priority;
	}
	return 0;
}

int tc_detach_pair(struct tc_attachment *a)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->ifindex);
	int ret = 0, err;

	for (int i = 0; i < 2; i++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = a->handle[i],
				    .priority = a->priority[i]);

		if (!a->attached[i])
			continue;
		hook.attach_point = points[i];
		err = bpf_tc_detach(&hook, &opts);
		/* The device (or its namespace) going away took the filter with it. */
		if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
			ret = err;
		a->attached[i] = false;
	}
	if (a->created_qdisc && tc_count_filters(a->ifindex, true) == 0 &&
	    tc_count_filters(a->ifindex, false) == 0) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		err = bpf_tc_hook_destroy(&hook);
		if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
			ret = err;
	}
	a->created_qdisc = false;
	return ret;
}

int tc_count_filters(int ifindex, bool ingress)
{
	struct {
		struct nlmsghdr nh;
		struct tcmsg tc;
	} req = {
		.nh = {
			.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg)),
			.nlmsg_type = RTM_GETTFILTER,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			.nlmsg_seq = 1,
		},
		.tc = {
			.tcm_family = AF_UNSPEC,
			.tcm_ifindex = ifindex,
			.tcm_parent = TC_H_MAKE(TC_H_CLSACT,
						ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS),
		},
	};
	char buf[16384];
	int fd, count = 0, ret;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
		ret = -errno;
		goto cleanup;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *nh;

		if (n < 0) {
			ret = -errno;
			goto cleanup;
		}
		for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, n); nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type == NLMSG_DONE) {
				ret = count;
				goto cleanup;
			}
			if (nh->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(nh);

				ret = e->error ? e->error : count;
				goto cleanup;
			}
			/* Handle 0 describes a classifier instance, not a filter. */
			if (nh->nlmsg_type == RTM_NEWTFILTER &&
			    ((struct tcmsg *)NLMSG_DATA(nh))->tcm_handle != 0)
				count++;
		}
	}
cleanup:
	close(fd);
	return ret;
}

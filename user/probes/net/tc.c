// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "probes/net/tc.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/util.h"

const char *const tc_hook_names[TC_HOOK_MAX] = {
	[TC_HOOK_AUTO] = "auto", [TC_HOOK_TCX] = "tcx", [TC_HOOK_CLSACT] = "clsact",
};

/* BPF_F_BEFORE (UAPI, as TCX_INGRESS): with no relative program, the front. */
#define TCX_F_BEFORE (1U << 3)

static const enum bpf_tc_attach_point points[2] = { BPF_TC_INGRESS, BPF_TC_EGRESS };

/* Our filters sit alone at their priority, so one handle is enough. */
#define TC_FILTER_HANDLE 1
/* Where the kernel would put a first filter: room before and after it. */
#define TC_DEFAULT_PRIORITY 0xc000

/* Appends a netlink attribute; false when it does not fit. */
static bool nl_put(struct nlmsghdr *nh, size_t cap, unsigned short type, const void *data,
		   size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

	if (NLMSG_ALIGN(nh->nlmsg_len) + RTA_SPACE(len) > cap)
		return false;
	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_SPACE(len);
	return true;
}

/*
 * Sends one request and reads the first answer into buf: its length or
 * -errno. Never stuck waiting, should an answer not come; a signal that
 * comes first does not cut the wait short.
 */
static ssize_t nl_ask(const struct nlmsghdr *nh, char *buf, size_t size)
{
	struct timeval tv = { .tv_sec = 1 };
	ssize_t n;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    send(fd, nh, nh->nlmsg_len, 0) < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	do
		n = recv(fd, buf, size, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

/* Sends one request and waits for its acknowledgement; 0 or -errno. */
static int nl_request(struct nlmsghdr *nh)
{
	char buf[4096];
	ssize_t n = nl_ask(nh, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, n); r = NLMSG_NEXT(r, n))
		if (r->nlmsg_type == NLMSG_ERROR)
			return ((struct nlmsgerr *)NLMSG_DATA(r))->error;
	return -EPROTO;
}

/*
 * A direct-action cls_bpf filter with a classid. libbpf's bpf_tc_attach()
 * cannot set one; the classid is how the program learns its tap's slot.
 * `replace`: the filter at (priority, handle) exists, and cls_bpf swaps
 * its program in place.
 */
static int add_filter(int ifindex, bool ingress, int prog_fd, __u32 priority, __u32 handle,
		      __u32 classid, bool replace)
{
	union {
		struct nlmsghdr nh;
		char buf[512];
	} req = {};
	struct tcmsg *tc;
	struct rtattr *opts;
	__u32 flags = TCA_BPF_FLAG_ACT_DIRECT, fd = (__u32)prog_fd;
	const char *name = ingress ? "vmprobe_tap_ingress" : "vmprobe_tap_egress";

	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg));
	req.nh.nlmsg_type = RTM_NEWTFILTER;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (replace ? 0 : NLM_F_CREATE | NLM_F_EXCL);
	tc = NLMSG_DATA(&req.nh);
	tc->tcm_family = AF_UNSPEC;
	tc->tcm_ifindex = ifindex;
	tc->tcm_handle = handle;
	tc->tcm_parent = TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
	tc->tcm_info = TC_H_MAKE(priority << 16, htons(ETH_P_ALL));
	if (!nl_put(&req.nh, sizeof(req), TCA_KIND, "bpf", 4))
		return -E2BIG;
	opts = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
	if (!nl_put(&req.nh, sizeof(req), TCA_OPTIONS, NULL, 0) ||
	    !nl_put(&req.nh, sizeof(req), TCA_BPF_FD, &fd, sizeof(fd)) ||
	    !nl_put(&req.nh, sizeof(req), TCA_BPF_NAME, name, strlen(name) + 1) ||
	    !nl_put(&req.nh, sizeof(req), TCA_BPF_FLAGS, &flags, sizeof(flags)) ||
	    !nl_put(&req.nh, sizeof(req), TCA_BPF_CLASSID, &classid, sizeof(classid)))
		return -E2BIG;
	opts->rta_len = (char *)&req + req.nh.nlmsg_len - (char *)opts;
	return nl_request(&req.nh);
}

/*
 * The kind of the qdisc at the device's ingress handle (ffff:), where
 * clsact sits, or an ingress qdisc in its place; 0 or -errno. The kernel
 * sends its answer to a GET to the TC group, and to the asker only when
 * asked to (NLM_F_ECHO).
 */
static int ingress_qdisc_kind(int ifindex, char *kind, size_t size)
{
	struct {
		struct nlmsghdr nh;
		struct tcmsg tc;
	} req = {
		.nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg)), .nlmsg_type = RTM_GETQDISC,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ECHO, .nlmsg_seq = 1 },
		.tc = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_parent = TC_H_INGRESS },
	};
	char buf[8192];
	ssize_t n = nl_ask(&req.nh, buf, sizeof(buf));
	int ret = -ENOENT;

	if (n < 0)
		return (int)n;
	for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, n); nh = NLMSG_NEXT(nh, n)) {
		struct tcmsg *tc = NLMSG_DATA(nh);
		int len = nh->nlmsg_len - NLMSG_LENGTH(sizeof(struct tcmsg));
		struct rtattr *rta = (struct rtattr *)((char *)tc + NLMSG_ALIGN(sizeof(struct tcmsg)));

		if (nh->nlmsg_type == NLMSG_ERROR) {
			ret = ((struct nlmsgerr *)NLMSG_DATA(nh))->error ?: -ENOENT;
			break;
		}
		if (nh->nlmsg_type != RTM_NEWQDISC || tc->tcm_ifindex != ifindex)
			continue;
		for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
			if (rta->rta_type == TCA_KIND) {
				snprintf(kind, size, "%.*s", (int)RTA_PAYLOAD(rta), (char *)RTA_DATA(rta));
				ret = 0;
			}
		break;
	}
	return ret;
}

int tc_clsact_ensure(int ifindex, struct tc_attachment *a)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	char kind[16] = "";
	int err;

	memset(a, 0, sizeof(*a));
	a->ifindex = ifindex;
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	a->created_qdisc = err == 0;
	/*
	 * An ingress qdisc (libvirt's outbound bandwidth limit puts one there)
	 * holds the place of clsact: its one block would take an "egress"
	 * filter too, which would then run on ingress. Not ours to replace.
	 */
	if (err == -EEXIST) {
		/* Not known to be clsact: not attached (tried again at the next scan). */
		err = ingress_qdisc_kind(ifindex, kind, sizeof(kind));
		if (err)
			return err;
		if (strcmp(kind, "clsact"))
			return -EBUSY;
	}
	return 0;
}

const char *tc_error_hint(int err)
{
	switch (err) {
	case -EBUSY:
		return " (the tap has an ingress qdisc, such as libvirt's outbound bandwidth limit "
		       "puts there: clsact filters cannot hang beside it)";
	case -ERANGE:
		return " (other filters hold TC priorities 1 and 65535: no room before or after them)";
	default:
		return "";
	}
}

/* The device (or its namespace) went away, taking its filters and qdiscs along. */
static bool tc_gone(int err)
{
	return err == -ENOENT || err == -ENODEV || err == -EINVAL;
}

/*
 * Removes the filters of an earlier vmprobe listed in f (direction i),
 * from the `from`th; how many. *err: a removal's failure, but for the
 * filter or device gone meanwhile.
 */
static int stale_remove(int ifindex, int i, const struct tc_filters *f, unsigned from, int *err)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = points[i]);
	int removed = 0;

	for (unsigned k = from; k < f->nr_stale; k++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, stale, .handle = f->stale[k].handle,
				    .priority = f->stale[k].priority);
		int e = bpf_tc_detach(&hook, &stale);

		if (e == 0) {
			log_info("ifindex %d: removed a filter left by an earlier vmprobe", ifindex);
			removed++;
		} else if (err && !tc_gone(e)) {
			*err = e;
		}
	}
	return removed;
}

int tc_remove_stale(int ifindex, int *err)
{
	struct tc_filters f;
	int removed = 0;

	for (int i = 0; i < 2; i++) {
		int e = tc_list_filters(ifindex, i == 0, &f);

		if (e && err && !tc_gone(e))
			*err = e;
		else if (!e)
			removed += stale_remove(ifindex, i, &f, 0, err);
	}
	return removed;
}

int tc_attach_pair(int ifindex, int ingress_fd, int egress_fd, __u32 classid,
		   struct tc_attachment *a)
{
	const int fds[2] = { ingress_fd, egress_fd };
	int err = tc_clsact_ensure(ifindex, a);

	if (err)
		return err;

	a->classid = classid;
	for (int i = 0; i < 2; i++) {
		__u32 priority = TC_DEFAULT_PRIORITY;
		struct tc_filters f;

		/*
		 * Run before any filter already there, so that one that ends
		 * classification (or drops) cannot hide frames from the counts.
		 */
		err = tc_list_filters(ifindex, i == 0, &f);
		if (err < 0) {
			tc_detach_pair(a);
			return err;
		}
		/*
		 * Filters of a vmprobe killed before it could detach, or of a
		 * serve whose programs are not adopted, would count beside ours
		 * or for nothing: remove them. (Only one vmprobe serve runs per
		 * host.)
		 */
		stale_remove(ifindex, i, &f, 0, NULL);
		if (f.count && f.min_priority > 1) {
			priority = f.min_priority - 1;
		} else if (f.count && f.max_priority >= 0xffff) {
			tc_detach_pair(a);
			return -ERANGE;
		} else if (f.count) {
			priority = f.max_priority + 1;
			log_warn("ifindex %d: a foreign filter holds TC priority 1 on %s; "
				 "frames it ends classification for are not counted",
				 ifindex, i == 0 ? "ingress" : "egress");
		}
		err = add_filter(ifindex, i == 0, fds[i], priority, TC_FILTER_HANDLE, classid, false);
		if (err) {
			tc_detach_pair(a);
			return err;
		}
		a->attached[i] = true;
		a->handle[i] = TC_FILTER_HANDLE;
		a->priority[i] = priority;
	}
	return 0;
}

bool tcx_supported(const struct btf *vmlinux)
{
	int id = vmlinux ? btf__find_by_name_kind(vmlinux, "bpf_attach_type", BTF_KIND_ENUM) : -1;
	const struct btf_type *t;
	const struct btf_enum *e;

	if (id <= 0)
		return false;
	t = btf__type_by_id(vmlinux, id);
	e = btf_enum(t);
	for (int i = 0; i < btf_vlen(t); i++, e++) {
		const char *name = btf__name_by_offset(vmlinux, e->name_off);

		if (name && !strcmp(name, "BPF_TCX_INGRESS"))
			return e->val == TCX_INGRESS;
	}
	return false;
}

const char *tcx_error_hint(int err)
{
	switch (err) {
	case -ERANGE:
		return " (the hook holds as many programs as the kernel allows)";
	case -EINVAL:
	case -EOPNOTSUPP:
		return " (the kernel does not take TCX links)";
	case -EPERM:
	case -EACCES:
		return " (refused: a policy, or a capability missing)";
	case -EMFILE:
	case -ENFILE:
		return " (out of file descriptors: each link is one)";
	default:
		return "";
	}
}

int tcx_link_prog_fd(const struct tc_attachment *a, bool ingress)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int fd;

	if (!a->tcx || !a->attached[ingress ? 0 : 1])
		return -ENOENT;
	if (bpf_obj_get_info_by_fd(a->link_fd[ingress ? 0 : 1], &info, &len))
		return -errno;
	fd = bpf_prog_get_fd_by_id(info.prog_id);
	return fd < 0 ? -errno : fd;
}

/*
 * The device's own program for direction i: skb->tc_classid = classid,
 * then on to the shared program. Should the tail call ever fail, the
 * frame goes on untouched and uncounted (TCX_NEXT).
 */
static int tcx_stub_load(int progs_fd, __u32 classid, int i)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = (__s32)classid },
		{ .code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_2,
		  .off = offsetof(struct __sk_buff, tc_classid) },
		{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_2,
		  .src_reg = BPF_PSEUDO_MAP_FD, .imm = progs_fd },
		{ 0 }, /* the map's upper 32 bits */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = i },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_tail_call },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, i == 0 ? "vmprobe_tap_ingress" : "vmprobe_tap_egress",
			       "Dual BSD/GPL", insns, ARRAY_SIZE(insns), NULL);

	return fd < 0 ? -errno : fd;
}

int tcx_attach_pair(int ifindex, int progs_fd, __u32 classid, struct tc_attachment *a)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = TCX_F_BEFORE);

	memset(a, 0, sizeof(*a));
	a->ifindex = ifindex;
	a->tcx = true;
	a->classid = classid;
	for (int i = 0; i < 2; i++) {
		int prog = tcx_stub_load(progs_fd, classid, i), link;

		if (prog < 0) {
			tc_detach_pair(a);
			return prog;
		}
		/* At the front: a program there before us cannot hide frames from the counts. */
		link = bpf_link_create(prog, ifindex,
				       (enum bpf_attach_type)(i == 0 ? TCX_INGRESS : TCX_EGRESS), &opts);
		link = link < 0 ? -errno : link;
		/* The link holds the program: one fd per direction stays open, not two. */
		close(prog);
		if (link < 0) {
			tc_detach_pair(a);
			return link;
		}
		a->link_fd[i] = link;
		a->attached[i] = true;
	}
	return 0;
}

int tc_adopt_pair(int ifindex, int ingress_fd, int egress_fd, __u32 classid, bool created_qdisc,
		  struct tc_attachment *a)
{
	const int fds[2] = { ingress_fd, egress_fd };
	struct tc_filters f[2];
	int err;

	for (int i = 0; i < 2; i++) {
		err = tc_list_filters(ifindex, i == 0, &f[i]);
		if (err)
			return err;
		if (!f[i].nr_stale)
			return -ENOENT;
	}
	memset(a, 0, sizeof(*a));
	a->ifindex = ifindex;
	a->classid = classid;
	a->created_qdisc = created_qdisc;
	for (int i = 0; i < 2; i++) {
		err = add_filter(ifindex, i == 0, fds[i], f[i].stale[0].priority, f[i].stale[0].handle,
				 classid, true);
		if (err)
			return err;
		a->attached[i] = true;
		a->priority[i] = f[i].stale[0].priority;
		a->handle[i] = f[i].stale[0].handle;
		stale_remove(ifindex, i, &f[i], 1, NULL);
	}
	return 0;
}

/* BPF_LINK_TYPE_TCX (UAPI, as TCX_INGRESS); its info's first field is the device, 0 once gone. */
#define TCX_LINK_TYPE 11

int tcx_adopt_pair(int ifindex, int progs_fd, __u32 classid, const int link_fd[2],
		   struct tc_attachment *a)
{
	int prog[2] = { -1, -1 }, err = 0;

	for (int i = 0; i < 2 && !err; i++) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(link_fd[i], &info, &len))
			err = -errno;
		/* xdp.ifindex is where the kernel puts tcx.ifindex, absent from older headers. */
		else if (info.type != TCX_LINK_TYPE || info.xdp.ifindex != (__u32)ifindex)
			err = -ESTALE;
		else
			err = (prog[i] = tcx_stub_load(progs_fd, classid, i)) < 0 ? prog[i] : 0;
	}
	for (int i = 0; i < 2 && !err; i++)
		if (bpf_link_update(link_fd[i], prog[i], NULL))
			err = -errno;
	for (int i = 0; i < 2; i++)
		if (prog[i] >= 0)
			close(prog[i]);
	if (err)
		return err;
	memset(a, 0, sizeof(*a));
	a->ifindex = ifindex;
	a->tcx = true;
	a->classid = classid;
	for (int i = 0; i < 2; i++) {
		a->link_fd[i] = link_fd[i];
		a->attached[i] = true;
	}
	return 0;
}

/* A cls_bpf filter of a vmprobe that died without detaching (by its name). */
static bool is_stale_vmprobe(struct nlmsghdr *nh)
{
	int len = nh->nlmsg_len - NLMSG_LENGTH(sizeof(struct tcmsg));
	struct rtattr *rta = (struct rtattr *)((char *)NLMSG_DATA(nh) +
					       NLMSG_ALIGN(sizeof(struct tcmsg)));

	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		struct rtattr *opt;
		int olen;

		if (rta->rta_type != TCA_OPTIONS)
			continue;
		olen = RTA_PAYLOAD(rta);
		for (opt = RTA_DATA(rta); RTA_OK(opt, olen); opt = RTA_NEXT(opt, olen))
			if (opt->rta_type == TCA_BPF_NAME &&
			    strncmp(RTA_DATA(opt), "vmprobe_tap_", 12) == 0)
				return true;
	}
	return false;
}

/* Calls fn for each filter under the hook: its priority, handle, and whether it is a vmprobe one. */
static int filters_foreach(int ifindex, bool ingress,
			   void (*fn)(void *arg, __u32 prio, __u32 handle, bool vmprobe), void *arg)
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
	int fd, ret;

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

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto cleanup;
		}
		for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, n); nh = NLMSG_NEXT(nh, n)) {
			struct tcmsg *tc = NLMSG_DATA(nh);

			if (nh->nlmsg_type == NLMSG_DONE) {
				ret = 0;
				goto cleanup;
			}
			if (nh->nlmsg_type == NLMSG_ERROR) {
				ret = ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
				goto cleanup;
			}
			/* Handle 0 describes a classifier instance, not a filter. */
			if (nh->nlmsg_type != RTM_NEWTFILTER || tc->tcm_handle == 0)
				continue;
			fn(arg, TC_H_MAJ(tc->tcm_info) >> 16, tc->tcm_handle, is_stale_vmprobe(nh));
		}
	}
cleanup:
	close(fd);
	return ret;
}

static void filter_listed(void *arg, __u32 prio, __u32 handle, bool vmprobe)
{
	struct tc_filters *out = arg;

	if (vmprobe && out->nr_stale < TC_MAX_STALE) {
		out->stale[out->nr_stale].priority = prio;
		out->stale[out->nr_stale++].handle = handle;
		return;
	}
	/* Past TC_MAX_STALE, a vmprobe filter is placed around as a foreign one is. */
	if (!out->count || prio < out->min_priority)
		out->min_priority = prio;
	if (prio > out->max_priority)
		out->max_priority = prio;
	out->count++;
}

int tc_list_filters(int ifindex, bool ingress, struct tc_filters *out)
{
	memset(out, 0, sizeof(*out));
	return filters_foreach(ifindex, ingress, filter_listed, out);
}

/* What sits at one (priority, handle) of a hook. */
struct filter_at {
	__u32 prio, handle;
	enum { AT_NONE, AT_VMPROBE, AT_OTHER } who;
};

static void filter_seen(void *arg, __u32 prio, __u32 handle, bool vmprobe)
{
	struct filter_at *at = arg;

	if (prio == at->prio && handle == at->handle)
		at->who = vmprobe ? AT_VMPROBE : AT_OTHER;
}

int tc_detach_pair(struct tc_attachment *a)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->ifindex);
	int ret = 0, err;
	bool ours = a->created_qdisc;

	if (a->tcx) {
		/* Closing the link detaches (a device already gone took it along). */
		for (int i = 0; i < 2; i++) {
			if (!a->attached[i])
				continue;
			close(a->link_fd[i]);
			a->attached[i] = false;
		}
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = a->handle[i],
				    .priority = a->priority[i]);
		struct filter_at at = { .prio = a->priority[i], .handle = a->handle[i] };

		if (!a->attached[i])
			continue;
		a->attached[i] = false;
		/*
		 * Ours only while a vmprobe filter sits there: another tool may
		 * have flushed the hook (or its qdisc) and put its own filter at
		 * the same place. Then neither that filter nor the qdisc is ours.
		 */
		err = filters_foreach(a->ifindex, i == 0, filter_seen, &at);
		if (err && !tc_gone(err)) {
			/* Not known to be gone: the caller retires its slot. */
			ret = err;
			ours = false;
			continue;
		}
		if (at.who != AT_VMPROBE) {
			ours = false;
			if (at.who == AT_OTHER)
				log_warn("ifindex %d: vmprobe's %s filter was replaced by another "
					 "tool's (TC priority %u): left as it is", a->ifindex,
					 i == 0 ? "ingress" : "egress", at.prio);
			continue;
		}
		hook.attach_point = points[i];
		err = bpf_tc_detach(&hook, &opts);
		if (err && !tc_gone(err))
			ret = err;
	}
	/* The clsact vmprobe made, when both its filters were still there and nothing else is. */
	err = ours ? tc_clsact_drop_empty(a->ifindex) : 0;
	if (err && !tc_gone(err))
		ret = err;
	a->created_qdisc = false;
	return ret;
}

int tc_clsact_drop_empty(int ifindex)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	struct tc_filters in, eg;
	char kind[16] = "";

	/* A vmprobe filter left there (stale) goes with it. */
	if (ingress_qdisc_kind(ifindex, kind, sizeof(kind)) || strcmp(kind, "clsact") ||
	    tc_list_filters(ifindex, true, &in) || in.count ||
	    tc_list_filters(ifindex, false, &eg) || eg.count)
		return 0;
	return bpf_tc_hook_destroy(&hook);
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Real faults for tests, made by the kernel: runs PROG under a seccomp
 * filter whose chosen system calls a supervisor process looks at first
 * (seccomp user notification, Linux 5.5+). The supervisor makes a call
 * fail as the kernel would, or holds it while a command changes the world
 * (a tap deleted, a process killed), then lets the kernel run it on what
 * is left: the program meets the race it would meet by bad luck.
 *
 *   sysfault [RULE...] -- PROG [ARG...]
 *
 *   -f tcx:ERRNO        every bpf(BPF_LINK_CREATE) of a TCX attach type
 *                       fails with ERRNO (EINVAL: what a kernel without
 *                       TCX answers)
 *   -r tcx:CMD          the first such call waits while `sh -c CMD` runs
 *   -r tcx@DEV:CMD      the same, for the first TCX link to the device DEV
 *   -r open:PATH:CMD    the first openat() of exactly PATH waits while
 *                       CMD runs
 *
 * PROG becomes this process (its PID is the one the caller started); the
 * supervisor runs apart and ends with it. Each rule that fires says so on
 * stderr ("sysfault: ...").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probes/net/tc.h"

struct rules {
	int tcx_errno;       /* 0: TCX links are left alone */
	const char *tcx_cmd; /* run at the first TCX link; NULL once run */
	const char *tcx_dev; /* only a link to this device, if set */
	const char *open_path, *open_cmd;
};

static int errno_parse(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*s && !*end && n > 0)
		return (int)n;
	for (int e = 1; e < 200; e++)
		if (strerrorname_np(e) && !strcmp(strerrorname_np(e), s))
			return e;
	return 0;
}

static int rules_parse(int argc, char **argv, struct rules *r)
{
	int opt;

	while ((opt = getopt(argc, argv, "+f:r:")) != -1) {
		char *arg = optarg, *colon;

		if (opt == 'f' && !strncmp(arg, "tcx:", 4) && (r->tcx_errno = errno_parse(arg + 4)))
			continue;
		if (opt == 'r' && !strncmp(arg, "tcx:", 4)) {
			r->tcx_cmd = arg + 4;
			continue;
		}
		if (opt == 'r' && !strncmp(arg, "tcx@", 4) && (colon = strchr(arg + 4, ':'))) {
			*colon = '\0';
			r->tcx_dev = arg + 4;
			r->tcx_cmd = colon + 1;
			continue;
		}
		if (opt == 'r' && !strncmp(arg, "open:", 5) && (colon = strchr(arg + 5, ':'))) {
			*colon = '\0';
			r->open_path = arg + 5;
			r->open_cmd = colon + 1;
			continue;
		}
		fprintf(stderr, "sysfault: bad rule -%c %s\n", opt, arg ? arg : "");
		return -1;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: sysfault [-f tcx:ERRNO] [-r tcx[@DEV]:CMD] [-r open:PATH:CMD] -- PROG [ARG...]\n");
		return -1;
	}
	return optind;
}

/* bpf(BPF_LINK_CREATE, ...) always; openat() when a rule wants it. */
static int filter_install(bool opens)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_bpf, 0, 2),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, BPF_LINK_CREATE, 2, 1),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, opens ? 1 : 0, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
			    &prog);
}

static int fd_send(int sock, int fd)
{
	char byte = 0, ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int fd_recv(int sock)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &m, 0) != 1 || !(c = CMSG_FIRSTHDR(&m)) || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* Reads len bytes at addr of the stopped caller; 0 or -1. */
static int peek(pid_t pid, __u64 addr, void *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = pread(fd, buf, len, (off_t)addr);
	close(fd);
	return n > 0 ? 0 : -1;
}

static void run(const char *what, const char *cmd)
{
	int status = system(cmd);

	fprintf(stderr, "sysfault: %s: ran `%s` (status %d)\n", what, cmd,
		WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* Decides one held call: resp->error set to fail it, else it goes on. */
static void decide(struct rules *r, const struct seccomp_notif *req, struct seccomp_notif_resp *resp)
{
	resp->id = req->id;
	resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	if (req->data.nr == __NR_bpf) {
		/* union bpf_attr's link_create: prog_fd, target_ifindex, attach_type, flags. */
		__u32 attr[4];

		if (peek(req->pid, req->data.args[1], attr, sizeof(attr)) ||
		    (attr[2] != TCX_INGRESS && attr[2] != TCX_EGRESS))
			return;
		if (r->tcx_cmd && (!r->tcx_dev || if_nametoindex(r->tcx_dev) == attr[1])) {
			run("a TCX link held", r->tcx_cmd);
			r->tcx_cmd = NULL;
		}
		if (r->tcx_errno) {
			fprintf(stderr, "sysfault: TCX link to ifindex %u: %s\n", attr[1],
				strerrorname_np(r->tcx_errno));
			resp->flags = 0;
			resp->error = -r->tcx_errno;
		}
	} else if (r->open_cmd) {
		char path[4096] = "";

		if (peek(req->pid, req->data.args[1], path, sizeof(path) - 1) == 0 &&
		    !strcmp(path, r->open_path)) {
			run(r->open_path, r->open_cmd);
			r->open_cmd = NULL;
		}
	}
}

static int supervise(int nfd, struct rules *r)
{
	struct seccomp_notif_sizes sz;
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;

	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz))
		return 1;
	req = calloc(1, sz.seccomp_notif);
	resp = calloc(1, sz.seccomp_notif_resp);
	for (;;) {
		struct pollfd p = { .fd = nfd, .events = POLLIN };

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return 1;
		/* Every process under the filter is gone. */
		if (p.revents & (POLLHUP | POLLERR))
			return 0;
		memset(req, 0, sz.seccomp_notif);
		if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, req))
			continue; /* the caller went away meanwhile */
		memset(resp, 0, sz.seccomp_notif_resp);
		decide(r, req, resp);
		ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, resp);
	}
}

int main(int argc, char **argv)
{
	struct rules r = { 0 };
	int first = rules_parse(argc, argv, &r), sv[2], nfd;
	pid_t child;

	if (first < 0)
		return 2;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 1;
	child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		/* The supervisor, orphaned at once: PROG is left with no child of ours. */
		if (fork() != 0)
			_exit(0);
		close(sv[0]);
		nfd = fd_recv(sv[1]);
		if (nfd < 0)
			_exit(1);
		_exit(supervise(nfd, &r));
	}
	close(sv[1]);
	waitpid(child, NULL, 0);
	nfd = filter_install(r.open_cmd != NULL);
	if (nfd < 0) {
		perror("sysfault: seccomp");
		return 1;
	}
	if (fd_send(sv[0], nfd))
		return 1;
	close(nfd);
	close(sv[0]);
	execvp(argv[first], argv + first);
	perror("sysfault: exec");
	return 127;
}

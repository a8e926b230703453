// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * TCX for tests; Debian 12's bpftool (7.1) and tc predate it.
 *   tcx list DEV          a line "ingress|egress PROG_NAME" per program
 *                         attached by TCX to DEV (current netns), in the
 *                         order they run
 *   tcx hold DEV OBJ PROG attaches OBJ's program PROG at the end of DEV's
 *                         TCX ingress (another tool's program) and holds
 *                         the link until killed; "attached PROG_ID" on
 *                         stdout once it is
 *   tcx fill DEV          attaches programs that let the next one run
 *                         (TCX_NEXT) at the end of DEV's TCX ingress until
 *                         the kernel takes no more, and holds them until
 *                         killed: "full N ERRNO_NAME" once it is (another
 *                         tool that took every place on the hook)
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "probes/net/tc.h"

/* More programs on one hook than a test ever attaches: ENOSPC, an error. */
#define MAX_PROGS 256

static int list(int ifindex)
{
	for (int i = 0; i < 2; i++) {
		__u32 ids[MAX_PROGS], cnt = MAX_PROGS;

		if (bpf_prog_query(ifindex, (enum bpf_attach_type)(i == 0 ? TCX_INGRESS : TCX_EGRESS),
				   0, NULL, ids, &cnt)) {
			fprintf(stderr, "tcx: query: %s\n", strerror(errno));
			return 1;
		}
		for (__u32 k = 0; k < cnt; k++) {
			struct bpf_prog_info info = {};
			__u32 len = sizeof(info);
			int fd = bpf_prog_get_fd_by_id(ids[k]), err;

			err = fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len);
			if (err)
				fprintf(stderr, "tcx: program %u: %s\n", ids[k], strerror(errno));
			if (fd >= 0)
				close(fd);
			if (err)
				return 1;
			printf("%s %s\n", i == 0 ? "ingress" : "egress", info.name);
		}
	}
	return 0;
}

/* Holds until SIGTERM or SIGINT. */
static void wait_signal(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigwait(&set, &sig);
}

static int hold(int ifindex, const char *path, const char *name)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *prog;
	int link;

	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "tcx: cannot load %s\n", path);
		return 1;
	}
	prog = bpf_object__find_program_by_name(obj, name);
	link = prog ? bpf_link_create(bpf_program__fd(prog), ifindex,
				      (enum bpf_attach_type)TCX_INGRESS, NULL)
		    : -1;
	if (link < 0) {
		fprintf(stderr, "tcx: cannot attach %s: %s\n", name, prog ? strerror(errno) : "no such program");
		return 1;
	}
	{
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
		printf("attached %u\n", info.id);
	}
	fflush(stdout);
	wait_signal();
	close(link);
	bpf_object__close(obj);
	return 0;
}

static int fill(int ifindex)
{
	/* r0 = TCX_NEXT (-1); exit: a program of its own each, as the hook takes a program once. */
	const struct bpf_insn next[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int links[MAX_PROGS], n = 0, err = 0;

	while (n < MAX_PROGS) {
		int prog = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "tcx_filler", "GPL", next, 2, NULL);
		int link = prog < 0 ? -1 : bpf_link_create(prog, ifindex,
							   (enum bpf_attach_type)TCX_INGRESS, NULL);

		err = errno;
		if (prog >= 0)
			close(prog);
		if (prog < 0) {
			fprintf(stderr, "tcx: cannot load a program: %s\n", strerror(err));
			return 1;
		}
		if (link < 0)
			break;
		links[n++] = link;
	}
	if (n == MAX_PROGS) {
		fprintf(stderr, "tcx: the hook took %d programs and wants more\n", n);
		return 1;
	}
	printf("full %d %s\n", n, strerrorname_np(err));
	fflush(stdout);
	wait_signal();
	for (int i = 0; i < n; i++)
		close(links[i]);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned ifindex = argc >= 3 ? if_nametoindex(argv[2]) : 0;

	if (argc >= 3 && !ifindex) {
		fprintf(stderr, "tcx: no device %s\n", argv[2]);
		return 1;
	}
	if (argc == 3 && !strcmp(argv[1], "list"))
		return list((int)ifindex);
	if (argc == 5 && !strcmp(argv[1], "hold"))
		return hold((int)ifindex, argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "fill"))
		return fill((int)ifindex);
	fprintf(stderr, "usage: tcx list DEV | tcx hold DEV OBJ PROG | tcx fill DEV\n");
	return 2;
}

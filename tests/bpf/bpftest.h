/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* TAP output and BPF_PROG_TEST_RUN for the tests in tests/bpf/. */
#ifndef VMPROBE_BPFTEST_H
#define VMPROBE_BPFTEST_H

#include <bpf/bpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TC_ACT_UNSPEC (-1)

static int n_test, n_failed;

static void report(int ok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void report(int ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	n_test++;
	printf("%sok %d - %s\n", ok ? "" : "not ", n_test, what);
	if (!ok) {
		n_failed++;
		printf("#   ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
}

/*
 * Runs a TC program once on `frame` as if it arrived on `ifindex`: its
 * verdict in *retval, whether it left the frame byte for byte in *same.
 */
static int run(int prog_fd, int ifindex, const unsigned char *frame, unsigned size, int *retval,
	       int *same)
{
	unsigned char out[16384];
	struct __sk_buff ctx = { .ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = size,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);

	*retval = (int)opts.retval;
	*same = opts.data_size_out == size && memcmp(out, frame, size) == 0;
	return err ? -errno : 0;
}

#endif

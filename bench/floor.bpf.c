// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The floor of bench/syscall.sh: empty programs on the syscall tracepoints
 * the disk probe uses for aio=threads. What they cost is the hook's own
 * cost, which no program on these tracepoints can go below.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define EMPTY_PAIR(name)                                                  \
	SEC("tracepoint/syscalls/sys_enter_" #name)                       \
	int enter_##name(void *ctx)                                       \
	{                                                                 \
		return 0;                                                 \
	}                                                                 \
	SEC("tracepoint/syscalls/sys_exit_" #name)                        \
	int exit_##name(void *ctx)                                        \
	{                                                                 \
		return 0;                                                 \
	}

EMPTY_PAIR(pread64)
EMPTY_PAIR(pwrite64)

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The naive reference program's map: what bench/ref.bpf.c and bench/bench.c agree on. */
#ifndef VMPROBE_BENCH_REF_H
#define VMPROBE_BENCH_REF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* The direction bench_naive counts as, on whichever hook: fixed, as a per-hook exporter has it. */
#define REF_DIR_TX 1

/* A generic exporter's key: per device and direction. */
struct ref_key {
	__u32 ifindex;
	__u32 direction;
};
_Static_assert(sizeof(struct ref_key) == 8, "ref_key layout");

struct ref_value {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct ref_value) == 16, "ref_value layout");

#endif

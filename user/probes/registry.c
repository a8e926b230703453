// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Every probe vmprobe has, in the order they sync a VM and render: adding
 * one is its folder (user/probes/NAME/, bpf/NAME.bpf.c) and one line here.
 */
#include "core/probe.h"
#include "core/util.h"

#define PROBES(X) \
	X(disk)   \
	X(netdisk) \
	X(vcpu)    \
	X(net)

#define DECLARE(name) extern const struct probe_ops name##_probe_ops;
PROBES(DECLARE)

#define ENTRY(name) &name##_probe_ops,
const struct probe_ops *const probe_registry[] = { PROBES(ENTRY) };
const size_t probe_registry_len = ARRAY_SIZE(probe_registry);

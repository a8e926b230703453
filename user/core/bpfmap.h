/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* User-space helpers for the probes' BPF maps: per-CPU counters, mmapped arrays, memory. */
#ifndef VMPROBE_BPFMAP_H
#define VMPROBE_BPFMAP_H

#include <linux/types.h>
#include <stddef.h>

/* The sum over CPUs of entry `key` of a per-CPU array of __u64; 0 if it cannot be read. */
__u64 bpf_percpu_sum(int map_fd, __u32 key);

/*
 * A BPF_F_MMAPABLE array of `len` bytes mapped into vmprobe, writable so
 * that slots can be zeroed for reuse; *out set, 0 or -errno.
 */
int bpf_array_mmap(int map_fd, size_t len, void *out);

struct bpf_object;

/*
 * Kernel memory of a loaded object's maps, as the kernel accounts it
 * ("memlock" in each map's fdinfo: the map's own mem_usage); 0 for an
 * object with no map loaded.
 */
__u64 bpf_object_memlock(const struct bpf_object *obj);

#endif

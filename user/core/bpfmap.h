/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * User-space helpers for the probes' BPF maps (per-CPU counters, mmapped
 * arrays, memory) and for what the kernel's BTF says of its structs.
 */
#ifndef VMPROBE_BPFMAP_H
#define VMPROBE_BPFMAP_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

struct btf;

/* The sum over CPUs of entry `key` of a per-CPU array of __u64; 0 if it cannot be read. */
__u64 bpf_percpu_sum(int map_fd, __u32 key);

/*
 * Calls fn for every entry of a hash map (not per-CPU), read in batches:
 * a syscall for many entries, not two for each. Stops when fn returns
 * non-zero; 0, fn's value, or -errno (-EDEADLK from inside fn: one walk
 * at a time per thread).
 */
int bpf_hash_foreach(int map_fd, __u32 key_size, __u32 value_size,
		     int (*fn)(const void *key, const void *value, void *arg), void *arg);

/*
 * A BPF_F_MMAPABLE array of `len` bytes mapped into vmprobe, writable so
 * that slots can be zeroed for reuse; *out set, 0 or -errno.
 */
int bpf_array_mmap(int map_fd, size_t len, void *out);

struct bpf_object;

/*
 * Kernel memory of a loaded object's maps, as the kernel accounts it
 * ("memlock" in each map's fdinfo: the map's own mem_usage); 0 for an
 * object with no map loaded. With `fixed` (0 at first), what the maps
 * that cannot grow (all but BPF_F_NO_PREALLOC ones) account is read once
 * into *fixed and added from there: a scrape reads no fdinfo but theirs.
 */
__u64 bpf_object_memlock(const struct bpf_object *obj, __u64 *fixed);

struct bpf_map;

/*
 * What the kernel will account for a map of this definition (type, sizes,
 * max_entries, flags: set them first) on a host of ncpus possible CPUs:
 * a model of the kernel's own accounting, slightly high (see bpfmap.c).
 * 0 for a map type the model does not know.
 */
__u64 bpf_map_memory_model(const struct bpf_map *m, unsigned ncpus);
/* The same for every map the object will create. */
__u64 bpf_object_memory_model(const struct bpf_object *obj, unsigned ncpus);

/* Does the kernel's struct `type` have a member `name` (directly or in an anonymous member)? */
bool btf_has_member(const struct btf *btf, const char *type, const char *name);

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* BPF maps declared in one line each: what libbpf's BTF-defined maps spell over six. */
#ifndef VMPROBE_MAPS_BPF_H
#define VMPROBE_MAPS_BPF_H

/* A map of `_type` with `_max` entries of `_key` -> `_value`. */
#define VMPROBE_MAP(_name, _type, _key, _value, _max) \
	struct {                                       \
		__uint(type, _type);                   \
		__uint(max_entries, _max);             \
		__type(key, _key);                     \
		__type(value, _value);                 \
	} _name SEC(".maps")

/* An array user space maps into its memory (BPF_F_MMAPABLE): read with no syscall. */
#define VMPROBE_MMAP_ARRAY(_name, _value, _max)    \
	struct {                                   \
		__uint(type, BPF_MAP_TYPE_ARRAY);  \
		__uint(map_flags, BPF_F_MMAPABLE); \
		__uint(max_entries, _max);         \
		__type(key, __u32);                \
		__type(value, _value);             \
	} _name SEC(".maps")

#define VMPROBE_RINGBUF(_name, _bytes)              \
	struct {                                    \
		__uint(type, BPF_MAP_TYPE_RINGBUF); \
		__uint(max_entries, _bytes);        \
	} _name SEC(".maps")

#endif

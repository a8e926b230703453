// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* User-space helpers for the probes' BPF maps (core/bpfmap.h). */
#include "core/bpfmap.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/util.h"

__u64 bpf_percpu_sum(int map_fd, __u32 key)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 vals[ncpus > 0 ? ncpus : 1], sum = 0;

	if (ncpus <= 0 || bpf_map_lookup_elem(map_fd, &key, vals))
		return 0;
	for (int i = 0; i < ncpus; i++)
		sum += vals[i];
	return sum;
}

int bpf_array_mmap(int map_fd, size_t len, void *out)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);

	if (p == MAP_FAILED) {
		memset(out, 0, sizeof(void *));
		return -errno;
	}
	memcpy(out, &p, sizeof(p));
	return 0;
}

/* Entries read by one BPF_MAP_LOOKUP_BATCH (a hash bucket larger than this doubles it). */
#define BATCH_ENTRIES 1024

/*
 * The keys and values of one batch, kept for the thread's next walk: a
 * scrape walks the same maps each time, and a fresh buffer of this size
 * is an mmap, page faults and a munmap each time. A walk from inside a
 * walk's callback would overwrite it, and is refused.
 */
static __thread struct {
	char *buf;
	size_t size;
	bool busy;
} batch;

/* Room for `size` bytes of keys and values in the thread's buffer; NULL if there is none. */
static char *batch_room(size_t size)
{
	char *grown;

	if (size > batch.size) {
		grown = realloc(batch.buf, size);
		if (!grown)
			return NULL;
		batch.buf = grown;
		batch.size = size;
	}
	return batch.buf;
}

int bpf_hash_foreach(int map_fd, __u32 key_size, __u32 value_size,
		     int (*fn)(const void *key, const void *value, void *arg), void *arg)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 cap = BATCH_ENTRIES, count;
	__u64 token = 0; /* a hash map's batch token is a bucket number */
	char *keys = NULL, *values;
	bool first = true, done = false;
	int ret = 0;

	if (batch.busy)
		return -EDEADLK;
	batch.busy = true;
	while (!done && !ret) {
		if (!keys) {
			keys = batch_room((size_t)cap * (key_size + value_size));
			if (!keys) {
				ret = -ENOMEM;
				break;
			}
			values = keys + (size_t)cap * key_size;
		}
		count = cap;
		if (bpf_map_lookup_batch(map_fd, first ? NULL : &token, &token, keys, values,
					 &count, &opts)) {
			if (errno == ENOSPC && !count) {
				/* A bucket holds more than cap: again, with room for it. */
				keys = NULL;
				cap *= 2;
				continue;
			}
			if (errno != ENOENT)
				ret = -errno;
			done = true; /* ENOENT: these are the last */
		}
		first = false;
		for (__u32 i = 0; i < count && !ret; i++)
			ret = fn(keys + (size_t)i * key_size, values + (size_t)i * value_size, arg);
	}
	batch.busy = false;
	return ret;
}

/* The "memlock:" line of a map fd's fdinfo; 0 if there is none. */
static __u64 map_memlock(int fd, bool *missed)
{
	char path[64], text[1024];
	const char *line;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	line = read_file(path, text, sizeof(text)) > 0 ? strstr(text, "\nmemlock:") : NULL;
	if (!line) {
		*missed = true;
		return 0;
	}
	return strtoull(line + strlen("\nmemlock:"), NULL, 10);
}

/* Whether a map's memory can change once made: only one that allocates as it fills. */
static bool map_memlock_varies(const struct bpf_map *m)
{
	return bpf_map__map_flags(m) & BPF_F_NO_PREALLOC;
}

__u64 bpf_object_memlock(const struct bpf_object *obj, __u64 *fixed)
{
	const struct bpf_map *m;
	__u64 sum = 0, made = 0;
	bool missed = false; /* a fixed map's line not read: read them all again next time */

	bpf_object__for_each_map(m, obj) {
		int fd = bpf_map__fd(m);
		bool ignored = false;

		if (fd < 0)
			continue;
		if (!fixed || map_memlock_varies(m))
			sum += map_memlock(fd, &ignored);
		else if (!*fixed)
			made += map_memlock(fd, &missed);
	}
	if (!fixed)
		return sum;
	if (!*fixed)
		return sum + (missed ? made : (*fixed = made));
	return sum + *fixed;
}

/*
 * bpf_map_memory_model() follows Linux's map_mem_usage() of each map type
 * (kernel/bpf/arraymap.c, hashtab.c, ringbuf.c, 6.x), what fdinfo's
 * memlock reports; what that leaves out (the programs, an LRU's per-CPU
 * lists) this leaves out too. Kernel structs are taken at a little more
 * than their size on x86-64, so that the model errs high:
 * - array: the struct bpf_array header, values rounded up to 8 bytes;
 *   per-CPU: a pointer and the value on every possible CPU per entry;
 *   mmapable: header and values each rounded up to pages.
 * - hash (preallocated, as every vmprobe hash is): the struct bpf_htab
 *   header, a 16-byte bucket per entry rounded up to a power of two, the
 *   elements (a 48-byte struct htab_elem, key and value rounded up to 8;
 *   per-CPU values on every CPU), and for a plain hash one spare element
 *   and one free-list pointer per CPU.
 * - ring buffer: the data pages, its header and position pages, and the
 *   page pointers (the data is mapped twice).
 */
#define MODEL_PAGE 4096ULL
#define MODEL_MAP_HEADER 1024ULL /* struct bpf_array / bpf_htab: ~330 / ~700 bytes */
#define MODEL_HTAB_ELEM 48ULL
#define MODEL_BUCKET 16ULL
#define MODEL_RINGBUF_META_PAGES 4ULL /* header page, consumer and producer pages, + one */

static __u64 round_up(__u64 x, __u64 a)
{
	return (x + a - 1) / a * a;
}

static __u64 pow2_up(__u64 x)
{
	__u64 p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

static __u64 array_model(const struct bpf_map *m, unsigned ncpus)
{
	__u64 n = bpf_map__max_entries(m), elem = round_up(bpf_map__value_size(m), 8);

	if (bpf_map__type(m) == BPF_MAP_TYPE_PERCPU_ARRAY)
		return MODEL_MAP_HEADER + n * 8 + n * elem * ncpus;
	if (bpf_map__map_flags(m) & BPF_F_MMAPABLE)
		return round_up(MODEL_MAP_HEADER, MODEL_PAGE) + round_up(n * elem, MODEL_PAGE);
	return MODEL_MAP_HEADER + n * elem;
}

static __u64 hash_model(const struct bpf_map *m, unsigned ncpus)
{
	enum bpf_map_type t = bpf_map__type(m);
	bool percpu = t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	bool lru = t == BPF_MAP_TYPE_LRU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	__u64 n = bpf_map__max_entries(m), value = round_up(bpf_map__value_size(m), 8);
	__u64 elem = MODEL_HTAB_ELEM + round_up(bpf_map__key_size(m), 8) + (percpu ? 8 : value);
	__u64 elems = n + (!percpu && !lru ? ncpus : 0);
	__u64 usage = MODEL_MAP_HEADER + MODEL_BUCKET * pow2_up(n) + elem * elems;

	if (percpu)
		usage += value * ncpus * elems;
	else if (!lru)
		usage += 8ULL * ncpus;
	return usage;
}

__u64 bpf_map_memory_model(const struct bpf_map *m, unsigned ncpus)
{
	__u64 pages;

	switch (bpf_map__type(m)) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_PROG_ARRAY:
		return array_model(m, ncpus);
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return hash_model(m, ncpus);
	case BPF_MAP_TYPE_RINGBUF:
		pages = bpf_map__max_entries(m) / MODEL_PAGE;
		return (MODEL_RINGBUF_META_PAGES + pages) * MODEL_PAGE +
		       (MODEL_RINGBUF_META_PAGES + 2 * pages) * 8 + MODEL_PAGE;
	default:
		return 0; /* a type the model does not know: test_memory fails on it */
	}
}

__u64 bpf_object_memory_model(const struct bpf_object *obj, unsigned ncpus)
{
	const struct bpf_map *m;
	__u64 sum = 0;

	bpf_object__for_each_map(m, obj)
		if (bpf_map__autocreate(m))
			sum += bpf_map_memory_model(m, ncpus);
	return sum;
}

/* Does struct/union `id` have a member `name`, directly or in an anonymous member? */
static bool btf_id_has_member(const struct btf *btf, int id, const char *name, int depth)
{
	const struct btf_type *t = btf__type_by_id(btf, btf__resolve_type(btf, id));
	const struct btf_member *m;

	if (!t || !(btf_is_struct(t) || btf_is_union(t)) || depth > 4)
		return false;
	m = btf_members(t);
	for (int i = 0; i < btf_vlen(t); i++, m++) {
		const char *mname = btf__name_by_offset(btf, m->name_off);

		if (mname && !strcmp(mname, name))
			return true;
		if ((!mname || !*mname) && btf_id_has_member(btf, m->type, name, depth + 1))
			return true;
	}
	return false;
}

/* Does the kernel's struct `type` have a member `name`? */
bool btf_has_member(const struct btf *btf, const char *type, const char *name)
{
	int id = btf ? btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT) : -1;

	return id > 0 && btf_id_has_member(btf, id, name, 0);
}

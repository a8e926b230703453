// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* User-space helpers for the probes' BPF maps (core/bpfmap.h). */
#include "core/bpfmap.h"

#include <bpf/bpf.h>
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

/* The "memlock:" line of a map fd's fdinfo; 0 if there is none. */
static __u64 map_memlock(int fd)
{
	char path[64], text[1024];
	const char *line;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (read_file(path, text, sizeof(text)) <= 0)
		return 0;
	line = strstr(text, "\nmemlock:");
	return line ? strtoull(line + strlen("\nmemlock:"), NULL, 10) : 0;
}

__u64 bpf_object_memlock(const struct bpf_object *obj)
{
	const struct bpf_map *m;
	__u64 sum = 0;

	bpf_object__for_each_map(m, obj)
		if (bpf_map__fd(m) >= 0)
			sum += map_memlock(bpf_map__fd(m));
	return sum;
}

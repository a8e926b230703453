// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * qcow2 headers (core/image.c): the input is an image file. Its backing
 * file name, read as image_backing_chain() reads it, then taken as the
 * next image of a chain relative to an absolute and a relative path, and
 * again from there (a chain that names the same file at every level).
 */
#include "fuzz.h"

#include "core/image.h"

/* Follows `name` from `cur` as far as a chain can go, checking each step. */
static void follow(const char *cur, const char *name)
{
	char a[2048], b[2048];

	snprintf(a, sizeof(a), "%s", cur);
	for (int depth = 0; depth < IMAGE_MAX_BACKING; depth++) {
		if (!image_backing_next(a, name, b, sizeof(b)))
			return;
		fuzz_assert(strlen(b) >= strlen(name) && !strcmp(b + strlen(b) - strlen(name), name));
		fuzz_assert(name[0] != '/' || !strcmp(b, name));
		memcpy(a, b, sizeof(a));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[QCOW2_NAME_MAX + 1];
	uint32_t len;
	uint64_t off;

	if (!qcow2_backing_at(data, size, &off, &len))
		return 0;
	fuzz_assert(off && len && len <= QCOW2_NAME_MAX);
	if (off > size || len > size - off)
		return 0;
	memcpy(name, data + off, len);
	name[len] = '\0';
	if (strlen(name) != len)
		return 0;
	follow("/var/lib/libvirt/images/vm1.qcow2", name);
	follow("vm1.qcow2", name);
	follow("", name);
	return 0;
}

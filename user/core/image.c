// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Backing chains of qcow2 images (core/image.h), from their headers:
 * magic "QFI\xfb", then at byte 8 the backing file name's offset (64 bits)
 * and at 16 its length (32 bits), big-endian. The header is the guest's
 * to write only in a raw image QEMU probes; what a lying one can do here
 * is name another file of the same QEMU, whose IO then counts on this
 * drive: the guest's own numbers, no one else's.
 */
#include "core/image.h"

#include <endian.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QCOW2_MAGIC 0x514649fbu

void image_path(const char *proc_pid, const char *vm_path, char *out, size_t size)
{
	snprintf(out, size, "%.255s/%s/%.2000s", proc_pid, vm_path[0] == '/' ? "root" : "cwd",
		 vm_path);
}

bool qcow2_backing_at(const unsigned char *h, size_t n, uint64_t *off, uint32_t *len)
{
	uint32_t magic;

	if (n < QCOW2_HEADER)
		return false;
	memcpy(&magic, h, 4);
	memcpy(off, h + 8, 8);
	memcpy(len, h + 16, 4);
	magic = be32toh(magic);
	*off = be64toh(*off);
	*len = be32toh(*len);
	return magic == QCOW2_MAGIC && *off && *len && *len <= QCOW2_NAME_MAX &&
	       *off <= (uint64_t)INT64_MAX;
}

/* The backing file name in a qcow2 header; false if none (or not qcow2). */
static bool qcow2_backing(const char *path, char *name, size_t size)
{
	unsigned char h[QCOW2_HEADER];
	uint32_t len;
	uint64_t off;
	struct stat st;
	bool ok = false;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return false;
	/* Never a FIFO or a device that could block or has side effects on read. */
	if (fstat(fd, &st) || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) ||
	    pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    !qcow2_backing_at(h, sizeof(h), &off, &len) || len >= size)
		goto out;
	ok = pread(fd, name, len, (off_t)off) == (ssize_t)len;
	name[ok ? len : 0] = '\0';
	ok = ok && strlen(name) == len;
out:
	close(fd);
	return ok;
}

bool image_backing_next(const char *cur, const char *name, char *next, size_t size)
{
	size_t colon = strcspn(name, ":"), dir;
	const char *slash = strrchr(cur, '/');

	/* A name QEMU opens as a file: not json:{...}, not proto:... */
	if (name[0] != '/' && name[colon] && !memchr(name, '/', colon))
		return false;
	/* A relative name is relative to the image that names it. */
	dir = name[0] == '/' || !slash ? 0 : (size_t)(slash - cur) + 1;
	if (dir + strlen(name) >= size)
		return false;
	memmove(next, cur, dir);
	memcpy(next + dir, name, strlen(name) + 1);
	return true;
}

int image_backing_chain(const char *proc_pid, const char *open_path, const char *vm_path,
			struct file_id *out, int max)
{
	char cur[2048], open_at[PATH_MAX], name[QCOW2_NAME_MAX + 1], next[2048];
	struct stat st;
	int n = 0;

	snprintf(cur, sizeof(cur), "%.2000s", vm_path);
	if (open_path)
		snprintf(open_at, sizeof(open_at), "%s", open_path);
	else
		image_path(proc_pid, cur, open_at, sizeof(open_at));
	while (n < max && qcow2_backing(open_at, name, sizeof(name)) &&
	       image_backing_next(cur, name, next, sizeof(next))) {
		memcpy(cur, next, sizeof(cur));
		image_path(proc_pid, cur, open_at, sizeof(open_at));
		if (stat(open_at, &st))
			break;
		out[n++] = (struct file_id){ .dev = st.st_dev, .ino = st.st_ino };
	}
	return n;
}

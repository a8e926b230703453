// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Backing chains of qcow2 images (core/image.h), from their headers:
 * magic "QFI\xfb", then at byte 8 the backing file name's offset (64 bits)
 * and at 16 its length (32 bits), big-endian. The header is the guest's
 * to write only in a raw image QEMU probes; what a lying one can do here
 * is name another file of the same QEMU, whose IO then counts on this
 * drive: the guest's own numbers, no one else's. Every path a VM names
 * (command line, libvirt's state, an image's header) is resolved inside
 * the VM's own root (openat2 RESOLVE_IN_ROOT), never vmprobe's, and a file
 * is opened for reading only once it is known to be a regular file or a
 * block device: naming a host file or a device gets nothing opened.
 */
#define _GNU_SOURCE /* O_PATH */
#include "core/image.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/util.h"

#define QCOW2_MAGIC 0x514649fbu

int image_open(const char *proc_pid, const char *vm_path)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC };
	static bool warned;
	char at[PATH_MAX];
	int dir, fd;

	/* An absolute path in the process's root, a relative one beneath its working directory. */
	how.resolve = vm_path[0] == '/' ? RESOLVE_IN_ROOT : RESOLVE_BENEATH;
	snprintf(at, sizeof(at), "%.255s/%s", proc_pid, vm_path[0] == '/' ? "root" : "cwd");
	dir = open(at, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	/* EAGAIN: a rename or mount somewhere raced with `..`; the kernel asks to try again. */
	for (int tries = 0; tries < 3; tries++) {
		fd = (int)syscall(SYS_openat2, dir, vm_path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	/* A relative path out of the working directory (`..`, an absolute link): as before. */
	if (fd < 0 && errno == EXDEV && vm_path[0] != '/')
		fd = openat(dir, vm_path, O_PATH | O_CLOEXEC);
	if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
		/* A seccomp profile without openat2: resolved as the kernel's magic links do. */
		if (!warned)
			log_warn("openat2 is refused here (%s): the paths VMs name are resolved "
				 "through /proc/PID/root, not held inside it", strerror(errno));
		warned = true;
		fd = openat(dir, vm_path[0] == '/' ? vm_path + 1 : vm_path, O_PATH | O_CLOEXEC);
	}
	fd = fd < 0 ? -errno : fd;
	close(dir);
	return fd;
}

int image_stat(const char *proc_pid, const char *vm_path, struct stat *st)
{
	int fd = image_open(proc_pid, vm_path), err;

	if (fd < 0)
		return fd;
	err = fstat(fd, st) ? -errno : 0;
	close(fd);
	return err;
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

/*
 * The backing file name in the qcow2 header of the image at `at` (an
 * O_PATH fd); false if none (or not qcow2). Opened for reading only if it
 * is a regular file or a block device: never a FIFO or a device that
 * could block or has side effects on open.
 */
static bool qcow2_backing(int at, char *name, size_t size)
{
	unsigned char h[QCOW2_HEADER];
	char self[64];
	uint32_t len;
	uint64_t off;
	struct stat st;
	bool ok = false;
	int fd;

	if (fstat(at, &st) || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return false;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", at);
	fd = open(self, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
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

int image_backing_chain(const char *proc_pid, int top, const char *vm_path, struct file_id *out,
			int max)
{
	char cur[2048], name[QCOW2_NAME_MAX + 1], next[2048];
	struct stat st;
	int n = 0, at = top;

	snprintf(cur, sizeof(cur), "%.2000s", vm_path);
	while (n < max && qcow2_backing(at, name, sizeof(name)) &&
	       image_backing_next(cur, name, next, sizeof(next))) {
		memcpy(cur, next, sizeof(cur));
		if (at != top)
			close(at);
		at = image_open(proc_pid, cur);
		if (at < 0 || fstat(at, &st))
			break;
		out[n++] = (struct file_id){ .dev = st.st_dev, .ino = st.st_ino };
	}
	if (at >= 0 && at != top)
		close(at);
	return n;
}

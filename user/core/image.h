/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What a disk image says of itself: the backing files of a qcow2 image,
 * which QEMU opens (and locks) with it and reads for the guest wherever
 * the image has no data of its own.
 */
#ifndef VMPROBE_IMAGE_H
#define VMPROBE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define IMAGE_MAX_BACKING 8
#define QCOW2_HEADER 20      /* the bytes of a qcow2 header that say where the backing name is */
#define QCOW2_NAME_MAX 1023 /* QEMU's own limit on a backing file name */

struct file_id {
	dev_t dev;
	ino_t ino;
};

/*
 * A path as a process sees it (`proc_pid` is /proc/PID), opened O_PATH
 * from here: an absolute one inside the process's root (`..` and symbolic
 * links stay in it), a relative one beneath its working directory. An fd,
 * or -errno.
 */
int image_open(const char *proc_pid, const char *vm_path);
/* stat(2) of that path, found the same way; 0 or -errno. */
int image_stat(const char *proc_pid, const char *vm_path, struct stat *st);
/*
 * The backing chain of the image at `vm_path` (as QEMU sees it), open at
 * `top` (an O_PATH fd, or any fd on it): the files each qcow2 header names
 * in turn, found as image_open() does, up to `max`. Names that are not
 * files (json:, protocol URLs) end the chain. Returns how many were found.
 */
int image_backing_chain(const char *proc_pid, int top, const char *vm_path, struct file_id *out,
			int max);

/*
 * From the first `n` bytes of an image: whether it is qcow2 and names a
 * backing file, at byte *off, of *len bytes (at most QCOW2_NAME_MAX).
 */
bool qcow2_backing_at(const unsigned char *h, size_t n, uint64_t *off, uint32_t *len);

/*
 * The next image of a chain into `next`: the backing `name` a header of
 * the image `cur` gives, relative to cur's directory unless absolute;
 * false if it is no file name (json:{...}, protocol:...) or too long.
 */
bool image_backing_next(const char *cur, const char *name, char *next, size_t size);

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Where librbd keeps a request's result: learned from the machine code of
 * rbd_aio_get_return_value(c), which loads it through a chain of pointers
 * from c. The chain, as rbd_done's attach cookie (vmprobe/netdisk.h), lets
 * the program read the result at the hook it already has (no return
 * probe, no third trap per request) without assuming librbd's layout.
 */
#ifndef VMPROBE_NETDISK_RVAL_H
#define VMPROBE_NETDISK_RVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

/* A library's code, by its virtual addresses. */
struct rval_code {
	/* len bytes at addr in an executable section, or NULL. */
	const __u8 *(*at)(void *ctx, __u64 addr, size_t len);
	/* Where the PLT stub at addr leads, when it is this library's own function. */
	bool (*plt)(void *ctx, __u64 addr, __u64 *target);
	void *ctx;
};

/* The cookie for code entered at entry (x86-64), or 0 if it is not understood. */
__u64 rval_decode(const struct rval_code *code, __u64 entry);

/* The cookie for the library file at path (an ELF shared object), or 0. */
__u64 rval_cookie(const char *path);

#endif

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Where librbd keeps a request's result (probes/netdisk/rval.c): the chain
 * of loads read from rbd_aio_get_return_value's machine code, for code as
 * compilers emit it (jumps, PLT stubs, endbr64, sign extension) and for
 * this machine's librbd; code that does anything else is not understood,
 * never guessed.
 */
#include <stdio.h>
#include <unistd.h>

#include "unit.h"

#include "probes/netdisk/rval.h"
#include "vmprobe/netdisk.h"

/* A flat image of code at BASE; a PLT stub at PLT leads to PLT_TARGET. */
#define BASE 0x1000
#define PLT 0x1800
#define PLT_TARGET 0x1400
struct image {
	__u8 code[4096];
};

static const __u8 *at(void *ctx, __u64 addr, size_t len)
{
	struct image *img = ctx;

	if (addr < BASE || addr - BASE + len > sizeof(img->code))
		return NULL;
	return img->code + (addr - BASE);
}

static bool plt(void *ctx, __u64 addr, __u64 *target)
{
	if (addr != PLT)
		return false;
	*target = PLT_TARGET;
	return true;
}

static __u64 decode(const __u8 *entry, size_t len, const __u8 *target, size_t tlen)
{
	static struct image img;
	struct rval_code code = { at, plt, &img };

	memset(img.code, 0xcc, sizeof(img.code)); /* int3: not understood */
	memcpy(img.code, entry, len);
	if (target)
		memcpy(img.code + (PLT_TARGET - BASE), target, tlen);
	return rval_decode(&code, BASE);
}

static __u64 cookie(int derefs, bool wide, __u64 off0, __u64 off1, __u64 off2)
{
	return NETDISK_RVAL_KNOWN | (wide ? NETDISK_RVAL_WIDE : 0) |
	       (__u64)derefs << NETDISK_RVAL_DEREFS_SHIFT | off0 | off1 << 16 | off2 << 32;
}

static void chains_as_compilers_emit_them(void **state)
{
	/* Debian 12's librbd, both functions: mov (%rdi),%rdi; mov 0x78(%rdi),%rax; ret */
	static const __u8 quincy[] = { 0x48, 0x8b, 0x3f, 0xeb, 0x00, 0x48, 0x8b, 0x47, 0x78, 0xc3 };
	/* endbr64; jmp to the PLT stub (5 bytes: e9 rel32) */
	static const __u8 via_plt[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0xe9, 0xf7, 0x07, 0x00, 0x00 };
	static const __u8 method[] = { 0x48, 0x8b, 0x3f, 0x48, 0x8b, 0x87, 0x10, 0x01, 0x00,
				       0x00, 0xc3 };
	/* Two pointers, through %rax: mov 8(%rdi),%rax; mov (%rax),%rax; movslq 0x20(%rax),%rax */
	static const __u8 two[] = { 0x48, 0x8b, 0x47, 0x08, 0x48, 0x8b, 0x00,
				    0x48, 0x63, 0x40, 0x20, 0xf3, 0xc3 };
	/* A 4-byte load sign-extended by cltq. */
	static const __u8 cltq[] = { 0x48, 0x8b, 0x3f, 0x8b, 0x47, 0x0c, 0x48, 0x98, 0xc3 };
	/* The pointer copied to another register first. */
	static const __u8 copy[] = { 0x48, 0x89, 0xf8, 0x48, 0x8b, 0x40, 0x30, 0xc3 };

	expect_int("quincy", cookie(1, true, 0, 0x78, 0), decode(quincy, sizeof(quincy), NULL, 0));
	expect_int("through the PLT", cookie(1, true, 0, 0x110, 0),
		   decode(via_plt, sizeof(via_plt), method, sizeof(method)));
	expect_int("two pointers", cookie(2, false, 8, 0, 0x20), decode(two, sizeof(two), NULL, 0));
	expect_int("cltq", cookie(1, false, 0, 0x0c, 0), decode(cltq, sizeof(cltq), NULL, 0));
	expect_int("copied pointer", cookie(0, true, 0x30, 0, 0),
		   decode(copy, sizeof(copy), NULL, 0));
}

static void other_code_is_not_understood(void **state)
{
	static const struct {
		const char *what;
		__u8 code[16];
		size_t len;
	} rows[] = {
		/* A call: what it does is not known. */
		{ "call", { 0x48, 0x8b, 0x3f, 0xe8, 0, 0, 0, 0, 0xc3 }, 9 },
		/* The result zero-extended (an unsigned int): not a negative errno. */
		{ "zero-extended", { 0x48, 0x8b, 0x3f, 0x8b, 0x47, 0x0c, 0xc3 }, 7 },
		/* A load from another register than the chain's. */
		{ "other base", { 0x48, 0x8b, 0x46, 0x10, 0xc3 }, 5 },
		/* The result left in %rdi, not %rax. */
		{ "not in rax", { 0x48, 0x8b, 0x3f, 0xc3 }, 4 },
		/* No load at all: returns c itself. */
		{ "no load", { 0x48, 0x89, 0xf8, 0xc3 }, 4 },
		/* A pointer loaded as 4 bytes then followed. */
		{ "narrow pointer", { 0x8b, 0x3f, 0x48, 0x8b, 0x47, 0x08, 0xc3 }, 7 },
		/* RIP-relative: a global, not the completion. */
		{ "rip-relative", { 0x48, 0x8b, 0x05, 0x10, 0, 0, 0, 0xc3 }, 8 },
		/* A negative displacement. */
		{ "negative", { 0x48, 0x8b, 0x47, 0xf8, 0xc3 }, 5 },
		/* Four loads: more than the cookie holds. */
		{ "too long", { 0x48, 0x8b, 0x3f, 0x48, 0x8b, 0x3f, 0x48, 0x8b, 0x3f,
				0x48, 0x8b, 0x07, 0xc3 }, 13 },
		/* A jump to itself: the walk ends. */
		{ "loop", { 0xeb, 0xfe }, 2 },
		/* Off the image. */
		{ "jump away", { 0xe9, 0x00, 0x00, 0x10, 0x00 }, 5 },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		expect_int(rows[i].what, 0, decode(rows[i].code, rows[i].len, NULL, 0));
}

/* This machine's librbd, through its PLT: the chain the integration test then proves. */
static void this_machines_librbd(void **state)
{
	static const char *const paths[] = { "/usr/lib/x86_64-linux-gnu/librbd.so.1",
					     "/usr/lib64/librbd.so.1" };
	const char *path = NULL;

	for (size_t i = 0; i < 2; i++)
		if (!access(paths[i], R_OK))
			path = paths[i];
	if (!path) {
		fprintf(stderr, "SKIP: librbd is not installed (make test-deps installs it)\n");
		skip();
	}
	if (!(rval_cookie(path) & NETDISK_RVAL_KNOWN))
		fail_msg("%s: rbd_aio_get_return_value not understood", path);
	expect_int("not a library", 0, rval_cookie("/etc/hostname"));
	expect_int("no file", 0, rval_cookie("/nonexistent/librbd.so.1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(chains_as_compilers_emit_them),
		cmocka_unit_test(other_code_is_not_understood),
		cmocka_unit_test(this_machines_librbd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

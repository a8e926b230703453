/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Table-driven checks for the cmocka unit tests: they name the failing row. */
#ifndef VMPROBE_TESTS_UNIT_H
#define VMPROBE_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#define expect_str(what, exp, act)                                                     \
	do {                                                                           \
		const char *e_ = (exp), *a_ = (act);                                   \
		if (strcmp(e_, a_) != 0)                                               \
			fail_msg("%s:\nexpected: \"%s\"\nactual:   \"%s\"", (what), e_, a_); \
	} while (0)

#define expect_int(what, exp, act)                                                     \
	do {                                                                           \
		long long e_ = (exp), a_ = (act);                                      \
		if (e_ != a_)                                                          \
			fail_msg("%s: expected %lld, actual %lld", (what), e_, a_);     \
	} while (0)

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the libFuzzer targets (tests/fuzz/fuzz_X.c) share: the input as a
 * string, a sink for the error messages bad input earns, and a check that
 * aborts (a crash libFuzzer reports, with the input) when a property of
 * what a parser returned does not hold.
 */
#ifndef VMPROBE_TESTS_FUZZ_H
#define VMPROBE_TESTS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a malloc'd NUL-terminated string (it may hold NULs before the end). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Where parsers' error messages go: read by no one, but written for real. */
static inline FILE *fuzz_devnull(void)
{
	static FILE *f;

	if (!f && !(f = fopen("/dev/null", "we")))
		abort();
	return f;
}

#define fuzz_assert(cond)                                                                  \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: property does not hold: %s\n", __FILE__,   \
				__LINE__, #cond);                                          \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* Whether a char array holds a NUL-terminated string (what every parser's output must). */
#define fuzz_terminated(arr) (memchr((arr), '\0', sizeof(arr)) != NULL)

#endif

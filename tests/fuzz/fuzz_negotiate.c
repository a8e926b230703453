// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * HTTP content negotiation (core/negotiate.c): the input as a scrape's
 * Accept header against what /metrics offers, and as its Accept-Encoding.
 */
#include "fuzz.h"

#include "core/expo.h"
#include "core/negotiate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	int format = negotiate_accept(text, expo_media_types, EXPO_FORMATS);
	int gzip = negotiate_encoding(text, "gzip");

	fuzz_assert(format >= -1 && format < EXPO_FORMATS);
	fuzz_assert(gzip == 0 || gzip == 1);
	free(text);
	return 0;
}

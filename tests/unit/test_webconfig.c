// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The web configuration's response headers (http_server_config.headers):
 * what libmicrohttpd could not send is refused with file:line:column,
 * never dropped. tests/integration/web_config.sh covers the rest with a
 * real server.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "unit.h"

#include "core/util.h"
#include "core/webconfig.h"

static void test_headers_libmicrohttpd_cannot_send_are_refused(void **state)
{
	static const struct {
		const char *what, *doc, *error;
	} rows[] = {
		/* Found by tests/fuzz/fuzz_webconfig: the header was silently not sent. */
		{ "an empty header name", "http_server_config:\n  headers:\n    \"\": x\n",
		  "/etc/web.yml:3:5: HTTP header '' cannot be configured (only "
		  "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
		  "X-XSS-Protection, Content-Security-Policy)" },
		{ "an empty header value",
		  "http_server_config:\n  headers:\n    X-XSS-Protection: \"\"\n",
		  "/etc/web.yml:3:23: header X-XSS-Protection must be one non-empty line" },
		{ "a header value of two lines",
		  "http_server_config:\n  headers:\n    X-XSS-Protection: \"a\\nb\"\n",
		  "/etc/web.yml:3:23: header X-XSS-Protection must be one non-empty line" },
		{ "a header name with a colon", "http_server_config:\n  headers:\n    \"X:A\": b\n",
		  "/etc/web.yml:3:5: HTTP header 'X:A' cannot be configured (only "
		  "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
		  "X-XSS-Protection, Content-Security-Policy)" },
		/* As exporter-toolkit: a header vmprobe sets itself would go twice. */
		{ "Content-Type is vmprobe's",
		  "http_server_config:\n  headers:\n    Content-Type: x\n",
		  "/etc/web.yml:3:5: HTTP header 'Content-Type' cannot be configured (only "
		  "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
		  "X-XSS-Protection, Content-Security-Policy)" },
		{ "X-Frame-Options is an enumeration",
		  "http_server_config:\n  headers:\n    X-Frame-Options: allow-from x\n",
		  "/etc/web.yml:3:22: header X-Frame-Options must be deny or sameorigin, "
		  "not 'allow-from x'" },
		/* Spelt as exporter-toolkit does, so that a header cannot be set twice. */
		{ "a name in another case",
		  "http_server_config:\n  headers:\n    x-frame-options: deny\n",
		  "/etc/web.yml:3:5: HTTP header 'x-frame-options' cannot be configured (only "
		  "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
		  "X-XSS-Protection, Content-Security-Policy)" },
		{ "X-Content-Type-Options has one value",
		  "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
		  "/etc/web.yml:3:29: header X-Content-Type-Options must be nosniff, not 'sniff'" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct web_config wc;
		char *errors = NULL;
		size_t size = 0;
		FILE *err = open_memstream(&errors, &size);
		int ret;

		assert_non_null(err);
		ret = web_config_load_string(&wc, "/etc/web.yml", rows[i].doc, strlen(rows[i].doc), err);
		fclose(err);
		expect_int(rows[i].what, -EINVAL, ret);
		expect_str(rows[i].what, rows[i].error, strtok(errors, "\n"));
		free(errors);
	}
}

static void test_headers_are_taken_in_order(void **state)
{
	static const char doc[] = "http_server_config:\n  headers:\n"
				  "    X-Content-Type-Options: nosniff\n    X-Frame-Options: deny\n"
				  "    Content-Security-Policy: default-src 'none'\n";
	struct web_config wc;

	assert_int_equal(0, web_config_load_string(&wc, "/etc/web.yml", doc, strlen(doc), stderr));
	expect_int("three headers", 3, wc.nr_headers);
	expect_str("the first", "X-Content-Type-Options", wc.headers[0].name);
	expect_str("its value", "nosniff", wc.headers[0].value);
	expect_str("the second", "X-Frame-Options", wc.headers[1].name);
	expect_str("the third", "Content-Security-Policy", wc.headers[2].name);
	expect_str("its value as given", "default-src 'none'", wc.headers[2].value);
	web_config_free(&wc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers_libmicrohttpd_cannot_send_are_refused),
		cmocka_unit_test(test_headers_are_taken_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Log lines in each log_format: plain as before; logfmt and JSON with a
 * UTC time stamp, every message (tenant VM names included) escaped so
 * that a line stays one line and JSON parses back (json-c) to the message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "unit.h"

#include "core/util.h"

static const struct timespec ts = { .tv_sec = 1796500000, .tv_nsec = 123456789 };

static void plain_logfmt_and_json(void **state)
{
	struct strbuf sb;

	sb_init(&sb);
	log_line(&sb, LOG_PLAIN, LOG_WARN, &ts, "drive vda of VM web went");
	expect_str("plain", "vmprobe: warn: drive vda of VM web went\n", sb.buf);
	log_line(&sb, LOG_LOGFMT, LOG_INFO, &ts, "counting \"a\\b\"");
	expect_str("logfmt", "ts=2026-12-05T19:46:40.123Z level=info msg=\"counting \\\"a\\\\b\\\"\"\n",
		   sb.buf);
	log_line(&sb, LOG_JSON, LOG_ERROR, &ts, "x");
	expect_str("json", "{\"ts\":\"2026-12-05T19:46:40.123Z\",\"level\":\"error\",\"msg\":\"x\"}\n",
		   sb.buf);
	sb_free(&sb);
}

static void hostile_messages_stay_one_line_and_parse(void **state)
{
	static const char *const msgs[] = {
		"VM \"evil\nname\" with a tab\there",
		"control \x01\x1f and DEL \x7f",
		"invalid UTF-8 \xff\xfe and valid \xc3\xa9",
		"backslash \\ at the end \\",
	};
	struct strbuf sb;

	sb_init(&sb);
	for (size_t i = 0; i < ARRAY_SIZE(msgs); i++) {
		struct json_object *o, *m;

		for (int f = LOG_LOGFMT; f <= LOG_JSON; f++) {
			log_line(&sb, (enum log_format)f, LOG_INFO, &ts, msgs[i]);
			if (strchr(sb.buf, '\n') != sb.buf + sb.len - 1)
				fail_msg("format %d, message %zu: not one line: %s", f, i, sb.buf);
		}
		o = json_tokener_parse(sb.buf);
		if (!o || !json_object_object_get_ex(o, "msg", &m))
			fail_msg("message %zu: not JSON: %s", i, sb.buf);
		if (i != 2)
			expect_str("the message comes back", msgs[i], json_object_get_string(m));
		else
			expect_str("invalid bytes become U+FFFD", "invalid UTF-8 \xef\xbf\xbd\xef\xbf\xbd and valid \xc3\xa9",
				   json_object_get_string(m));
		json_object_put(o);
	}
	sb_free(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_logfmt_and_json),
		cmocka_unit_test(hostile_messages_stay_one_line_and_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

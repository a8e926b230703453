// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Tenants' strings as vmprobe writes them out (VM names, drive ids and
 * paths end up in every response and many log lines): label values in the
 * text formats (expo_escape, core/expo.c), read back by the protobuf
 * format's label parser (expo_pb_split_labels, core/expo_pb.c), and log
 * lines in logfmt and JSON (log_line, core/util.c). The input, up to its
 * first NUL, is such a string. Each form must give it back whole, as
 * valid UTF-8 (an invalid byte becoming U+FFFD), and stay on one line.
 */
#include <json-c/json.h>
#include <time.h>

#include "fuzz.h"

#include "core/expo.h"
#include "core/expo_pb.h"
#include "core/util.h"

/* What the string must come back as: invalid UTF-8 bytes replaced by U+FFFD. */
static void sanitized(const char *s, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_len(p);

		if (n)
			sb_add(out, (const char *)p, n), p += n;
		else
			sb_add(out, "\xef\xbf\xbd", 3), p++;
	}
}

static void valid_utf8_one_line(const char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_len((const unsigned char *)s + i);
		fuzz_assert(n > 0 && s[i] != '\n' && s[i] != '\0');
	}
}

static void labels(const char *value, const char *want)
{
	struct expo_label l[] = { { "name", value }, { "drive", "vda" } };
	const char *names[4], *values[4];
	struct strbuf sb;
	char *buf;

	sb_init(&sb);
	expo_labels(&sb, l, ARRAY_SIZE(l));
	fuzz_assert(!sb.oom);
	valid_utf8_one_line(sb.buf, sb.len);
	/* Room for every label: what the server gives the parser (4 KiB) may be too small. */
	buf = malloc(sb.len + 1);
	fuzz_assert(buf && expo_pb_split_labels(sb.buf, buf, sb.len + 1, names, values, 4) == 2);
	fuzz_assert(!strcmp(names[0], "name") && !strcmp(values[0], want));
	fuzz_assert(!strcmp(names[1], "drive") && !strcmp(values[1], "vda"));
	free(buf);
	sb_free(&sb);
}

static void log_lines(const char *msg, const char *want)
{
	static const struct timespec ts = { .tv_sec = 1796500000 };
	struct json_object *o, *m;
	struct strbuf sb;

	sb_init(&sb);
	log_line(&sb, LOG_LOGFMT, LOG_INFO, &ts, msg);
	fuzz_assert(!sb.oom && sb.len && sb.buf[sb.len - 1] == '\n');
	valid_utf8_one_line(sb.buf, sb.len - 1);
	log_line(&sb, LOG_JSON, LOG_INFO, &ts, msg);
	fuzz_assert(!sb.oom && sb.len && sb.buf[sb.len - 1] == '\n');
	valid_utf8_one_line(sb.buf, sb.len - 1);
	o = json_tokener_parse(sb.buf);
	fuzz_assert(o && json_object_object_get_ex(o, "msg", &m));
	fuzz_assert(!strcmp(json_object_get_string(m), want));
	json_object_put(o);
	sb_free(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_text(data, size);
	struct strbuf want;

	sb_init(&want);
	sanitized(s, &want);
	labels(s, want.buf ? want.buf : "");
	log_lines(s, want.buf ? want.buf : "");
	sb_free(&want);
	free(s);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum log_level log_max_level = LOG_INFO;
bool log_demoted;

static const char *const level_names[] = {
	[LOG_ERROR] = "error", [LOG_WARN] = "warn", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

enum log_format log_format = LOG_PLAIN;

static const char *const format_names[] = {
	[LOG_PLAIN] = "plain", [LOG_LOGFMT] = "logfmt", [LOG_JSON] = "json",
};

int log_format_parse(const char *s, enum log_format *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(format_names); i++) {
		if (strcmp(s, format_names[i]) == 0) {
			*out = (enum log_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A quoted string for logfmt or JSON: \\, \", \n, \t; other controls \u00XX; invalid UTF-8 U+FFFD. */
static void quoted(struct strbuf *sb, const char *msg)
{
	const unsigned char *s = (const unsigned char *)msg;

	sb_putc(sb, '"');
	while (*s) {
		size_t n;

		if (*s == '"' || *s == '\\') {
			sb_putc(sb, '\\');
			sb_putc(sb, (char)*s++);
		} else if (*s == '\n') {
			sb_add(sb, "\\n", 2), s++;
		} else if (*s == '\t') {
			sb_add(sb, "\\t", 2), s++;
		} else if (*s < 0x20 || *s == 0x7f) {
			sb_printf(sb, "\\u%04x", *s++);
		} else if ((n = utf8_len(s)) == 0) {
			sb_add(sb, "\xef\xbf\xbd", 3), s++;
		} else {
			sb_add(sb, (const char *)s, n), s += n;
		}
	}
	sb_putc(sb, '"');
}

void time_rfc3339(char *buf, size_t size, const struct timespec *ts)
{
	struct tm tm;
	size_t n;

	gmtime_r(&ts->tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03ldZ", ts->tv_nsec / 1000000);
}

void log_line(struct strbuf *sb, enum log_format f, enum log_level lvl,
	      const struct timespec *ts, const char *msg)
{
	char when[40];

	sb_reset(sb);
	if (f == LOG_PLAIN) {
		sb_printf(sb, "vmprobe: %s: %s\n", level_names[lvl], msg);
		return;
	}
	time_rfc3339(when, sizeof(when), ts);
	if (f == LOG_LOGFMT) {
		sb_printf(sb, "ts=%s level=%s msg=", when, level_names[lvl]);
		quoted(sb, msg);
	} else {
		sb_printf(sb, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", when,
			  level_names[lvl]);
		quoted(sb, msg);
		sb_putc(sb, '}');
	}
	sb_putc(sb, '\n');
}

void vlog(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_va(lvl, "", fmt, ap);
	va_end(ap);
}

void log_va(enum log_level lvl, const char *prefix, const char *fmt, va_list ap)
{
	char msg[2048];
	struct strbuf sb;
	struct timespec ts;
	size_t n;

	if (log_demoted)
		lvl = LOG_DEBUG;
	if (lvl > log_max_level)
		return;
	n = (size_t)snprintf(msg, sizeof(msg), "%s", prefix);
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	/* Libraries end their messages with newlines: the line has one already. */
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	sb_init(&sb);
	log_line(&sb, log_format, lvl, &ts, msg);
	/* One write a line: lines of several threads never interleave. */
	if (sb.buf)
		fputs(sb.buf, stderr);
	else
		fprintf(stderr, "vmprobe: %s: %s\n", level_names[lvl], msg);
	sb_free(&sb);
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void sb_init(struct strbuf *sb)
{
	memset(sb, 0, sizeof(*sb));
}

void sb_free(struct strbuf *sb)
{
	free(sb->buf);
	sb_init(sb);
}

void sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	sb->oom = false;
	if (sb->buf)
		sb->buf[0] = '\0';
}

static bool sb_grow(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1, cap;
	char *p;

	if (sb->oom)
		return false;
	if (need <= sb->cap)
		return true;
	cap = sb->cap ? sb->cap : 4096;
	while (cap < need)
		cap *= 2;
	p = realloc(sb->buf, cap);
	if (!p) {
		sb->oom = true;
		return false;
	}
	sb->buf = p;
	sb->cap = cap;
	return true;
}

bool sb_reserve(struct strbuf *sb, size_t extra)
{
	return sb_grow(sb, extra);
}

void sb_add(struct strbuf *sb, const char *s, size_t n)
{
	if (!sb_grow(sb, n))
		return;
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sb_puts(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_putc(struct strbuf *sb, char c)
{
	sb_add(sb, &c, 1);
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!sb_grow(sb, 64))
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sb->cap - sb->len) {
		if (!sb_grow(sb, n))
			return;
		va_start(ap, fmt);
		vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
		va_end(ap);
	}
	sb->len += n;
}

char *sb_steal(struct strbuf *sb)
{
	char *p = sb->oom ? NULL : sb->buf;

	if (sb->oom)
		free(sb->buf);
	sb_init(sb);
	return p;
}

int slot_pool_init(struct slot_pool *p, unsigned size, __u64 *born)
{
	p->size = size;
	p->next = 0;
	p->used = calloc(size, 1);
	p->own_born = !born;
	p->born = born ? born : calloc(size ? size : 1, sizeof(*p->born));
	return p->used && p->born ? 0 : -ENOMEM;
}

void slot_pool_fini(struct slot_pool *p)
{
	free(p->used);
	if (p->own_born)
		free(p->born);
	memset(p, 0, sizeof(*p));
}

int slot_pool_get(struct slot_pool *p)
{
	for (unsigned i = 0; i < p->size; i++) {
		unsigned slot = (p->next + i) % p->size;

		if (p->used[slot])
			continue;
		p->used[slot] = 1;
		p->next = (slot + 1) % p->size;
		p->born[slot] = realtime_ns();
		return (int)slot;
	}
	return -ENOSPC;
}

void slot_pool_put(struct slot_pool *p, unsigned slot)
{
	if (slot < p->size) {
		p->used[slot] = 0;
		p->born[slot] = 0;
	}
}

int slot_pool_take(struct slot_pool *p, unsigned slot)
{
	if (slot >= p->size)
		return -ERANGE;
	if (p->used[slot])
		return -EBUSY;
	p->used[slot] = 1;
	return 0;
}

double slot_pool_born(const struct slot_pool *p, int slot)
{
	if (slot < 0 || (unsigned)slot >= p->size || !p->used[slot])
		return 0;
	return (double)p->born[slot] / 1e9;
}

static unsigned long long clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

unsigned long long monotonic_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

double now_seconds(void)
{
	return monotonic_ns() / 1e9;
}

unsigned long long realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

unsigned long long boottime_ns(void)
{
	return clock_ns(CLOCK_BOOTTIME);
}

int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

void str_copy(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

int array_reserve(void **v, size_t n, size_t *cap, size_t elem)
{
	size_t c = *cap ? *cap * 2 : 16;
	void *nv;

	if (n < *cap)
		return 0;
	nv = realloc(*v, c * elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = c;
	return 0;
}

int u64_push(__u64 **v, size_t *n, size_t *cap, __u64 x)
{
	if (array_reserve((void **)v, *n, cap, sizeof(**v)))
		return -ENOMEM;
	(*v)[(*n)++] = x;
	return 0;
}

int file_stamp_of(const char *path, struct file_stamp *s)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	*s = (struct file_stamp){ st.st_dev, st.st_ino, st.st_size, st.st_mtim };
	return 0;
}

bool file_stamp_eq(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

long read_file(const char *path, char *buf, size_t size)
{
	size_t off = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (off + 1 < size) {
		n = read(fd, buf + off, size - 1 - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		off += n;
	}
	close(fd);
	buf[off] = '\0';
	return off;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_max_level = LOG_INFO;

static const char *const level_names[] = {
	[LOG_ERROR] = "error", [LOG_WARN] = "warn", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void vlog(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > log_max_level)
		return;
	fprintf(stderr, "vmprobe: %s: ", level_names[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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

int slot_pool_init(struct slot_pool *p, unsigned size)
{
	p->size = size;
	p->next = 0;
	p->used = calloc(size, 1);
	return p->used ? 0 : -ENOMEM;
}

void slot_pool_fini(struct slot_pool *p)
{
	free(p->used);
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
		return (int)slot;
	}
	return -ENOSPC;
}

void slot_pool_put(struct slot_pool *p, unsigned slot)
{
	if (slot < p->size)
		p->used[slot] = 0;
}

unsigned long long monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

double now_seconds(void)
{
	return monotonic_ns() / 1e9;
}

int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

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

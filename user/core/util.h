/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Small helpers: logging and a growable text buffer. */
#ifndef VMPROBE_UTIL_H
#define VMPROBE_UTIL_H

#include <linux/types.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
extern enum log_level log_max_level;

/*
 * How log lines look on stderr: plain "vmprobe: LEVEL: message" (the
 * journal and kubectl add time stamps), or with an RFC 3339 time stamp as
 * logfmt (ts=... level=... msg="...") or one JSON object a line.
 */
enum log_format { LOG_PLAIN, LOG_LOGFMT, LOG_JSON };
struct strbuf;
extern enum log_format log_format;
int log_format_parse(const char *s, enum log_format *out);
/* One log line of `msg` into sb (reset first), as log_format says; `ts` is CLOCK_REALTIME. */
void log_line(struct strbuf *sb, enum log_format f, enum log_level lvl,
	      const struct timespec *ts, const char *msg);

/* Length of the valid UTF-8 sequence at s, 0 if invalid. */
size_t utf8_len(const unsigned char *s);

void vlog(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same from a va_list, `prefix` first (a library's messages: "http: "...). */
void log_va(enum log_level lvl, const char *prefix, const char *fmt, va_list ap);
/* While true, every line is logged at debug level: a retry's repeated failures. */
extern bool log_demoted;
#define log_error(...) vlog(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) vlog(LOG_WARN, __VA_ARGS__)
#define log_info(...) vlog(LOG_INFO, __VA_ARGS__)
#define log_debug(...) vlog(LOG_DEBUG, __VA_ARGS__)
int log_level_parse(const char *s, enum log_level *out);

/* A NUL-terminated growable buffer; on allocation failure it latches `oom`. */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
	bool oom;
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
/* Room for `extra` more bytes (and the NUL) past len; false if out of memory. */
bool sb_reserve(struct strbuf *sb, size_t extra);
void sb_add(struct strbuf *sb, const char *s, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_putc(struct strbuf *sb, char c);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Detaches the buffer; the caller frees it. NULL after an allocation failure. */
char *sb_steal(struct strbuf *sb);

/*
 * Slots of a BPF stats array handed out round-robin, so that a freed slot
 * rests (while frames in flight may still land in it) before reuse; and
 * when each slot's counting began (its series' _created).
 */
struct slot_pool {
	unsigned size;
	unsigned next;
	unsigned char *used;
	/* per slot, CLOCK_REALTIME ns of its slot_pool_get (0: unknown) */
	__u64 *born;
	bool own_born; /* born is the pool's, not a pinned map's */
};

/*
 * `born`: size entries kept elsewhere (a pinned map, so that a slot an
 * earlier serve left keeps its time), or NULL for the pool's own.
 */
int slot_pool_init(struct slot_pool *p, unsigned size, __u64 *born);
void slot_pool_fini(struct slot_pool *p);
/* A free slot, now used and born now (its counters are zeroed by the caller), or -ENOSPC. */
int slot_pool_get(struct slot_pool *p);
void slot_pool_put(struct slot_pool *p, unsigned slot);
/* Marks `slot` used (one an earlier serve left in use, its birth kept); 0, or -EBUSY/-ERANGE. */
int slot_pool_take(struct slot_pool *p, unsigned slot);
/* When a used slot's counting began (CLOCK_REALTIME, epoch s), 0 if unknown. */
double slot_pool_born(const struct slot_pool *p, int slot);

/* Copies src (NULL: "") into dst of `size` bytes, cut to fit, NUL-terminated. */
void str_copy(char *dst, size_t size, const char *src);

/* ts (CLOCK_REALTIME) as RFC 3339 in UTC with milliseconds: 2006-01-02T15:04:05.000Z. */
void time_rfc3339(char *buf, size_t size, const struct timespec *ts);

/* CLOCK_MONOTONIC in seconds. */
double now_seconds(void);
/* CLOCK_REALTIME in ns since the epoch. */
unsigned long long realtime_ns(void);
/* CLOCK_MONOTONIC in ns, the clock of BPF's bpf_ktime_get_ns(). */
unsigned long long monotonic_ns(void);
/* CLOCK_BOOTTIME in ns: the clock of /proc/PID/stat's start times. */
unsigned long long boottime_ns(void);

/* qsort/bsearch order of ints, and of __u64s. */
int cmp_int(const void *a, const void *b);
int cmp_u64(const void *a, const void *b);

/*
 * Room for one more element of `elem` bytes in the growable array *v of
 * n elements (capacity *cap): *v may move; 0 or -ENOMEM.
 */
int array_reserve(void **v, size_t n, size_t *cap, size_t elem);

/* Appends x to the growable array *v of *n (room for *cap); 0 or -ENOMEM. */
int u64_push(__u64 **v, size_t *n, size_t *cap, __u64 x);

/* Reads a whole (small, e.g. /proc) file; returns bytes read or -errno. */
long read_file(const char *path, char *buf, size_t size);

/* What a file was when it was read: a change of any of these means it changed. */
struct file_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* The stamp of the file at path now; 0 or -errno. */
int file_stamp_of(const char *path, struct file_stamp *s);
bool file_stamp_eq(const struct file_stamp *a, const struct file_stamp *b);

#endif

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A user-space delay line between two tap devices, for end-to-end tests
 * that need a known network delay on a kernel without netem:
 *
 *   delayline [-d MS] [-q FRAMES] [--netns NAME] [--drop-port PORT]
 *             [--drop-tcp-data-from-a N] [--drop-tcp-data-from-b N] TAP_A TAP_B
 *
 * Every frame read from TAP_A is written to TAP_B D ms later (-d, default
 * 20), and the other way round, in order. TAP_A is opened in the current
 * network namespace, TAP_B in NAME (/var/run/netns/NAME, or a path such as
 * /proc/PID/ns/net) with --netns. A tap that does not exist is created and
 * goes away with the delay line; an existing one (`ip tuntap add`) stays.
 *
 * Each direction queues at most -q frames (default 4096); a frame that finds
 * its queue full is dropped and counted as overflow.
 * --drop-tcp-data-from-a N drops the N-th TCP segment carrying payload that
 * goes A->B (IPv4 or IPv6, up to two VLAN tags), once; -b likewise B->A.
 * With --drop-port only segments from or to PORT count. Each deliberate drop
 * is described on stderr.
 *
 * Prints "delayline: ready ..." on stdout once both taps are open; SIGUSR1
 * prints the counters, SIGINT/SIGTERM print them and exit 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/tapdev.h"

/*
 * One frame at MTU 1500 with VLAN tags. Taps opened without a vnet header
 * never carry GSO frames: the kernel segments them before they reach us.
 */
#define SLOT_BYTES 2048
/* Frames read per direction per wake-up, so one side cannot starve the other. */
#define READ_BATCH 64

struct slot {
	struct timespec due;
	unsigned int len;
	unsigned char data[SLOT_BYTES];
};

struct dir {
	const char *name; /* "A->B" */
	int in, out;
	struct slot *ring;
	unsigned int head, count;
	bool blocked; /* the last write got EAGAIN: wait for POLLOUT */
	unsigned long long drop_nth, tcp_data;
	unsigned long long forwarded, overflow, on_purpose, oversize, write_errors;
};

static volatile sig_atomic_t stop, dump;
static unsigned int queue_cap = 4096;
static unsigned int drop_port;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		dump = 1;
	else
		stop = 1;
}

static void ts_add_ms(struct timespec *t, unsigned int ms)
{
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* a - b in nanoseconds */
static long long ts_diff_ns(const struct timespec *a, const struct timespec *b)
{
	return (a->tv_sec - b->tv_sec) * 1000000000LL + (a->tv_nsec - b->tv_nsec);
}

static __u16 get16(const unsigned char *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static __u32 get32(const unsigned char *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

/*
 * If the frame is a TCP segment carrying payload, fills in a description and
 * returns true. Minimal parsing: no IPv6 extension headers, no IPv4
 * fragments after the first.
 */
static bool tcp_data_segment(const unsigned char *f, unsigned int len, unsigned int *sport,
			     unsigned int *dport, char *desc, size_t desc_len)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	unsigned int off = 12, l3, l4, ip_end;
	__u16 proto;
	int tags;

	if (len < 14)
		return false;
	proto = get16(f + off);
	for (tags = 0; tags < 2 && (proto == 0x8100 || proto == 0x88a8); tags++) {
		off += 4;
		if (len < off + 2)
			return false;
		proto = get16(f + off);
	}
	l3 = off + 2;
	if (proto == 0x0800) {
		if (len < l3 + 20 || (f[l3] >> 4) != 4 || f[l3 + 9] != 6 ||
		    (get16(f + l3 + 6) & 0x1fff))
			return false;
		l4 = l3 + (f[l3] & 0x0f) * 4;
		ip_end = l3 + get16(f + l3 + 2);
		inet_ntop(AF_INET, f + l3 + 12, src, sizeof(src));
		inet_ntop(AF_INET, f + l3 + 16, dst, sizeof(dst));
	} else if (proto == 0x86dd) {
		if (len < l3 + 40 || f[l3 + 6] != 6)
			return false;
		l4 = l3 + 40;
		ip_end = l4 + get16(f + l3 + 4);
		inet_ntop(AF_INET6, f + l3 + 8, src, sizeof(src));
		inet_ntop(AF_INET6, f + l3 + 24, dst, sizeof(dst));
	} else {
		return false;
	}
	/* ip_end may be below len: Ethernet pads short frames. */
	if (ip_end > len || l4 + 20 > ip_end || l4 + (f[l4 + 12] >> 4) * 4u >= ip_end)
		return false;
	*sport = get16(f + l4);
	*dport = get16(f + l4 + 2);
	snprintf(desc, desc_len, "TCP %s:%u > %s:%u seq=%u len=%u", src, *sport, dst, *dport,
		 get32(f + l4 + 4), ip_end - l4 - (f[l4 + 12] >> 4) * 4u);
	return true;
}

/* Whether the frame is the one segment to drop on purpose in this direction. */
static bool drop_on_purpose(struct dir *d, const unsigned char *f, unsigned int len)
{
	unsigned int sport, dport;
	char desc[160];

	if (!d->drop_nth || !tcp_data_segment(f, len, &sport, &dport, desc, sizeof(desc)))
		return false;
	if (drop_port && sport != drop_port && dport != drop_port)
		return false;
	if (++d->tcp_data != d->drop_nth)
		return false;
	fprintf(stderr, "delayline: dropped %s %s (data segment %llu)\n", d->name, desc,
		d->tcp_data);
	return true;
}

/* Reads what is waiting on d->in (up to a batch) into the queue. */
static int receive(struct dir *d, unsigned int delay_ms)
{
	static unsigned char scratch[65536];

	for (int i = 0; i < READ_BATCH; i++) {
		bool full = d->count == queue_cap;
		struct slot *s = &d->ring[(d->head + d->count) % queue_cap];
		struct iovec iov[2] = {
			{ .iov_base = s->data, .iov_len = SLOT_BYTES },
			{ .iov_base = scratch, .iov_len = sizeof(scratch) },
		};
		ssize_t n;

		/* A full queue still drains the tap: the frame lands in scratch. */
		n = full ? read(d->in, scratch, sizeof(scratch)) : readv(d->in, iov, 2);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			fprintf(stderr, "delayline: read %s: %s\n", d->name, strerror(errno));
			return -errno;
		}
		if (full) {
			d->overflow++;
			continue;
		}
		if (n > SLOT_BYTES) {
			d->oversize++;
			continue;
		}
		if (drop_on_purpose(d, s->data, n)) {
			d->on_purpose++;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &s->due);
		ts_add_ms(&s->due, delay_ms);
		s->len = n;
		d->count++;
	}
	return 0;
}

/* Writes every frame whose time has come, in order, until EAGAIN. */
static void transmit(struct dir *d, const struct timespec *now)
{
	while (d->count) {
		struct slot *s = &d->ring[d->head];
		ssize_t n;

		if (ts_diff_ns(&s->due, now) > 0)
			break;
		/* A tap takes a frame whole or not at all: no partial writes. */
		n = write(d->out, s->data, s->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			d->blocked = true;
			return;
		}
		if (n == (ssize_t)s->len)
			d->forwarded++;
		else
			d->write_errors++;
		d->head = (d->head + 1) % queue_cap;
		d->count--;
	}
	d->blocked = false;
}

static void print_counters(const struct dir *dirs)
{
	for (int i = 0; i < 2; i++)
		printf("delayline: %s forwarded=%llu dropped_on_purpose=%llu overflow=%llu "
		       "oversize=%llu write_errors=%llu queued=%u\n",
		       dirs[i].name, dirs[i].forwarded, dirs[i].on_purpose, dirs[i].overflow,
		       dirs[i].oversize, dirs[i].write_errors, dirs[i].count);
	fflush(stdout);
}

/* Opens tap `name` inside network namespace `netns` (NULL: the current one). */
static int open_tap(const char *name, const char *netns)
{
	char path[PATH_MAX];
	int self = -1, target = -1, fd;

	if (!netns)
		return tapdev_open(name);
	snprintf(path, sizeof(path), strchr(netns, '/') ? "%s" : "/var/run/netns/%s", netns);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0) {
		fd = -errno;
		goto cleanup;
	}
	if (setns(target, CLONE_NEWNET)) {
		fd = -errno;
		goto cleanup;
	}
	/* The tap stays in the namespace it was opened in. */
	fd = tapdev_open(name);
	if (setns(self, CLONE_NEWNET)) {
		fprintf(stderr, "delayline: cannot return to the original netns: %s\n",
			strerror(errno));
		exit(1);
	}
cleanup:
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return fd;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: delayline [-d MS] [-q FRAMES] [--netns NAME] [--drop-port PORT]\n"
		     "                 [--drop-tcp-data-from-a N] [--drop-tcp-data-from-b N] "
		     "TAP_A TAP_B\n");
}

static unsigned long long parse_num(const char *arg, const char *what, unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || !*arg || *end || v > max) {
		fprintf(stderr, "delayline: bad %s: %s\n", what, arg);
		exit(2);
	}
	return v;
}

/* Sets what ppoll waits for, and for how long: the first due frame of either way. */
static struct timespec *poll_setup(struct dir dirs[2], struct pollfd pfd[2], struct timespec *timeout)
{
	struct timespec now;
	long long wait_ns = -1;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (int i = 0; i < 2; i++) {
		struct dir *d = &dirs[i];

		if (!d->blocked)
			transmit(d, &now);
		/* dirs[i] reads pfd[i] and writes pfd[1 - i]. */
		pfd[i].events |= POLLIN;
		if (d->blocked) {
			pfd[1 - i].events |= POLLOUT;
		} else if (d->count) {
			long long ns = ts_diff_ns(&d->ring[d->head].due, &now);

			if (wait_ns < 0 || ns < wait_ns)
				wait_ns = ns;
		}
	}
	if (wait_ns < 0)
		return NULL;
	timeout->tv_sec = wait_ns / 1000000000LL;
	timeout->tv_nsec = wait_ns % 1000000000LL;
	return timeout;
}

/* Forwards until a signal stops it; 0, or 1 on an error. */
static int forward(struct dir dirs[2], int fa, int fb, unsigned int delay_ms,
		   const sigset_t *waitmask)
{
	while (!stop) {
		struct pollfd pfd[2] = { { .fd = fa }, { .fd = fb } };
		struct timespec timeout, *tp = poll_setup(dirs, pfd, &timeout);

		if (ppoll(pfd, 2, tp, waitmask) < 0) {
			if (errno != EINTR) {
				perror("delayline: ppoll");
				return 1;
			}
			if (dump) {
				dump = 0;
				print_counters(dirs);
			}
			continue;
		}
		for (int i = 0; i < 2; i++) {
			if (pfd[1 - i].revents & POLLOUT)
				dirs[i].blocked = false;
			if ((pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) &&
			    receive(&dirs[i], delay_ms) < 0)
				return 1;
		}
	}
	return 0;
}

/* Opens both taps non-blocking, and the rings; 0 or 1 (said on stderr). */
static int setup(struct dir dirs[2], const char *a, const char *b, const char *netns)
{
	int fa = tapdev_open(a), fb;

	if (fa < 0) {
		fprintf(stderr, "delayline: cannot open tap %s: %s (root? /dev/net/tun?)\n", a,
			strerror(-fa));
		return 1;
	}
	fb = open_tap(b, netns);
	if (fb < 0) {
		fprintf(stderr, "delayline: cannot open tap %s%s%s: %s\n", b,
			netns ? " in netns " : "", netns ? netns : "", strerror(-fb));
		return 1;
	}
	if (fcntl(fa, F_SETFL, O_NONBLOCK) || fcntl(fb, F_SETFL, O_NONBLOCK)) {
		perror("delayline: fcntl");
		return 1;
	}
	dirs[0].in = dirs[1].out = fa;
	dirs[0].out = dirs[1].in = fb;
	for (int i = 0; i < 2; i++) {
		dirs[i].ring = calloc(queue_cap, sizeof(struct slot));
		if (!dirs[i].ring) {
			fprintf(stderr, "delayline: no memory for %u frames\n", queue_cap);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "delay", required_argument, NULL, 'd' },
		{ "queue", required_argument, NULL, 'q' },
		{ "netns", required_argument, NULL, 'n' },
		{ "drop-port", required_argument, NULL, 'p' },
		{ "drop-tcp-data-from-a", required_argument, NULL, 'a' },
		{ "drop-tcp-data-from-b", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct dir dirs[2] = { { .name = "A->B" }, { .name = "B->A" } };
	unsigned int delay_ms = 20;
	const char *netns = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, waitmask;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "d:q:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': delay_ms = parse_num(optarg, "delay", 600000); break;
		case 'q': queue_cap = parse_num(optarg, "queue length", 1 << 20); break;
		case 'n': netns = optarg; break;
		case 'p': drop_port = parse_num(optarg, "port", 65535); break;
		case 'a': dirs[0].drop_nth = parse_num(optarg, "segment number", ULLONG_MAX); break;
		case 'b': dirs[1].drop_nth = parse_num(optarg, "segment number", ULLONG_MAX); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2 || queue_cap == 0) {
		usage(stderr);
		return 2;
	}
	if (setup(dirs, argv[optind], argv[optind + 1], netns))
		return 1;
	/* Signals are blocked except inside ppoll, so none is lost between checks. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	printf("delayline: ready A=%s B=%s%s%s delay_ms=%u queue=%u\n", argv[optind],
	       argv[optind + 1], netns ? " netns=" : "", netns ? netns : "", delay_ms, queue_cap);
	fflush(stdout);
	rc = forward(dirs, dirs[0].in, dirs[0].out, delay_ms, &waitmask);
	print_counters(dirs);
	return rc;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * bench/syscall.sh's process that is not a VM: how many syscalls a second
 * it makes, per kind, or (floor) the empty tracepoint programs of
 * bench/floor.bpf.c attached until SIGINT/SIGTERM.
 *
 *   syscall_loop run SECONDS FILE   one line "KIND CALLS_PER_SECOND" per kind, and
 *                                   "pipe_switch ROUND_TRIPS_PER_SECOND": a byte to and
 *                                   fro between two processes on one CPU, two context
 *                                   switches and wakeups each (the vCPU probe's hooks)
 *   syscall_loop floor OBJECT       attaches, prints "ready", waits
 */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum kind { GETPPID, PREAD_ZERO, PWRITE_NULL, PREAD_FILE, PWRITE_FILE };

static const struct {
	const char *name;
	const char *dev; /* NULL: the FILE argument */
	int flags;
} kinds[] = {
	[GETPPID] = { "getppid", NULL, -1 }, /* the control: no hook of vmprobe */
	[PREAD_ZERO] = { "pread_zero", "/dev/zero", O_RDONLY },
	[PWRITE_NULL] = { "pwrite_null", "/dev/null", O_WRONLY },
	[PREAD_FILE] = { "pread_file", NULL, O_RDONLY },
	[PWRITE_FILE] = { "pwrite_file", NULL, O_WRONLY },
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Calls per second of one kind, over about `secs` seconds. */
static double rate(enum kind k, int fd, double secs)
{
	char buf[64] = { 0 };
	double start = now(), t;
	long n = 0;

	do {
		/* Batches of 1000 between clock reads keep the clock out of it. */
		for (int i = 0; i < 1000; i++) {
			long r;

			switch (k) {
			case GETPPID:
				r = syscall(SYS_getppid);
				break;
			case PREAD_ZERO:
			case PREAD_FILE:
				r = pread(fd, buf, sizeof(buf), 0);
				break;
			default:
				r = pwrite(fd, buf, sizeof(buf), 0);
			}
			if (r < 0) {
				fprintf(stderr, "syscall_loop: %s: %s\n", kinds[k].name, strerror(errno));
				exit(1);
			}
		}
		n += 1000;
		t = now() - start;
	} while (t < secs);
	return n / t;
}

/* Round trips a second of a byte between this process and a child, both on CPU 0. */
static double switch_rate(double secs)
{
	int to[2], back[2];
	double start, t;
	cpu_set_t cpu;
	long n = 0;
	char c = 0;
	pid_t child;

	CPU_ZERO(&cpu);
	CPU_SET(0, &cpu);
	if (pipe(to) || pipe(back) || sched_setaffinity(0, sizeof(cpu), &cpu)) {
		fprintf(stderr, "syscall_loop: pipe_switch: %s\n", strerror(errno));
		exit(1);
	}
	child = fork();
	if (child == 0) {
		close(to[1]);
		close(back[0]);
		while (read(to[0], &c, 1) == 1 && write(back[1], &c, 1) == 1)
			;
		_exit(0);
	}
	close(to[0]);
	close(back[1]);
	start = now();
	do {
		for (int i = 0; i < 1000; i++)
			if (write(to[1], &c, 1) != 1 || read(back[0], &c, 1) != 1) {
				fprintf(stderr, "syscall_loop: pipe_switch: %s\n", strerror(errno));
				exit(1);
			}
		n += 1000;
		t = now() - start;
	} while (t < secs);
	close(to[1]); /* the child reads EOF and exits */
	waitpid(child, NULL, 0);
	close(back[0]);
	return n / t;
}

static int run(double secs, const char *file)
{
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		const char *path = kinds[k].dev ? kinds[k].dev : file;
		int fd = kinds[k].flags < 0 ? -1 : open(path, kinds[k].flags);

		if (kinds[k].flags >= 0 && fd < 0) {
			fprintf(stderr, "syscall_loop: %s: %s\n", path, strerror(errno));
			return 1;
		}
		printf("%s %.0f\n", kinds[k].name, rate(k, fd, secs));
		if (fd >= 0)
			close(fd);
	}
	printf("pipe_switch %.0f\n", switch_rate(secs));
	return 0;
}

static void quit(int sig)
{
}

static int floor_attach(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *prog;

	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "syscall_loop: loading %s failed\n", path);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__attach(prog)) {
			fprintf(stderr, "syscall_loop: attaching %s failed: %s\n",
				bpf_program__name(prog), strerror(errno));
			return 1;
		}
	}
	signal(SIGINT, quit);
	signal(SIGTERM, quit);
	printf("ready\n");
	fflush(stdout);
	pause();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "run"))
		return run(atof(argv[2]), argv[3]);
	if (argc == 3 && !strcmp(argv[1], "floor"))
		return floor_attach(argv[2]);
	fprintf(stderr, "usage: syscall_loop run SECONDS FILE | syscall_loop floor OBJECT\n");
	return 2;
}

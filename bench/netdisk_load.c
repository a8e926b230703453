// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A client of librbd or libiscsi doing what QEMU's drivers do for one
 * 4 KiB read: rbd_aio_create_completion, rbd_aio_readv, wait,
 * rbd_aio_get_return_value, rbd_aio_release; or a libiscsi READ16 (through
 * iscsi_scsi_command_async) and scsi_free_scsi_task. Started under the name
 * qemu-system-x86_64 with a QEMU command line naming the drive, vmprobe
 * takes it for a VM and hooks it; under another name it is any other
 * process on the host. bench/netdisk.sh runs one of each side by side.
 *
 * Usage: netdisk_load [QEMU ARGS...]; the environment says what to reach:
 *   LOAD_KIND=rbd  LOAD_CONF=ceph.conf LOAD_POOL=P LOAD_IMAGE=I
 *     [LOAD_IOVS=N: each read is N iovs of 4 KiB, as a guest's request of
 *     scattered pages reaches QEMU; default 1]
 *   LOAD_KIND=iscsi LOAD_PORTAL=HOST:PORT LOAD_TARGET=IQN LOAD_LUN=N
 *   LOAD_KIND=call: calls netdisk_load_noop(), where the bench hangs a bare
 *   uprobe, to measure what a uprobe hit itself costs on this machine
 * Commands on stdin: "run SECS" runs reads for SECS seconds and prints
 * "LAT <mean latency in ns> <reads>"; "fail N" makes N reads past the end
 * of the image or LUN, each of which the library or target fails, and
 * prints "FAILED N"; end of input exits.
 * The libraries are loaded with dlopen, so nothing here needs their headers.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#define READ_SIZE 4096
#define SPAN (8 << 20) /* reads walk the first 8 MiB */
#define PAST_END (1ULL << 40) /* 1 TiB: past the end of any test image or LUN */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Exit status: 1 a library or target failed, 2 a usage error. */
static void __attribute__((noreturn, format(printf, 2, 3))) die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("netdisk_load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(status);
}

static void *lib_open(const char *name)
{
	void *lib = dlopen(name, RTLD_NOW);

	if (!lib)
		die(1, "%s", dlerror());
	return lib;
}

static void *sym(void *lib, const char *name)
{
	void *p = dlsym(lib, name);

	if (!p)
		die(1, "%s: %s", name, dlerror());
	return p;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v)
		die(2, "%s is not set", name);
	return v;
}

/* librbd, as QEMU's block/rbd.c calls it. */
static struct {
	void *image;
	struct iovec *iov;
	int nr_iov;
	int (*create_completion)(void *, void *, void **);
	int (*readv)(void *, const struct iovec *, int, uint64_t, void *);
	int (*wait)(void *);
	long (*ret)(void *);
	void (*release)(void *);
} rbd;

static void rbd_setup(void)
{
	void *rados = lib_open("librados.so.2"), *lib = lib_open("librbd.so.1");
	int (*create)(void **, const char *) = sym(rados, "rados_create");
	int (*read_conf)(void *, const char *) = sym(rados, "rados_conf_read_file");
	int (*connect)(void *) = sym(rados, "rados_connect");
	int (*ioctx_create)(void *, const char *, void **) = sym(rados, "rados_ioctx_create");
	int (*open)(void *, const char *, void **, const char *) = sym(lib, "rbd_open");
	void *cluster, *ioctx;

	rbd.create_completion = sym(lib, "rbd_aio_create_completion");
	rbd.readv = sym(lib, "rbd_aio_readv");
	rbd.wait = sym(lib, "rbd_aio_wait_for_complete");
	rbd.ret = sym(lib, "rbd_aio_get_return_value");
	rbd.release = sym(lib, "rbd_aio_release");
	rbd.nr_iov = getenv("LOAD_IOVS") ? atoi(getenv("LOAD_IOVS")) : 1;
	if (rbd.nr_iov < 1 || rbd.nr_iov > 1024)
		die(2, "LOAD_IOVS is 1 to 1024");
	rbd.iov = calloc((size_t)rbd.nr_iov, sizeof(*rbd.iov));
	for (int i = 0; rbd.iov && i < rbd.nr_iov; i++)
		rbd.iov[i] = (struct iovec){ malloc(READ_SIZE), READ_SIZE };
	if (!rbd.iov)
		die(1, "out of memory");
	if (create(&cluster, NULL) || read_conf(cluster, env("LOAD_CONF")) || connect(cluster) ||
	    ioctx_create(cluster, env("LOAD_POOL"), &ioctx) ||
	    open(ioctx, env("LOAD_IMAGE"), &rbd.image, NULL))
		die(1, "cannot open the rbd image");
}

/* A read: 0 done, -1 failed at completion (or with a SCSI status), -2 not sent. */
static int rbd_read(uint64_t off, char *buf)
{
	void *c;

	if (rbd.create_completion(NULL, NULL, &c))
		return -2;
	if (rbd.readv(rbd.image, rbd.iov, rbd.nr_iov, off, c)) {
		rbd.release(c);
		return -2;
	}
	rbd.wait(c);
	if (rbd.ret(c) != (long)rbd.nr_iov * READ_SIZE) {
		rbd.release(c);
		return -1;
	}
	rbd.release(c);
	return 0;
}

/* libiscsi: a synchronous READ16 goes through iscsi_scsi_command_async. */
static struct {
	void *ctx;
	int lun;
	void *(*read16)(void *, int, uint64_t, uint32_t, int, int, int, int, int, int);
	void (*free_task)(void *);
} isc;

static void iscsi_setup(void)
{
	void *lib = lib_open("libiscsi.so.7");
	void *(*create)(const char *) = sym(lib, "iscsi_create_context");
	int (*set_target)(void *, const char *) = sym(lib, "iscsi_set_targetname");
	int (*set_type)(void *, int) = sym(lib, "iscsi_set_session_type");
	int (*connect)(void *, const char *, int) = sym(lib, "iscsi_full_connect_sync");

	isc.read16 = sym(lib, "iscsi_read16_sync");
	isc.free_task = sym(lib, "scsi_free_scsi_task");
	isc.lun = atoi(env("LOAD_LUN"));
	isc.ctx = create("iqn.2024-01.org.vmprobe:bench");
	/* ISCSI_SESSION_NORMAL is 2 in libiscsi's enum. */
	if (!isc.ctx || set_target(isc.ctx, env("LOAD_TARGET")) || set_type(isc.ctx, 2) ||
	    connect(isc.ctx, env("LOAD_PORTAL"), isc.lun))
		die(1, "cannot log in to the iSCSI target");
}

static int iscsi_read(uint64_t off, char *buf)
{
	void *task = isc.read16(isc.ctx, isc.lun, off / 512, READ_SIZE, 512, 0, 0, 0, 0, 0);
	int status;

	if (!task)
		return -2;
	memcpy(&status, task, sizeof(status)); /* struct scsi_task starts with its status */
	isc.free_task(task);
	return status == 0 ? 0 : -1;
}

/* Exported and not inlined: a uprobe's target (LOAD_KIND=call). */
__attribute__((noinline, used, visibility("default"))) int netdisk_load_noop(uint64_t off)
{
	__asm__ volatile("" ::: "memory");
	return (int)(off & 0);
}

static int call_one(uint64_t off, char *buf)
{
	return netdisk_load_noop(off);
}

int main(int argc, char **argv)
{
	static char buf[READ_SIZE];
	int (*read_one)(uint64_t, char *);
	char line[64];
	uint64_t off = 0;

	if (!strcmp(env("LOAD_KIND"), "rbd")) {
		rbd_setup();
		read_one = rbd_read;
	} else if (!strcmp(env("LOAD_KIND"), "call")) {
		read_one = call_one;
	} else {
		iscsi_setup();
		read_one = iscsi_read;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("READY\n");
	while (fgets(line, sizeof(line), stdin)) {
		double secs = 0, t0, end;
		unsigned long n = 0;

		if (sscanf(line, "fail %lu", &n) == 1) {
			/* Each sent, and failed by its completion or status. */
			for (unsigned long i = 0; i < n; i++)
				if (read_one(PAST_END, buf) != -1)
					die(1, "a read past the end was not sent and failed");
			printf("FAILED %lu\n", n);
			continue;
		}
		if (sscanf(line, "run %lf", &secs) != 1)
			continue;
		t0 = now_ns();
		end = t0 + secs * 1e9;
		do {
			if (read_one(off, buf))
				die(1, "a read failed");
			off = (off + READ_SIZE) % SPAN;
			n++;
		} while (now_ns() < end);
		printf("LAT %.0f %lu\n", (now_ns() - t0) / n, n);
	}
	return 0;
}

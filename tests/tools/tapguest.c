// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A stand-in guest for integration tests. Run through a symlink named
 * qemu-system-x86_64 with a QEMU-style command line, it looks like a VM
 * to vmprobe's discovery and holds its taps as QEMU does:
 *
 *   qemu-system-x86_64 -name guest=NAME -uuid U -netdev tap,id=n0,ifname=TAP ...
 *
 * It holds each `-drive file=` image open (O_RDWR) as QEMU does, so that
 * discovery finds the drive's fd (bench/disk.sh: a VM with drives in every
 * AIO mode, for the cost of every disk source on). On SIGUSR2 it reads
 * TAPGUEST_READS (default 8) blocks of 4 KiB from each drive's fd with
 * pread(2), as aio=threads does (with TAPGUEST_AIO=1, each drive the
 * way its aio= says: io_uring through an io_uring ring, native through
 * Linux AIO on an O_DIRECT fd, as QEMU's drivers do); or, with
 * TAPGUEST_OPS set, does the requests it lists on each drive (below), with
 * syscalls for an aio=threads drive and through an io_uring for an
 * aio=io_uring one, and prints "ops N" (requests done, failed ones
 * included). On SIGHUP it reopens each image under a new fd number and
 * puts /dev/zero under the old one, as a reopen may reuse it.
 * It drains every frame delivered to the guest and, on SIGUSR1, writes
 * the frames listed in TAPGUEST_BURST ("COUNT:SIZE,...") into each tap,
 * as a guest transmitting. With TAPGUEST_PASS_FD=1 it re-executes itself
 * with `fd=N` in place of `ifname=`, as libvirt passes taps; with
 * TAPGUEST_RUN_AS=UID:GID too, as that user, as libvirt runs QEMU
 * (libvirt-qemu) on taps it opened as root. With -name ...,debug-threads=on
 * it runs a thread QEMU's way named "CPU 0/TCG" that wakes every 10 ms:
 * a vCPU thread for the vCPU probe. With -qmp unix:PATH,server=on it
 * listens on that unix socket, and with -vnc HOST:N on TCP port 5900+N,
 * as QEMU's monitor and VNC server do (no protocol behind either).
 *
 *   tapguest inject IFNAME COUNT SIZE
 * sends COUNT frames of SIZE bytes out of IFNAME (towards the guest);
 *   tapguest syn IFNAME COUNT
 * sends COUNT TCP SYNs to the guest, each from a source port of its own:
 * COUNT connections being opened.
 */
#define _GNU_SOURCE /* O_DIRECT, fallocate */
#include <errno.h>
#include <grp.h>
#include <linux/aio_abi.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "core/qemu.h"
#include "core/tapdev.h"
#include "../lib/pktgen.h"

static volatile sig_atomic_t burst_requested, reads_requested, reuse_requested;

static void on_usr1(int sig)
{
	burst_requested = 1;
}

static void on_usr2(int sig)
{
	reads_requested = 1;
}

static void on_hup(int sig)
{
	reuse_requested = 1;
}

/* An IORING_OP_READ through a ring of its own; its result (bytes or -errno). */
static int uring_read(int fd, void *buf, unsigned len, off_t off)
{
	static struct io_uring ring;
	static bool ready;
	struct io_uring_cqe *cqe;
	int res, err;

	if (!ready && (err = io_uring_queue_init(4, &ring, 0)))
		return err;
	ready = true;
	io_uring_prep_read(io_uring_get_sqe(&ring), fd, buf, len, off);
	if (io_uring_submit(&ring) != 1 || (err = io_uring_wait_cqe(&ring, &cqe)))
		return -EIO;
	res = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	return res;
}

/* An IOCB_CMD_PREAD through Linux AIO (io_submit, io_getevents). */
static long aio_read(int fd, void *buf, unsigned len, off_t off)
{
	static aio_context_t ctx;
	struct iocb cb = { .aio_fildes = (__u32)fd, .aio_lio_opcode = IOCB_CMD_PREAD,
			   .aio_buf = (unsigned long)buf, .aio_nbytes = len,
			   .aio_offset = off };
	struct iocb *cbs[1] = { &cb };
	struct io_event ev;

	if (!ctx && syscall(__NR_io_setup, 4, &ctx) < 0)
		return -errno;
	if (syscall(__NR_io_submit, ctx, 1, cbs) != 1 ||
	    syscall(__NR_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
		return -errno;
	return (long)ev.res;
}

enum read_way { READ_PREAD, READ_URING, READ_AIO };

/* Reads from each drive fd; prints "read N" (blocks read in all). */
static void drive_reads(const int *fds, const enum read_way *way, int nr)
{
	const char *env = getenv("TAPGUEST_READS");
	int count = env ? atoi(env) : 8, done = 0;
	static char block[4096] __attribute__((aligned(4096)));

	for (int i = 0; i < nr; i++)
		for (int k = 0; k < count; k++) {
			off_t off = (off_t)k * sizeof(block);
			long got;

			if (way[i] == READ_URING)
				got = uring_read(fds[i], block, sizeof(block), off);
			else if (way[i] == READ_AIO)
				got = aio_read(fds[i], block, sizeof(block), off);
			else
				got = pread(fds[i], block, sizeof(block), off);
			if (got == (long)sizeof(block))
				done++;
		}
	printf("read %d\n", done);
	fflush(stdout);
}

/*
 * TAPGUEST_OPS: "NAME[:COUNT],..." done in order on each drive, 4 KiB at
 * offsets 0, 4096, ...:
 *   read write readv writev (two iovecs, 8 KiB) flush (fdatasync)
 *   punch (PUNCH_HOLE|KEEP_SIZE) zero (ZERO_RANGE) prealloc (mode 0)
 *   keepsize (KEEP_SIZE alone), and requests the kernel fails (EINVAL):
 *   badread badwrite badreadv badwritev (offset -4096), badpunch (length 0).
 */
enum op_kind { K_READ, K_WRITE, K_READV, K_WRITEV, K_FLUSH, K_FALLOC };

struct op_def {
	const char *name;
	enum op_kind kind;
	int mode; /* fallocate */
	bool bad;
};

static const struct op_def op_defs[] = {
	{ "read", K_READ, 0, false }, { "write", K_WRITE, 0, false },
	{ "readv", K_READV, 0, false }, { "writev", K_WRITEV, 0, false },
	{ "flush", K_FLUSH, 0, false },
	{ "punch", K_FALLOC, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, false },
	{ "zero", K_FALLOC, FALLOC_FL_ZERO_RANGE, false }, { "prealloc", K_FALLOC, 0, false },
	{ "keepsize", K_FALLOC, FALLOC_FL_KEEP_SIZE, false },
	{ "badread", K_READ, 0, true }, { "badwrite", K_WRITE, 0, true },
	{ "badreadv", K_READV, 0, true }, { "badwritev", K_WRITEV, 0, true },
	{ "badpunch", K_FALLOC, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, true },
};

/* One request by syscall, as QEMU's worker threads make them. */
static void op_syscall(int fd, const struct op_def *d, off_t off, char *buf)
{
	struct iovec iov[2] = { { buf, 4096 }, { buf + 4096, 4096 } };

	if (d->bad && d->kind != K_FALLOC)
		off = -4096;
	switch (d->kind) {
	case K_READ: (void)!pread(fd, buf, 4096, off); break;
	case K_WRITE: (void)!pwrite(fd, buf, 4096, off); break;
	case K_READV: (void)!preadv(fd, iov, 2, off); break;
	case K_WRITEV: (void)!pwritev(fd, iov, 2, off); break;
	case K_FLUSH: fdatasync(fd); break;
	case K_FALLOC: (void)!fallocate(fd, d->mode, off, d->bad ? 0 : 4096); break;
	}
}

/* One request through an io_uring, submitted and reaped, as QEMU's aio=io_uring does. */
static void op_uring(struct io_uring *ring, int fd, const struct op_def *d, off_t off, char *buf)
{
	static struct iovec iov[2];
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;

	iov[0] = (struct iovec){ buf, 4096 };
	iov[1] = (struct iovec){ buf + 4096, 4096 };
	if (d->bad && d->kind != K_FALLOC)
		off = -4096;
	switch (d->kind) {
	case K_READ: io_uring_prep_read(sqe, fd, buf, 4096, off); break;
	case K_WRITE: io_uring_prep_write(sqe, fd, buf, 4096, off); break;
	case K_READV: io_uring_prep_readv(sqe, fd, iov, 2, off); break;
	case K_WRITEV: io_uring_prep_writev(sqe, fd, iov, 2, off); break;
	case K_FLUSH: io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); break;
	case K_FALLOC: io_uring_prep_fallocate(sqe, fd, d->mode, off, d->bad ? 0 : 4096); break;
	}
	if (io_uring_submit(ring) == 1 && io_uring_wait_cqe(ring, &cqe) == 0)
		io_uring_cqe_seen(ring, cqe);
}

static int drive_ops(const char *spec, const int *fds, const bool *uring, int nr)
{
	static char buf[8192];
	struct io_uring ring;
	int done = 0, err = io_uring_queue_init(8, &ring, 0);

	if (err) {
		fprintf(stderr, "tapguest: io_uring: %s\n", strerror(-err));
		return -1;
	}
	for (int i = 0; i < nr; i++) {
		off_t off = 0;

		for (const char *p = spec; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
			size_t len = strcspn(p, ":,");
			int count = p[len] == ':' ? atoi(p + len + 1) : 1;
			const struct op_def *d = NULL;

			for (size_t k = 0; k < sizeof(op_defs) / sizeof(op_defs[0]); k++)
				if (strlen(op_defs[k].name) == len && !strncmp(p, op_defs[k].name, len))
					d = &op_defs[k];
			if (!d) {
				fprintf(stderr, "tapguest: unknown op in TAPGUEST_OPS: %.*s\n",
					(int)len, p);
				io_uring_queue_exit(&ring);
				return -1;
			}
			for (int k = 0; k < count; k++, off += 4096, done++)
				if (uring[i])
					op_uring(&ring, fds[i], d, off, buf);
				else
					op_syscall(fds[i], d, off, buf);
		}
	}
	io_uring_queue_exit(&ring);
	return done;
}

/*
 * Each image reopened under a new fd number (kept open: the drive is
 * still there, as after QEMU's reopen), the old numbers now on /dev/zero;
 * prints "reused N".
 */
static void drive_reuse(const int *fds, int nr)
{
	char self[64];
	int done = 0;

	for (int i = 0; i < nr; i++) {
		int other = open("/dev/zero", O_RDONLY);

		snprintf(self, sizeof(self), "/proc/self/fd/%d", fds[i]);
		if (open(self, O_RDONLY | O_CLOEXEC) >= 0 && other >= 0 &&
		    dup2(other, fds[i]) == fds[i])
			done++;
		if (other >= 0)
			close(other);
	}
	printf("reused %d\n", done);
	fflush(stdout);
}

static void fill_frame(unsigned char *f, size_t size, const unsigned char *src)
{
	static const unsigned char dst[6] = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01 };

	pktgen_eth_frame(f, size, dst, src, PKTGEN_ETH_P_LOCAL);
}

/* A TCP SYN from 10.0.0.1:sport to the guest's 10.0.0.2:80; its length. */
static int syn_frame(unsigned char *frame, size_t cap, unsigned sport)
{
	static const unsigned char mac[6] = { 0x02, 0x00, 0x5e, 0x20, 0x00, 0x01 },
				   peer[6] = { 0x02, 0x00, 0x5e, 0x20, 0x00, 0x02 },
				   src[4] = { 10, 0, 0, 1 }, dst[4] = { 10, 0, 0, 2 };
	struct pktgen pg;

	pktgen_init(&pg, frame, cap);
	pktgen_eth(&pg, mac, peer);
	pktgen_ipv4(&pg, src, dst, 6);
	pktgen_tcp(&pg, sport, 80, 1000u * sport, 0, 0x02, 0);
	return (int)pktgen_finish(&pg);
}

/* Sends COUNT frames of SIZE bytes (SIZE 0: TCP SYNs) out of IFNAME. */
static int inject(const char *ifname, int count, int size)
{
	static const unsigned char src[6] = { 0x02, 0x00, 0x5e, 0x20, 0x00, 0x02 };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	unsigned char frame[65536];
	int fd;

	if (size && (size < 14 || size > (int)sizeof(frame))) {
		fprintf(stderr, "tapguest: size %d out of range\n", size);
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) {
		perror("tapguest: socket");
		return 1;
	}
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (!sll.sll_ifindex) {
		fprintf(stderr, "tapguest: no interface %s\n", ifname);
		return 1;
	}
	if (size)
		fill_frame(frame, size, src);
	for (int i = 0, len = size; i < count; i++) {
		if (!size)
			len = syn_frame(frame, sizeof(frame), 20000 + (unsigned)i);
		if (sendto(fd, frame, len, 0, (struct sockaddr *)&sll, sizeof(sll)) != len) {
			perror("tapguest: sendto");
			return 1;
		}
	}
	close(fd);
	printf("injected %d\n", count);
	return 0;
}


/* Drops to UID:GID (no supplementary groups), or exits. */
static void run_as(const char *ids)
{
	unsigned uid, gid;

	if (!ids)
		return;
	if (sscanf(ids, "%u:%u", &uid, &gid) != 2 || setgroups(0, NULL) || setgid(gid) ||
	    setuid(uid)) {
		fprintf(stderr, "tapguest: cannot run as %s: %s\n", ids, strerror(errno));
		exit(1);
	}
}

/* Re-executes with every `ifname=X` replaced by `fd=N` of an open tap. */
static void pass_fds(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++) {
		char *p, *arg;
		int fd;

		if (strcmp(argv[i], "-netdev") || !(p = strstr(argv[i + 1], "ifname=")))
			continue;
		{
			char name[IFNAMSIZ] = "";

			sscanf(p + 7, "%15[^,]", name);
			fd = tapdev_open(name);
			if (fd < 0) {
				fprintf(stderr, "tapguest: tap %s: %s\n", name, strerror(-fd));
				exit(1);
			}
			fcntl(fd, F_SETFD, 0); /* handed over across exec, as libvirt does */
		}
		arg = malloc(strlen(argv[i + 1]) + 16);
		memcpy(arg, argv[i + 1], p - argv[i + 1]);
		sprintf(arg + (p - argv[i + 1]), "fd=%d%s", fd, strchr(p, ',') ? strchr(p, ',') : "");
		argv[i + 1] = arg;
	}
	unsetenv("TAPGUEST_PASS_FD");
	run_as(getenv("TAPGUEST_RUN_AS"));
	/* By its own name, so that comm stays that of a QEMU. */
	execv(argv[0], argv);
	perror("tapguest: exec");
	exit(1);
}

/*
 * TAPGUEST_PREREAD=FILE: after a second (vmprobe has marked the VM by
 * then), reads 1000 bytes of FILE and closes it, so that the first drive
 * opens under the same fd number, as the loader's library reads come
 * before QEMU opens its images.
 */
static int preread(const char *path)
{
	char buf[1000];
	int fd;

	sleep(1);
	fd = open(path, O_RDONLY);
	if (fd < 0 || pread(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf)) {
		fprintf(stderr, "tapguest: preread: %s\n", strerror(errno));
		return -1;
	}
	close(fd);
	printf("preread fd %d\n", fd);
	return 0;
}

/* A drive's image, open as QEMU holds it, and how SIGUSR2 reads it; the fd or -1. */
static int drive_open(const struct vm_drive *d, bool by_aio, enum read_way *way)
{
	int fd;

	*way = !by_aio ? READ_PREAD : !strcmp(d->aio, "io_uring") ? READ_URING :
	       !strcmp(d->aio, "native") ? READ_AIO : READ_PREAD;
	fd = open(d->file, O_RDWR | (*way == READ_AIO ? O_DIRECT : 0));
	if (fd < 0)
		fprintf(stderr, "tapguest: drive %s: %s\n", d->file, strerror(errno));
	return fd;
}

/* SIGUSR1: the frames TAPGUEST_BURST lists ("COUNT:SIZE,..."), into each tap. */
static void burst(const struct pollfd *pfd, int nfd, unsigned long long drained)
{
	static const unsigned char src[6] = { 0x02, 0x00, 0x5e, 0x30, 0x00, 0x03 };
	static unsigned char frame[65536];
	unsigned long long sent = 0;

	for (const char *p = getenv("TAPGUEST_BURST"); p && *p;) {
		int count, size;

		if (sscanf(p, "%d:%d", &count, &size) != 2 || size < 14 || size > (int)sizeof(frame))
			break;
		fill_frame(frame, size, src);
		for (int i = 0; i < nfd; i++)
			for (int k = 0; k < count; k++)
				if (write(pfd[i].fd, frame, size) == size)
					sent++;
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	printf("sent %llu drained %llu\n", sent, drained);
	fflush(stdout);
}

static void *vcpu_thread(void *arg)
{
	for (;;)
		usleep(10000);
	return NULL;
}

/* A vCPU thread named as QEMU names it with -name ...,debug-threads=on. */
static void vcpu_start(int argc, char **argv)
{
	pthread_t t;

	for (int i = 1; i < argc; i++)
		if (strstr(argv[i], "debug-threads=on") && !pthread_create(&t, NULL, vcpu_thread, NULL)) {
			pthread_setname_np(t, "CPU 0/TCG");
			return;
		}
}

/* A listening socket at ADDR, or -1 with the reason said. */
static int listen_on(int family, const struct sockaddr *addr, socklen_t len, const char *what)
{
	int fd = socket(family, SOCK_STREAM, 0), one = 1;

	if (fd >= 0 && family == AF_INET)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, addr, len) || listen(fd, 4)) {
		fprintf(stderr, "tapguest: %s: %s\n", what, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The sockets QEMU's monitor (-qmp unix:PATH,...) and VNC (-vnc HOST:N) hold. */
static int sockets_open(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "-qmp") && !strncmp(argv[i + 1], "unix:", 5)) {
			struct sockaddr_un un = { .sun_family = AF_UNIX };
			size_t n = strcspn(argv[i + 1] + 5, ",");

			if (n >= sizeof(un.sun_path))
				return -1;
			memcpy(un.sun_path, argv[i + 1] + 5, n);
			unlink(un.sun_path);
			if (listen_on(AF_UNIX, (struct sockaddr *)&un, sizeof(un), argv[i + 1]) < 0)
				return -1;
		} else if (!strcmp(argv[i], "-vnc") && strchr(argv[i + 1], ':')) {
			struct sockaddr_in in = { .sin_family = AF_INET };
			char host[64];
			size_t n = strchr(argv[i + 1], ':') - argv[i + 1];

			snprintf(host, sizeof(host), "%.*s", (int)n, argv[i + 1]);
			in.sin_port = htons(5900 + atoi(argv[i + 1] + n + 1));
			if (inet_pton(AF_INET, host, &in.sin_addr) != 1 ||
			    listen_on(AF_INET, (struct sockaddr *)&in, sizeof(in), argv[i + 1]) < 0)
				return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pollfd pfd[VM_MAX_NICS];
	unsigned char frame[65536];
	unsigned long long got = 0;
	struct vm_spec vm;
	int nfd = 0, drive_fds[VM_MAX_DRIVES], nr_drive_fds = 0;
	enum read_way drive_way[VM_MAX_DRIVES];
	bool by_aio = getenv("TAPGUEST_AIO") && atoi(getenv("TAPGUEST_AIO"));
	bool drive_uring[VM_MAX_DRIVES];

	if (argc == 5 && strcmp(argv[1], "inject") == 0)
		return inject(argv[2], atoi(argv[3]), atoi(argv[4]) ? atoi(argv[4]) : -1);
	if (argc == 4 && strcmp(argv[1], "syn") == 0)
		return inject(argv[2], atoi(argv[3]), 0);
	if (getenv("TAPGUEST_PASS_FD"))
		pass_fds(argc, argv);
	if (qemu_parse_argv(argc, argv, &vm)) {
		fprintf(stderr, "tapguest: cannot parse the command line\n");
		return 2;
	}
	vcpu_start(argc, argv);
	if (sockets_open(argc, argv))
		return 1;
	for (int i = 0; i < vm.nr_nics; i++) {
		int fd = vm.nics[i].nr_fds ? vm.nics[i].fds[0] : tapdev_open(vm.nics[i].ifname);

		if (fd < 0) {
			fprintf(stderr, "tapguest: tap %s: %s\n", vm.nics[i].ifname, strerror(-fd));
			return 1;
		}
		fcntl(fd, F_SETFL, O_NONBLOCK);
		pfd[nfd++] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	if (getenv("TAPGUEST_PREREAD") && preread(getenv("TAPGUEST_PREREAD")))
		return 1;
	for (int i = 0; i < vm.nr_drives; i++) {
		if (!vm.drives[i].file[0])
			continue;
		drive_uring[nr_drive_fds] = !strcmp(vm.drives[i].aio, "io_uring");
		drive_fds[nr_drive_fds] = drive_open(&vm.drives[i], by_aio, &drive_way[nr_drive_fds]);
		if (drive_fds[nr_drive_fds++] < 0)
			return 1;
	}
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	signal(SIGHUP, on_hup);
	printf("ready %d taps\n", nfd);
	fflush(stdout);
	for (;;) {
		int n = poll(pfd, nfd, 100);

		for (int i = 0; n > 0 && i < nfd; i++)
			while (read(pfd[i].fd, frame, sizeof(frame)) > 0)
				got++;
		if (reads_requested && getenv("TAPGUEST_OPS")) {
			reads_requested = 0;
			printf("ops %d\n", drive_ops(getenv("TAPGUEST_OPS"), drive_fds, drive_uring,
						      nr_drive_fds));
			fflush(stdout);
		} else if (reads_requested) {
			reads_requested = 0;
			drive_reads(drive_fds, drive_way, nr_drive_fds);
		}
		if (reuse_requested) {
			reuse_requested = 0;
			drive_reuse(drive_fds, nr_drive_fds);
		}
		if (burst_requested) {
			burst_requested = 0;
			burst(pfd, nfd, got);
		}
	}
}

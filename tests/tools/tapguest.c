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
 * Linux AIO on an O_DIRECT fd, as QEMU's drivers do);
 * on SIGHUP it puts /dev/zero in place of
 * each image under the same fd number, as a reopen may reuse it.
 * It drains every frame delivered to the guest and, on SIGUSR1, writes
 * the frames listed in TAPGUEST_BURST ("COUNT:SIZE,...") into each tap,
 * as a guest transmitting. With TAPGUEST_PASS_FD=1 it re-executes itself
 * with `fd=N` in place of `ifname=`, as libvirt passes taps; with
 * TAPGUEST_RUN_AS=UID:GID too, as that user, as libvirt runs QEMU
 * (libvirt-qemu) on taps it opened as root.
 *
 *   tapguest inject IFNAME COUNT SIZE
 * sends COUNT frames of SIZE bytes out of IFNAME (towards the guest).
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <errno.h>
#include <grp.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
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

/* One io_uring ring, one request at a time (no liburing in the build). */
struct uring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int uring_open(struct uring *r)
{
	struct io_uring_params p = { 0 };
	char *sq, *cq;

	r->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (r->fd < 0)
		return -1;
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -1;
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

/* An IORING_OP_READ of LEN bytes at OFF; its result (bytes or -errno). */
static int uring_read(struct uring *r, int fd, void *buf, unsigned len, off_t off)
{
	unsigned tail = *r->sq_tail, head, idx = tail & *r->sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_READ;
	sqe->fd = fd;
	sqe->addr = (unsigned long)buf;
	sqe->len = len;
	sqe->off = (unsigned long long)off;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -errno;
	head = *r->cq_head;
	if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
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
	static struct uring ring = { .fd = -1 };

	for (int i = 0; i < nr; i++)
		for (int k = 0; k < count; k++) {
			off_t off = (off_t)k * sizeof(block);
			long got;

			if (way[i] == READ_URING && ring.fd < 0 && uring_open(&ring)) {
				fprintf(stderr, "tapguest: io_uring: %s\n", strerror(errno));
				exit(1);
			}
			if (way[i] == READ_URING)
				got = uring_read(&ring, fds[i], block, sizeof(block), off);
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

/* The same fd numbers, now on /dev/zero; prints "reused N". */
static void drive_reuse(const int *fds, int nr)
{
	int done = 0;

	for (int i = 0; i < nr; i++) {
		int other = open("/dev/zero", O_RDONLY);

		if (other >= 0 && dup2(other, fds[i]) == fds[i])
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

static int inject(const char *ifname, int count, int size)
{
	static const unsigned char src[6] = { 0x02, 0x00, 0x5e, 0x20, 0x00, 0x02 };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	unsigned char frame[65536];
	int fd;

	if (size < 14 || size > (int)sizeof(frame)) {
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
	fill_frame(frame, size, src);
	for (int i = 0; i < count; i++) {
		if (sendto(fd, frame, size, 0, (struct sockaddr *)&sll, sizeof(sll)) != size) {
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

int main(int argc, char **argv)
{
	static const unsigned char src[6] = { 0x02, 0x00, 0x5e, 0x30, 0x00, 0x03 };
	struct pollfd pfd[VM_MAX_NICS];
	unsigned char frame[65536];
	unsigned long long got = 0;
	struct vm_spec vm;
	int nfd = 0, drive_fds[VM_MAX_DRIVES], nr_drive_fds = 0;
	enum read_way drive_way[VM_MAX_DRIVES];
	bool by_aio = getenv("TAPGUEST_AIO") && atoi(getenv("TAPGUEST_AIO"));

	if (argc == 5 && strcmp(argv[1], "inject") == 0)
		return inject(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (getenv("TAPGUEST_PASS_FD"))
		pass_fds(argc, argv);
	if (qemu_parse_argv(argc, argv, &vm)) {
		fprintf(stderr, "tapguest: cannot parse the command line\n");
		return 2;
	}
	for (int i = 0; i < vm.nr_nics; i++) {
		int fd = vm.nics[i].nr_fds ? vm.nics[i].fds[0] : tapdev_open(vm.nics[i].ifname);

		if (fd < 0) {
			fprintf(stderr, "tapguest: tap %s: %s\n", vm.nics[i].ifname, strerror(-fd));
			return 1;
		}
		fcntl(fd, F_SETFL, O_NONBLOCK);
		pfd[nfd++] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	for (int i = 0; i < vm.nr_drives; i++) {
		if (!vm.drives[i].file[0])
			continue;
		const char *aio = vm.drives[i].aio;
		enum read_way way = !by_aio ? READ_PREAD : !strcmp(aio, "io_uring") ? READ_URING :
				    !strcmp(aio, "native") ? READ_AIO : READ_PREAD;

		drive_fds[nr_drive_fds] = open(vm.drives[i].file,
					       O_RDWR | (way == READ_AIO ? O_DIRECT : 0));
		if (drive_fds[nr_drive_fds] < 0) {
			fprintf(stderr, "tapguest: drive %s: %s\n", vm.drives[i].file, strerror(errno));
			return 1;
		}
		drive_way[nr_drive_fds++] = way;
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
		if (reads_requested) {
			reads_requested = 0;
			drive_reads(drive_fds, drive_way, nr_drive_fds);
		}
		if (reuse_requested) {
			reuse_requested = 0;
			drive_reuse(drive_fds, nr_drive_fds);
		}
		if (burst_requested) {
			const char *spec = getenv("TAPGUEST_BURST");
			unsigned long long sent = 0;

			burst_requested = 0;
			for (const char *p = spec; p && *p;) {
				int count, size;

				if (sscanf(p, "%d:%d", &count, &size) != 2 || size < 14 ||
				    size > (int)sizeof(frame))
					break;
				fill_frame(frame, size, src);
				for (int i = 0; i < nfd; i++)
					for (int k = 0; k < count; k++)
						if (write(pfd[i].fd, frame, size) == size)
							sent++;
				p = strchr(p, ',');
				p = p ? p + 1 : NULL;
			}
			printf("sent %llu drained %llu\n", sent, got);
			fflush(stdout);
		}
	}
}

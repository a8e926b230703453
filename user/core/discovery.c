// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The VM table: finds QEMU processes in /proc, their identity, taps and
 * open files, and hands each VM to the probes (core/probe.h).
 */
#define _GNU_SOURCE
#include "core/discovery.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/libvirt.h"
#include "core/netns.h"
#include "core/process.h"
#include "core/util.h"

/* Every this many scans a VM's fds are rescanned for hot-plugged taps and drives. */
#define FULL_SYNC_EVERY 8

/* "pod" and a UUID (its dashes or, in systemd's unit names, underscores) at p. */
static bool pod_uid_at(const char *p)
{
	if (strncmp(p, "pod", 3))
		return false;
	p += 3;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? p[i] != '-' && p[i] != '_' : !isxdigit((unsigned char)p[i]))
			return false;
	}
	return true;
}

/*
 * Whether a process's /proc/PID/cgroup puts it in a Kubernetes pod: under
 * kubepods, or, read from a pod of our own whose cgroup namespace hides
 * the path above it (cgroup v2; the cgroupfs driver names no kubepods
 * below: "0::/../../pod<UID>/<container>"), in a pod<UID> directory.
 */
static bool in_pod(const char *cgroup_text)
{
	if (!cgroup_text)
		return false;
	if (strstr(cgroup_text, "kubepods"))
		return true;
	for (const char *p = strchr(cgroup_text, '/'); p; p = strchr(p + 1, '/'))
		if (pod_uid_at(p + 1))
			return true;
	return false;
}

void vm_identity(const char *qemu_name, const char *cgroup_text, pid_t pid, const char *uuid,
		 char *name, size_t name_size, char *ns, size_t ns_size)
{
	const char *us;

	ns[0] = '\0';
	if (!qemu_name || !*qemu_name) {
		/* An unnamed VM is still a VM: name it by what identifies it. */
		if (uuid && *uuid)
			snprintf(name, name_size, "%s", uuid);
		else
			snprintf(name, name_size, "qemu-%d", (int)pid);
		return;
	}
	us = strchr(qemu_name, '_');
	/* virt-launcher names the domain NAMESPACE_NAME inside a pod. */
	if (us && us != qemu_name && us[1] && in_pod(cgroup_text)) {
		snprintf(ns, ns_size, "%.*s", (int)(us - qemu_name), qemu_name);
		snprintf(name, name_size, "%s", us + 1);
		return;
	}
	snprintf(name, name_size, "%s", qemu_name);
}

int discovery_init(struct discovery *d, const struct config *cfg, struct probe_set *probes)
{
	static struct probe_set none;

	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->probes = probes ? probes : &none;
	d->home_netns = netns_open_current();
	if (d->home_netns < 0)
		return d->home_netns;
	pthread_mutex_init(&d->lock, NULL);
	return 0;
}

static int proc_path(const struct discovery *d, char *buf, size_t size, pid_t pid,
		     const char *what)
{
	int n = snprintf(buf, size, "%s/%d/%s", d->cfg->proc_root, (int)pid, what);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static bool is_qemu_comm(const char *comm)
{
	return strncmp(comm, "qemu-system-", 12) == 0 || strncmp(comm, "qemu-kvm", 8) == 0;
}

/* The kernel's PF_EXITING (include/linux/sched.h), in field 9 of /proc/PID/stat. */
#define TASK_EXITING 0x4UL

/*
 * Field 22 of /proc/PID/stat; -ESRCH for a zombie, which keeps its /proc
 * entry until reaped but is no VM any more, and for a leader in exit,
 * which still holds its fds for a moment but is no VM any more either.
 */
static int read_start_time(const struct discovery *d, pid_t pid, unsigned long long *out)
{
	char path[PATH_MAX], buf[1024];
	struct proc_stat st;

	if (proc_path(d, path, sizeof(path), pid, "stat"))
		return -ENAMETOOLONG;
	/* Gone (ENOENT, ESRCH) or unreadable: no VM to take either way. */
	if (read_file(path, buf, sizeof(buf)) < 0 || proc_stat_parse(buf, &st))
		return -EINVAL;
	if (st.state == 'Z' || st.state == 'X' || (st.flags & TASK_EXITING))
		return -ESRCH;
	*out = st.start;
	return 0;
}

static int push_file(struct vm_snapshot *snap, size_t *cap, int fd, const struct stat *st,
		     __u64 btime, const char *path)
{
	if (array_reserve((void **)&snap->files, snap->nr_files, cap, sizeof(*snap->files)))
		return -ENOMEM;
	snap->files[snap->nr_files++] = (struct vm_file){
		.fd = fd, .dev = st->st_dev, .ino = st->st_ino, .mode = st->st_mode,
		.rdev = st->st_rdev, .btime_ns = btime,
	};
	str_copy(snap->files[snap->nr_files - 1].path, sizeof(snap->files[0].path), path);
	return 0;
}

static int push_tun(struct vm_snapshot *snap, size_t *cap, int fd, const char *ifname)
{
	if (array_reserve((void **)&snap->tuns, snap->nr_tuns, cap, sizeof(*snap->tuns)))
		return -ENOMEM;
	snap->tuns[snap->nr_tuns].fd = fd;
	snprintf(snap->tuns[snap->nr_tuns++].ifname, IFNAMSIZ, "%s", ifname);
	return 0;
}

/* Growth room of the snapshot's arrays. */
struct snap_caps {
	size_t files, tuns, tun_fds, socks, macvtaps;
};

/*
 * When the file was made (statx's birth time), 0 if the filesystem does not
 * keep it: with dev and inode, a file a reused inode number is not.
 */
static __u64 birth_ns(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, 0, STATX_BTIME, &stx) || !(stx.stx_mask & STATX_BTIME))
		return 0;
	return (__u64)stx.stx_btime.tv_sec * 1000000000ULL + stx.stx_btime.tv_nsec;
}

/*
 * Whether a socket may be TCP, by the protocol sockfs names it after
 * ("TCP", "TCPv6"; "UNIX-STREAM", "UDP"...); one it cannot name may be.
 * MPTCP's too: its subflows are TCP sockets the tables list, and the
 * tracepoints see, under the MPTCP socket's inode.
 */
static bool sock_maybe_tcp(const char *path)
{
	char proto[32];
	ssize_t n = getxattr(path, "system.sockprotoname", proto, sizeof(proto) - 1);

	if (n <= 0)
		return true;
	proto[n] = '\0';
	return !strcmp(proto, "TCP") || !strcmp(proto, "TCPv6") || !strcmp(proto, "MPTCP") ||
	       !strcmp(proto, "MPTCPv6");
}

/* One fd of the walk: a tun fd (with its tap), a socket or a file, into the snapshot. */
static void snapshot_fd(const struct discovery *d, const struct vm *vm, const char *name,
			struct vm_snapshot *snap, struct snap_caps *caps)
{
	char path[PATH_MAX], link[PATH_MAX], text[4096], ifname[IFNAMSIZ];
	unsigned long long ino;
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%d/fd/%s", d->cfg->proc_root, (int)vm->pid, name);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0) {
		snap->fds_opaque |= errno == EACCES || errno == EPERM;
		snap->fds_partial |= errno != ENOENT;
		snap->socks_partial |= errno != ENOENT; /* it may have been a socket */
		return;
	}
	link[n] = '\0';
	if (strcmp(link, "/dev/net/tun") == 0) {
		if (!array_reserve((void **)&snap->tun_fds, snap->nr_tun_fds, &caps->tun_fds,
				   sizeof(*snap->tun_fds)))
			snap->tun_fds[snap->nr_tun_fds++] = atoi(name);
		else
			snap->fds_partial = true;
		snprintf(path, sizeof(path), "%s/%d/fdinfo/%s", d->cfg->proc_root, (int)vm->pid,
			 name);
		if (read_file(path, text, sizeof(text)) > 0 &&
		    fdinfo_tap_name(text, ifname, sizeof(ifname)) == 0)
			push_tun(snap, &caps->tuns, atoi(name), ifname);
		return;
	}
	if (sscanf(link, "socket:[%llu]", &ino) == 1) {
		if (sock_maybe_tcp(path) && u64_push(&snap->socks, &snap->nr_socks, &caps->socks, ino))
			snap->socks_partial = true;
		return;
	}
	if (stat(path, &st)) {
		/* Closed meanwhile, or a file that cannot be told (EIO, ESTALE). */
		snap->fds_partial |= errno != ENOENT;
		return;
	}
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		push_file(snap, &caps->files, atoi(name), &st, birth_ns(path), link);
	else if (S_ISCHR(st.st_mode) && !strncmp(link, "/dev/tap", 8) &&
		 !array_reserve((void **)&snap->macvtaps, snap->nr_macvtaps, &caps->macvtaps,
				sizeof(*snap->macvtaps)))
		snap->macvtaps[snap->nr_macvtaps++] = atoi(name);
}

/* The fd numbers of the process, sorted; -errno if its fd table cannot be read. */
static int fd_numbers(const struct discovery *d, const struct vm *vm, int **out, size_t *nr)
{
	char path[PATH_MAX];
	size_t cap = 0;
	struct dirent *de;
	DIR *dir;

	*out = NULL;
	*nr = 0;
	if (proc_path(d, path, sizeof(path), vm->pid, "fd"))
		return -ENAMETOOLONG;
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (array_reserve((void **)out, *nr, &cap, sizeof(**out)))
			break;
		(*out)[(*nr)++] = atoi(de->d_name);
	}
	closedir(dir);
	qsort(*out, *nr, sizeof(**out), cmp_int);
	return 0;
}

/*
 * One walk of the process's fds: tun fds are taps (fdinfo names them),
 * regular files and block devices may be drives' images, sockets may be
 * QEMU's host TCP sockets.
 */
static void snapshot_read(struct discovery *d, struct vm *vm, struct vm_snapshot *snap)
{
	struct snap_caps caps = {};
	char name[16];
	int err;

	memset(snap, 0, sizeof(*snap));
	free(vm->fds);
	err = fd_numbers(d, vm, &vm->fds, &vm->nr_fds);
	if (err) {
		/* Without its fds, fd-passed taps and every drive go uncounted. */
		if (err == -EACCES || err == -EPERM) {
			d->attach_errors++;
			if (!vm->fd_warned)
				log_warn("cannot read %s/%d/fd: %s (vmprobe needs CAP_SYS_PTRACE and "
					 "CAP_DAC_READ_SEARCH for other users' QEMU)",
					 d->cfg->proc_root, (int)vm->pid, strerror(-err));
			vm->fd_warned = true;
		}
		return;
	}
	for (size_t i = 0; i < vm->nr_fds; i++) {
		snprintf(name, sizeof(name), "%d", vm->fds[i]);
		snapshot_fd(d, vm, name, snap, &caps);
	}
	snap->fds_read = true;
}

/* Whether the fd table changed since the last snapshot (opened or closed fds). */
static bool fds_changed(const struct discovery *d, const struct vm *vm)
{
	int *now;
	size_t nr;
	bool changed;

	if (fd_numbers(d, vm, &now, &nr))
		return false;
	changed = nr != vm->nr_fds || (nr && memcmp(now, vm->fds, nr * sizeof(*now)));
	free(now);
	return changed;
}

static void snapshot_free(struct vm_snapshot *snap)
{
	free(snap->files);
	free(snap->tuns);
	free(snap->tun_fds);
	free(snap->macvtaps);
	free(snap->socks);
}

int discovery_enter_netns(struct discovery *d, struct vm *vm)
{
	int err;

	if (vm->netns_fd < 0)
		return -EACCES; /* said once, when the VM was found */
	err = netns_enter(vm->netns_fd);
	if (err) {
		d->attach_errors++;
		if (!vm->netns_warned)
			log_warn("cannot enter the network namespace of VM %s (pid %d): %s%s",
				 vm->name, (int)vm->pid, strerror(-err),
				 err == -EPERM ? " (vmprobe needs CAP_SYS_ADMIN for VMs in other "
						 "network namespaces)" : "");
		vm->netns_warned = true;
	}
	return err;
}

void discovery_leave_netns(struct discovery *d)
{
	int err = netns_enter(d->home_netns);

	if (err)
		log_error("cannot return to vmprobe's network namespace: %s", strerror(-err));
}

pid_t proc_status_nspid(const char *text)
{
	const char *line = strstr(text, "\nNSpid:"), *last = NULL;
	size_t len;

	if (!line)
		return 0;
	line++;
	len = strcspn(line, "\n");
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\t')
			last = line + i;
	return last ? (pid_t)atoi(last + 1) : 0;
}

/* The pid of `pid` in its own pid namespace, 0 if not known. */
static pid_t ns_pid(const struct discovery *d, pid_t pid)
{
	char path[PATH_MAX], text[4096];

	if (proc_path(d, path, sizeof(path), pid, "status") ||
	    read_file(path, text, sizeof(text)) <= 0)
		return 0;
	return proc_status_nspid(text);
}

/*
 * libvirt's state of the VM, when libvirt manages it: re-read when its
 * file changes, and at every full sync (a rewrite may keep all it shows).
 */
static bool libvirt_changed(struct discovery *d, struct vm *vm, bool full)
{
	char root[PATH_MAX];

	if (!vm->libvirt)
		vm->libvirt = calloc(1, sizeof(*vm->libvirt));
	if (!vm->libvirt || proc_path(d, root, sizeof(root), vm->pid, "root"))
		return false;
	if (!vm->nspid)
		vm->nspid = ns_pid(d, vm->pid);
	return libvirt_refresh(vm->libvirt, root, vm->spec.name, vm->spec.pidfile, vm->pid,
			       vm->nspid, full) > 0;
}

/* Whether the VM's process still runs (not exited, not a zombie, not a new one under its PID). */
static bool vm_alive(const struct discovery *d, const struct vm *vm)
{
	unsigned long long start_time;

	return read_start_time(d, vm->pid, &start_time) == 0 && start_time == vm->start_time;
}

/* A QEMU process that exited while discovery read it: said and counted. */
static void exited_mid_scan(const char *name, pid_t pid)
{
	fault_count(FAULT_VM_EXITED);
	log_info("VM %s (pid %d) exited while vmprobe read it: dropped", name, (int)pid);
}

/*
 * A VM is synced when its fd table or libvirt's state of it changed, when
 * a probe waits for something (a tap not up yet), and at every full sync.
 * False when the process exited meanwhile: the probes were not handed
 * what its walk missed, and the VM is to be dropped.
 */
static bool vm_sync(struct discovery *d, struct vm *vm, bool full)
{
	struct probe_set *ps = d->probes;
	bool pending = libvirt_changed(d, vm, full) | full | vm->needs_sync;
	struct vm_snapshot snap;

	for (unsigned i = 0; !pending && i < ps->nr; i++)
		pending = ps->probes[i].ops->vm_pending(&ps->probes[i], vm);
	if (!pending && !fds_changed(d, vm))
		return true;
	vm->needs_sync = false;
	snapshot_read(d, vm, &snap);
	/* An exit during the walk leaves it empty: no drive or tap of it is "gone" or "unmeasured". */
	if (!vm_alive(d, vm)) {
		snapshot_free(&snap);
		return false;
	}
	inventory_update(d, vm, &snap, vm->libvirt && vm->libvirt->valid ? &vm->libvirt->dom : NULL);
	for (unsigned i = 0; i < ps->nr; i++)
		ps->probes[i].ops->vm_sync(&ps->probes[i], d, vm, &snap);
	inventory_settle(vm, ps);
	snapshot_free(&snap);
	return true;
}

static void vm_free(struct discovery *d, struct vm *vm)
{
	struct probe_set *ps = d->probes;

	for (unsigned i = 0; i < ps->nr; i++)
		if (vm->priv[i])
			ps->probes[i].ops->vm_del(&ps->probes[i], d, vm);
	if (vm->netns_fd >= 0)
		close(vm->netns_fd);
	free(vm->fds);
	free(vm->libvirt);
	free(vm);
}

/*
 * /proc/PID/cmdline is read into this much, then, if it filled that, into
 * four times as much, up to CMDLINE_MAX (a cut one does not parse).
 */
#define CMDLINE_FIRST_READ (256 * 1024)
#define CMDLINE_MAX (16 * 1024 * 1024)

/* The identity of the VM: its command line, name and namespace. */
static int vm_read_identity(struct discovery *d, struct vm *vm)
{
	char path[PATH_MAX], *buf, cgroup[8192];
	long n;
	int err;

	if (proc_path(d, path, sizeof(path), vm->pid, "cmdline"))
		return -ENAMETOOLONG;
	/* A buffer that it filled may have cut it: read again into a larger one. */
	buf = NULL;
	for (size_t size = CMDLINE_FIRST_READ;; size *= 4) {
		char *more = realloc(buf, size);

		if (!more) {
			free(buf);
			return -ENOMEM;
		}
		buf = more;
		n = read_file(path, buf, size);
		if (n < (long)size - 1 || size >= CMDLINE_MAX)
			break;
	}
	/* read_file() NUL-terminates; cmdline already ends in NUL. */
	err = n <= 0 ? -ESRCH : qemu_parse_cmdline(buf, (size_t)n, &vm->spec);
	free(buf);
	if (err)
		return err;
	cgroup[0] = '\0';
	if (!proc_path(d, path, sizeof(path), vm->pid, "cgroup"))
		read_file(path, cgroup, sizeof(cgroup));
	vm_identity(vm->spec.name, cgroup, vm->pid, vm->spec.uuid, vm->name, sizeof(vm->name),
		    vm->ns, sizeof(vm->ns));
	return 0;
}

static struct vm *vm_new(struct discovery *d, pid_t pid, unsigned long long start_time)
{
	struct probe_set *ps = d->probes;
	char path[PATH_MAX];
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->pid = pid;
	vm->start_time = start_time;
	vm->found_ns = monotonic_ns();
	vm->netns_fd = -1;
	vm->needs_sync = true;
	snprintf(vm->pid_str, sizeof(vm->pid_str), "%d", (int)pid);
	if (vm_read_identity(d, vm))
		goto fail;
	if (proc_path(d, path, sizeof(path), pid, "ns/net"))
		goto fail;
	vm->netns_fd = open(path, O_RDONLY | O_CLOEXEC);
	/* Another user's QEMU without CAP_SYS_PTRACE: listed, its NICs and drives unmeasured. */
	if (vm->netns_fd < 0 && (errno == EACCES || errno == EPERM)) {
		d->attach_errors++;
		log_warn("cannot open %s: %s: VM %s is not measured (vmprobe needs CAP_SYS_PTRACE "
			 "for other users' QEMU)", path, strerror(errno), vm->name);
	} else if (vm->netns_fd < 0) {
		goto fail;
	}
	for (unsigned i = 0; i < ps->nr; i++)
		if (ps->probes[i].ops->vm_add(&ps->probes[i], d, vm))
			goto fail;
	log_info("found VM %s%s%s (pid %d, uuid %s)", vm->ns, vm->ns[0] ? "/" : "", vm->name,
		 (int)pid, vm->spec.uuid[0] ? vm->spec.uuid : "-");
	return vm;
fail:
	if (!vm_alive(d, vm))
		exited_mid_scan(vm->name[0] ? vm->name : vm->pid_str, pid);
	vm_free(d, vm);
	return NULL;
}

/* Where the table links the VM of pid: *result is NULL if it has none. */
static struct vm **vm_link(struct discovery *d, pid_t pid)
{
	struct vm **pp;

	for (pp = &d->vms; *pp; pp = &(*pp)->next)
		if ((*pp)->pid == pid)
			break;
	return pp;
}

/* Unlinks the VM at *pp and frees it: its taps are detached, its series end. */
static void vm_drop(struct discovery *d, struct vm **pp, bool mid_scan)
{
	struct vm *vm = *pp;

	if (mid_scan)
		exited_mid_scan(vm->name, vm->pid);
	else
		log_info("VM %s (pid %d) is gone", vm->name, (int)vm->pid);
	*pp = vm->next;
	vm_free(d, vm);
	d->table_gen++;
}

/* Whether pid is a QEMU process; its start time in *start_time. Reads /proc alone: no lock. */
static bool qemu_pid(const struct discovery *d, pid_t pid, unsigned long long *start_time)
{
	char path[PATH_MAX], comm[64];

	return !proc_path(d, path, sizeof(path), pid, "comm") &&
	       read_file(path, comm, sizeof(comm)) > 0 && is_qemu_comm(comm) &&
	       !read_start_time(d, pid, start_time);
}

/*
 * A QEMU process as a scan sees it (d->lock held): a new one becomes a VM,
 * a known VM is synced. Returns the VM, or NULL if it is none after all.
 */
static struct vm *scan_qemu(struct discovery *d, pid_t pid, unsigned long long start_time,
			    bool full)
{
	struct vm **pp, *vm;

	pp = vm_link(d, pid);
	if (*pp && (*pp)->start_time != start_time)
		/* A new process under an old PID: the old VM is gone. */
		vm_drop(d, pp, false);
	vm = *pp;
	if (!vm) {
		vm = vm_new(d, pid, start_time);
		if (!vm)
			return NULL;
		vm->next = d->vms;
		d->vms = vm;
		d->table_gen++;
	}
	vm->seen_gen = d->gen;
	if (!vm_sync(d, vm, full)) {
		vm_drop(d, vm_link(d, pid), true);
		return NULL;
	}
	return vm;
}

/* A QEMU process a scan's walk listed. */
struct qemu_proc {
	pid_t pid;
	unsigned long long start_time;
};

/*
 * The QEMU processes of /proc in *out (to free): how many, or -1 if /proc
 * cannot be listed whole (said in the log).
 */
static ssize_t qemu_procs(const struct discovery *d, struct qemu_proc **out)
{
	size_t n = 0, cap = 0;
	bool partial = false;
	pid_t self = getpid();
	struct dirent *de;
	DIR *dir;

	*out = NULL;
	dir = opendir(d->cfg->proc_root);
	if (!dir) {
		log_error("cannot read %s: %s", d->cfg->proc_root, strerror(errno));
		return -1;
	}
	for (;;) {
		unsigned long long start_time;
		char *end;
		long pid;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			if (errno) {
				log_error("cannot read %s: %s", d->cfg->proc_root, strerror(errno));
				partial = true;
			}
			break;
		}
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == self || !qemu_pid(d, (pid_t)pid, &start_time))
			continue;
		if (array_reserve((void **)out, n, &cap, sizeof(**out))) {
			log_error("out of memory listing the QEMU processes");
			partial = true;
			break;
		}
		(*out)[n++] = (struct qemu_proc){ (pid_t)pid, start_time };
	}
	closedir(dir);
	return partial ? -1 : (ssize_t)n;
}

/*
 * The walk of /proc, which reads every process's comm and takes longest
 * on a busy host, holds no lock: /metrics is not held up by it. A process
 * that exited or was replaced since the walk listed it is passed over
 * quietly (its VM, if it had one, is then dropped as gone), as if the walk
 * had not seen it.
 */
void discovery_scan(struct discovery *d)
{
	double t0 = now_seconds();
	struct qemu_proc *procs;
	struct vm **pp;
	ssize_t n;
	bool full;

	pthread_mutex_lock(&d->lock);
	full = d->gen % FULL_SYNC_EVERY == 0;
	d->gen++;
	pthread_mutex_unlock(&d->lock);
	n = qemu_procs(d, &procs);
	pthread_mutex_lock(&d->lock);
	for (ssize_t i = 0; i < n; i++) {
		unsigned long long start_time;

		if (!read_start_time(d, procs[i].pid, &start_time) &&
		    start_time == procs[i].start_time)
			scan_qemu(d, procs[i].pid, start_time, full);
	}
	/* Forget VMs that are gone; none if /proc could not be listed whole. */
	for (pp = &d->vms; *pp && n >= 0;) {
		if ((*pp)->seen_gen == d->gen)
			pp = &(*pp)->next;
		else
			vm_drop(d, pp, false);
	}
	d->scans++;
	d->last_scan_seconds = now_seconds() - t0;
	pthread_mutex_unlock(&d->lock);
	free(procs);
}

bool discovery_scan_pid(struct discovery *d, pid_t pid)
{
	unsigned long long start_time;
	bool vm;

	if (!qemu_pid(d, pid, &start_time))
		return false;
	pthread_mutex_lock(&d->lock);
	vm = scan_qemu(d, pid, start_time, false) != NULL;
	pthread_mutex_unlock(&d->lock);
	return vm;
}

void discovery_forget(struct discovery *d, pid_t pid, __u64 before_ns)
{
	struct vm **pp;

	pthread_mutex_lock(&d->lock);
	pp = vm_link(d, pid);
	/* Found after the event: that VM already is what the process became. */
	if (*pp && (*pp)->found_ns < before_ns)
		vm_drop(d, pp, false);
	pthread_mutex_unlock(&d->lock);
}

bool discovery_probes_retry(struct discovery *d)
{
	struct probe_set *ps = d->probes;
	struct probe opened[PROBE_MAX];
	unsigned n;

	if (probes_retry_in(ps) != 0)
		return false;
	/* Loading takes a while: /metrics is not held up meanwhile. */
	n = probes_retry(ps, d->cfg, opened);
	if (!n)
		return false;
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < n; i++) {
		struct probe *p = probes_join(ps, &opened[i]);

		for (struct vm **pp = &d->vms; *pp;) {
			struct vm *vm = *pp;

			if (p->ops->vm_add(p, d, vm)) {
				/* Found again, with every probe, at the next scan. */
				vm_drop(d, pp, false);
				continue;
			}
			vm->needs_sync = true;
			pp = &vm->next;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return true;
}

void discovery_poke(struct discovery *d, pid_t pid)
{
	struct vm *vm;

	pthread_mutex_lock(&d->lock);
	vm = *vm_link(d, pid);
	if (vm)
		vm->needs_sync = true;
	pthread_mutex_unlock(&d->lock);
}

void discovery_fini(struct discovery *d)
{
	struct vm *vm, *next;

	pthread_mutex_lock(&d->lock);
	for (vm = d->vms; vm; vm = next) {
		next = vm->next;
		vm_free(d, vm);
	}
	d->vms = NULL;
	pthread_mutex_unlock(&d->lock);
	if (d->home_netns >= 0)
		close(d->home_netns);
	pthread_mutex_destroy(&d->lock);
}

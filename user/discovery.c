// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define _GNU_SOURCE
#include "discovery.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"
#include "util.h"

/* Every this many scans a VM's fds are rescanned for hot-plugged taps. */
#define FULL_SYNC_EVERY 8

struct vm_priv {
	int netns_fd;
	__u64 *socks; /* QEMU's TCP socket inodes being watched, sorted */
	size_t nr_socks;
	bool needs_sync;
	bool disk_marked; /* its tgid bit is set in the disk probe */
	bool fd_warned;
};

/* Logs an unreadable fd table once per VM; true if it already had. */
static bool priv_fd_warned(struct vm *vm)
{
	struct vm_priv *priv = (struct vm_priv *)(vm + 1);
	bool was = priv->fd_warned;

	priv->fd_warned = true;
	return was;
}

static bool priv_disk_marked(struct vm *vm)
{
	return ((struct vm_priv *)(vm + 1))->disk_marked;
}

static void set_priv_disk_marked(struct vm *vm)
{
	((struct vm_priv *)(vm + 1))->disk_marked = true;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
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
	if (us && us != qemu_name && us[1] && cgroup_text && strstr(cgroup_text, "kubepods")) {
		snprintf(ns, ns_size, "%.*s", (int)(us - qemu_name), qemu_name);
		snprintf(name, name_size, "%s", us + 1);
		return;
	}
	snprintf(name, name_size, "%s", qemu_name);
}

int discovery_init(struct discovery *d, const struct config *cfg, struct net_probe *np,
		   struct disk_probe *dp)
{
	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->np = np;
	d->dp = dp;
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

/*
 * Field 22 of /proc/PID/stat, after the parenthesised comm; -ESRCH for a
 * zombie, which keeps its /proc entry until reaped but is no VM any more.
 */
static int read_start_time(const struct discovery *d, pid_t pid, unsigned long long *out)
{
	char path[PATH_MAX], buf[1024], *p;
	long n;

	if (proc_path(d, path, sizeof(path), pid, "stat"))
		return -ENAMETOOLONG;
	n = read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	p = strrchr(buf, ')');
	if (!p || !p[1] || !p[2])
		return -EINVAL;
	if (p[2] == 'Z' || p[2] == 'X')
		return -ESRCH;
	/* After ") " come fields 3..; start_time is the 20th of those. */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", out) != 1)
		return -EINVAL;
	return 0;
}

static struct tap_state *tap_find_or_add(struct vm *vm, const char *ifname)
{
	struct tap_state *t;

	for (int i = 0; i < vm->nr_taps; i++)
		if (strcmp(vm->taps[i].ifname, ifname) == 0)
			return &vm->taps[i];
	if (vm->nr_taps >= VM_MAX_NICS)
		return NULL;
	t = &vm->taps[vm->nr_taps++];
	memset(t, 0, sizeof(*t));
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifname);
	t->slot = -1;
	return t;
}

/* Finds a drive's image in the process's own mount namespace. */
static void drive_resolve(const struct discovery *d, struct vm *vm, int i)
{
	struct drive_state *ds = &vm->drives[i];
	const char *file = vm->spec.drives[i].file;
	char path[PATH_MAX];
	struct stat st;

	if (ds->resolved || !file[0])
		return;
	snprintf(path, sizeof(path), "%s/%d/%s/%s", d->cfg->proc_root, (int)vm->pid,
		 file[0] == '/' ? "root" : "cwd", file);
	if (stat(path, &st))
		return;
	ds->resolved = true;
	ds->st_dev = st.st_dev;
	ds->st_ino = st.st_ino;
	ds->kdev = S_ISBLK(st.st_mode) ? disk_kdev(st.st_rdev) : 0;
}

/* Whether the fd is one of the drive's already; marks it in *seen, a bit per entry. */
static bool drive_fd_known(const struct drive_state *ds, int fd, unsigned *seen)
{
	for (int k = 0; k < ds->nr_fds; k++)
		if (ds->fds[k] == fd) {
			*seen |= 1u << k;
			return true;
		}
	return false;
}

/* Counts the fd as the drive's (QEMU may hold an image more than once). */
static void drive_fd_add(struct discovery *d, struct vm *vm, struct drive_state *ds, int fd)
{
	int err;

	if (ds->nr_fds >= DRIVE_MAX_FDS)
		return;
	err = disk_fd_add(d->dp, vm->pid, fd, ds->slot);
	if (err) {
		d->attach_errors++;
		log_warn("cannot count fd %d of VM %s: %s", fd, vm->name, strerror(-err));
		return;
	}
	ds->fds[ds->nr_fds++] = fd;
	ds->had_fds = true;
	log_debug("fd %d of VM %s (pid %d) is on a drive's image: counted", fd, vm->name,
		  (int)vm->pid);
}

/*
 * Forgets the drive's fds a full walk of the fd table did not find on its
 * image: QEMU closed them (it reopens images as their permissions change
 * at start, and for block-commit, mirror or snapshots), and the number
 * may come back on another file, whose IO is not this drive's. A drive
 * QEMU moved to another file (the command line still names the old one)
 * then goes uncounted rather than miscounted.
 */
static void drive_fds_prune(struct discovery *d, struct vm *vm, struct drive_state *ds,
			    unsigned seen)
{
	int kept = 0;

	for (int k = 0; k < ds->nr_fds; k++) {
		if (seen & (1u << k)) {
			ds->fds[kept++] = ds->fds[k];
			continue;
		}
		disk_fd_del(d->dp, vm->pid, ds->fds[k]);
		log_debug("fd %d of VM %s (pid %d) is no longer on its image: not counted",
			 ds->fds[k], vm->name, (int)vm->pid);
	}
	ds->nr_fds = kept;
}

static int push_u64(__u64 **v, size_t *n, size_t *cap, __u64 x)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 32;
		__u64 *nv = realloc(*v, c * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return 0;
}

/*
 * Keeps in `socks` the inodes /proc/PID/net/FILE lists (TCP in QEMU's
 * namespace), but listening sockets: they receive no segment tcp_probe
 * reports and retransmit none, and nearly every VM has one (VNC, monitor),
 * which would keep the host TCP hooks attached for nothing.
 */
static void keep_listed(const struct discovery *d, pid_t pid, const char *file, const __u64 *socks,
			size_t n, __u64 **out, size_t *nr_out, size_t *cap)
{
	char path[PATH_MAX], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/net/%s", d->cfg->proc_root, (int)pid, file);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long ino;
		unsigned state;

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %*s %*s %llu", &state, &ino) != 2 ||
		    !ino || state == TCP_LISTEN)
			continue;
		for (size_t i = 0; i < n; i++)
			if (socks[i] == ino)
				push_u64(out, nr_out, cap, ino);
	}
	fclose(f);
}

/*
 * QEMU's own TCP sockets (migration, NBD or Ceph storage, VNC): of its
 * socket fds `socks` (as scan_fds found them), those its namespace's TCP
 * tables list. Closed ones are dropped, so a reused inode number is never
 * someone else's.
 */
static void host_socks_update(struct discovery *d, struct vm *vm, const __u64 *socks, size_t n)
{
	struct vm_priv *priv = (struct vm_priv *)(vm + 1);
	__u64 *tcp = NULL;
	size_t nt = 0, tcap = 0;

	if (n) {
		keep_listed(d, vm->pid, "tcp", socks, n, &tcp, &nt, &tcap);
		keep_listed(d, vm->pid, "tcp6", socks, n, &tcp, &nt, &tcap);
	}
	if (nt == 0 && priv->nr_socks == 0) {
		free(tcp);
		return;
	}
	if (net_host_socks_set(d->np, (__u32)vm->pid, priv->socks, priv->nr_socks, tcp, nt))
		log_warn("cannot watch all TCP sockets of VM %s (pid %d)", vm->name, (int)vm->pid);
	free(priv->socks);
	priv->socks = tcp;
	priv->nr_socks = nt;
}

/*
 * Taps named on the command line; then the process's fds: every tun fd
 * is a tap (fdinfo names it), every fd on a drive's image is that drive's,
 * every socket may be one of QEMU's host TCP sockets.
 */
static void scan_fds(struct discovery *d, struct vm *vm)
{
	char path[PATH_MAX], link[64], text[4096], ifname[IFNAMSIZ];
	bool want_socks = d->np && d->np->host_tcp_on;
	__u64 *socks = NULL;
	size_t nr_socks = 0, cap = 0;
	unsigned seen[VM_MAX_DRIVES] = { 0 };
	struct { int fd, drive; } adds[VM_MAX_DRIVES * DRIVE_MAX_FDS];
	int nr_adds = 0;
	struct dirent *de;
	struct stat st;
	DIR *dir;

	for (int i = 0; i < vm->spec.nr_nics; i++)
		if (vm->spec.nics[i].ifname[0])
			tap_find_or_add(vm, vm->spec.nics[i].ifname);

	if (proc_path(d, path, sizeof(path), vm->pid, "fd"))
		return;
	dir = opendir(path);
	if (!dir) {
		/* Without its fds, fd-passed taps and every drive go uncounted. */
		if (errno == EACCES || errno == EPERM) {
			d->attach_errors++;
			if (!priv_fd_warned(vm))
				log_warn("cannot read %s: %s (vmprobe needs CAP_SYS_PTRACE and "
					 "CAP_DAC_READ_SEARCH for other users' QEMU)",
					 path, strerror(errno));
		}
		return;
	}
	while ((de = readdir(dir))) {
		unsigned long long ino;
		ssize_t n;
		int fd;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		fd = atoi(de->d_name);
		snprintf(path, sizeof(path), "%s/%d/fd/%s", d->cfg->proc_root, (int)vm->pid,
			 de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			if (strcmp(link, "/dev/net/tun") == 0) {
				snprintf(path, sizeof(path), "%s/%d/fdinfo/%s", d->cfg->proc_root,
					 (int)vm->pid, de->d_name);
				if (read_file(path, text, sizeof(text)) > 0 &&
				    fdinfo_tap_name(text, ifname, sizeof(ifname)) == 0)
					tap_find_or_add(vm, ifname);
				continue;
			}
			if (sscanf(link, "socket:[%llu]", &ino) == 1) {
				if (want_socks)
					push_u64(&socks, &nr_socks, &cap, ino);
				continue;
			}
		}
		if (!d->dp || stat(path, &st))
			continue;
		for (int i = 0; i < vm->spec.nr_drives; i++) {
			struct drive_state *ds = &vm->drives[i];

			if (ds->slot >= 0 && ds->resolved && ds->st_dev == st.st_dev &&
			    ds->st_ino == st.st_ino && !drive_fd_known(ds, fd, &seen[i]) &&
			    nr_adds < (int)ARRAY_SIZE(adds)) {
				adds[nr_adds].fd = fd;
				adds[nr_adds++].drive = i;
			}
		}
	}
	closedir(dir);
	/* Forget first: a number closed on one drive's image may now be another's. */
	for (int i = 0; d->dp && i < vm->spec.nr_drives; i++)
		drive_fds_prune(d, vm, &vm->drives[i], seen[i]);
	for (int j = 0; j < nr_adds; j++)
		drive_fd_add(d, vm, &vm->drives[adds[j].drive], adds[j].fd);
	if (want_socks)
		host_socks_update(d, vm, socks, nr_socks);
	free(socks);
}

/* Drive slots, and block-device images keyed by device. */
static void drives_sync(struct discovery *d, struct vm *vm)
{
	if (!priv_disk_marked(vm)) {
		if (disk_vm_add(d->dp, vm->pid)) {
			d->attach_errors++;
			return;
		}
		set_priv_disk_marked(vm);
	}
	for (int i = 0; i < vm->spec.nr_drives; i++) {
		struct drive_state *ds = &vm->drives[i];
		int slot;

		/*
		 * Only drives with a local image get a slot: network storage
		 * (rbd:, nbd:, iSCSI) has no file to match, and a series that
		 * could only ever read 0 would mislead.
		 */
		drive_resolve(d, vm, i);
		if (ds->slot >= 0 || !ds->resolved)
			continue;
		slot = disk_slot_alloc(d->dp);
		if (slot < 0) {
			d->attach_errors++;
			log_warn("cannot count drive %s of VM %s: no free slot (raise disk.max_drives)",
				 vm->spec.drives[i].label, vm->name);
			return;
		}
		ds->slot = slot;
		if (!strcmp(vm->spec.drives[i].aio, "native")) {
			disk_native_drives(d->dp, 1);
			if (disk_native_file_add(d->dp, vm->pid, disk_kdev(ds->st_dev), ds->st_ino,
						 slot))
				d->attach_errors++;
		}
		log_info("counting drive %s (%s, aio=%s) of VM %s", vm->spec.drives[i].label,
			 vm->spec.drives[i].file, vm->spec.drives[i].aio, vm->name);
	}
	scan_fds(d, vm);
	for (int i = 0; i < vm->spec.nr_drives; i++) {
		struct drive_state *ds = &vm->drives[i];

		if (ds->slot >= 0 && ds->kdev && disk_dev_add(d->dp, vm->pid, ds->kdev, ds->slot))
			d->attach_errors++;
	}
}

static void drives_forget(struct discovery *d, struct vm *vm)
{
	if (priv_disk_marked(vm))
		disk_vm_del(d->dp, vm->pid);
	for (int i = 0; i < vm->spec.nr_drives; i++) {
		struct drive_state *ds = &vm->drives[i];

		if (ds->slot < 0)
			continue;
		for (int k = 0; k < ds->nr_fds; k++)
			disk_fd_del(d->dp, vm->pid, ds->fds[k]);
		if (ds->kdev)
			disk_dev_del(d->dp, vm->pid, ds->kdev);
		if (!strcmp(vm->spec.drives[i].aio, "native")) {
			disk_native_drives(d->dp, -1);
			disk_native_file_del(d->dp, vm->pid, disk_kdev(ds->st_dev), ds->st_ino);
		}
		disk_slot_free(d->dp, ds->slot);
		ds->slot = -1;
		ds->nr_fds = 0;
		ds->had_fds = false;
	}
}

static void tap_forget(struct discovery *d, struct tap_state *t)
{
	int err;

	if (t->slot < 0)
		return;
	err = net_tap_detach(d->np, t->netns_cookie, &t->att);
	if (err)
		/* Its filter may still count into the slot: never hand it out again. */
		log_warn("detaching from tap %s failed: %s; its slot %d is retired", t->ifname,
			 strerror(-err), t->slot);
	else
		net_slot_free(d->np, t->slot);
	t->slot = -1;
}

static void tap_sync(struct discovery *d, struct vm *vm, struct tap_state *t, __u64 cookie)
{
	int ifindex = (int)if_nametoindex(t->ifname), slot, err;

	if (t->slot >= 0 && t->ifindex == ifindex && t->netns_cookie == cookie)
		return;
	/* Gone, or replaced by a new device of the same name. */
	tap_forget(d, t);
	if (ifindex == 0)
		return;

	slot = net_slot_alloc(d->np);
	if (slot < 0) {
		err = slot;
		goto fail;
	}
	err = net_tap_attach(d->np, ifindex, slot, &t->att);
	if (err) {
		net_slot_free(d->np, slot);
		goto fail;
	}
	t->slot = slot;
	t->ifindex = ifindex;
	t->netns_cookie = cookie;
	t->last_error = 0;
	log_info("counting tap %s (ifindex %d) of VM %s%s%s, pid %d", t->ifname, ifindex,
		 vm->ns, vm->ns[0] ? "/" : "", vm->name, (int)vm->pid);
	return;
fail:
	d->attach_errors++;
	if (err != t->last_error)
		log_warn("cannot count tap %s of VM %s: %s%s", t->ifname, vm->name, strerror(-err),
			 err == -ENOSPC ? " (raise network.max_interfaces)"
			 : err == -EMFILE ? " (raise vmprobe's RLIMIT_NOFILE hard limit)" : "");
	t->last_error = err;
}

static void vm_sync(struct discovery *d, struct vm *vm, bool full)
{
	struct vm_priv *priv = (struct vm_priv *)(vm + 1);
	bool pending = false, fd_scan = full || priv->needs_sync;
	__u64 cookie;
	int err;

	for (int i = 0; i < vm->nr_taps; i++)
		pending |= vm->taps[i].slot < 0;
	/*
	 * A drive whose image is known but not yet open in QEMU is looked for
	 * at every rescan; unresolved drives, and drives whose fds have all
	 * gone, wait for a full sync.
	 */
	for (int i = 0; d->dp && i < vm->spec.nr_drives; i++)
		pending |= vm->drives[i].resolved && !vm->drives[i].had_fds;
	if (!fd_scan && !pending)
		return;
	priv->needs_sync = false;
	if (d->dp)
		drives_sync(d, vm);
	else
		scan_fds(d, vm);
	if (!d->np)
		return;

	err = netns_enter(priv->netns_fd);
	if (!err)
		err = netns_current_cookie(&cookie);
	if (err) {
		d->attach_errors++;
		log_warn("cannot enter the network namespace of VM %s (pid %d): %s", vm->name,
			 (int)vm->pid, strerror(-err));
	} else {
		for (int i = 0; i < vm->nr_taps; i++)
			tap_sync(d, vm, &vm->taps[i], cookie);
	}
	err = netns_enter(d->home_netns);
	if (err)
		log_error("cannot return to vmprobe's network namespace: %s", strerror(-err));
}

static struct vm *vm_new(struct discovery *d, pid_t pid, unsigned long long start_time)
{
	char path[PATH_MAX], *buf, cgroup[8192];
	struct vm_priv *priv;
	struct vm *vm;
	long n;
	int err;

	if (proc_path(d, path, sizeof(path), pid, "cmdline"))
		return NULL;
	buf = malloc(256 * 1024);
	vm = calloc(1, sizeof(*vm) + sizeof(*priv));
	if (!buf || !vm)
		goto fail;
	n = read_file(path, buf, 256 * 1024);
	if (n <= 0)
		goto fail;
	/* read_file() NUL-terminates; cmdline already ends in NUL. */
	err = qemu_parse_cmdline(buf, (size_t)n, &vm->spec);
	if (err)
		goto fail;
	vm->pid = pid;
	vm->start_time = start_time;
	snprintf(vm->pid_str, sizeof(vm->pid_str), "%d", (int)pid);
	cgroup[0] = '\0';
	if (!proc_path(d, path, sizeof(path), pid, "cgroup"))
		read_file(path, cgroup, sizeof(cgroup));
	vm_identity(vm->spec.name, cgroup, pid, vm->spec.uuid, vm->name, sizeof(vm->name), vm->ns,
		    sizeof(vm->ns));

	for (int i = 0; i < VM_MAX_DRIVES; i++)
		vm->drives[i].slot = -1;
	priv = (struct vm_priv *)(vm + 1);
	priv->needs_sync = true;
	priv->netns_fd = -1;
	if (!proc_path(d, path, sizeof(path), pid, "ns/net"))
		priv->netns_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (priv->netns_fd < 0)
		goto fail;
	if (d->np && net_host_vm_add(d->np, (__u32)pid)) {
		d->attach_errors++;
		log_warn("cannot count the host TCP sockets of VM %s (pid %d)", vm->name, (int)pid);
	}
	free(buf);
	log_info("found VM %s%s%s (pid %d, uuid %s)", vm->ns, vm->ns[0] ? "/" : "", vm->name,
		 (int)pid, vm->spec.uuid[0] ? vm->spec.uuid : "-");
	return vm;
fail:
	free(buf);
	free(vm);
	return NULL;
}

static void vm_free(struct discovery *d, struct vm *vm)
{
	struct vm_priv *priv = (struct vm_priv *)(vm + 1);
	bool attached = false;

	for (int i = 0; i < vm->nr_taps; i++)
		attached |= vm->taps[i].slot >= 0;
	if (attached && netns_enter(priv->netns_fd) == 0) {
		for (int i = 0; i < vm->nr_taps; i++)
			tap_forget(d, &vm->taps[i]);
		netns_enter(d->home_netns);
	} else if (attached) {
		/*
		 * Without its namespace, the taps and their clsact filters are
		 * gone. TCX links are fds of ours: closed here, wherever we are.
		 */
		for (int i = 0; i < vm->nr_taps; i++) {
			struct tap_state *t = &vm->taps[i];

			if (t->slot < 0)
				continue;
			if (t->att.tcx)
				tc_detach_pair(&t->att);
			net_tap_forget(d->np, t->netns_cookie, t->ifindex);
			net_slot_free(d->np, t->slot);
			t->slot = -1;
		}
	}
	if (d->dp)
		drives_forget(d, vm);
	if (d->np) {
		net_host_socks_set(d->np, (__u32)vm->pid, priv->socks, priv->nr_socks, NULL, 0);
		net_host_vm_del(d->np, (__u32)vm->pid);
	}
	free(priv->socks);
	if (priv->netns_fd >= 0)
		close(priv->netns_fd);
	free(vm);
}

void discovery_scan(struct discovery *d)
{
	char path[PATH_MAX], comm[64];
	bool full = d->gen % FULL_SYNC_EVERY == 0;
	double t0 = now_seconds();
	struct vm **pp, *vm;
	struct dirent *de;
	pid_t self = getpid();
	DIR *dir;

	pthread_mutex_lock(&d->lock);
	d->gen++;
	dir = opendir(d->cfg->proc_root);
	if (!dir) {
		log_error("cannot read %s: %s", d->cfg->proc_root, strerror(errno));
		goto out;
	}
	while ((de = readdir(dir))) {
		unsigned long long start_time;
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self)
			continue;
		if (proc_path(d, path, sizeof(path), (pid_t)pid, "comm") ||
		    read_file(path, comm, sizeof(comm)) <= 0 || !is_qemu_comm(comm))
			continue;
		if (read_start_time(d, (pid_t)pid, &start_time))
			continue;
		for (pp = &d->vms; *pp; pp = &(*pp)->next)
			if ((*pp)->pid == pid)
				break;
		vm = *pp;
		if (vm && vm->start_time != start_time) {
			/* A new process under an old PID: the old VM is gone. */
			*pp = vm->next;
			vm_free(d, vm);
			vm = NULL;
		}
		if (!vm) {
			vm = vm_new(d, (pid_t)pid, start_time);
			if (!vm)
				continue;
			vm->next = d->vms;
			d->vms = vm;
		}
		vm->seen_gen = d->gen;
		vm_sync(d, vm, full);
	}
	closedir(dir);

	/* Forget VMs that are gone: their taps are detached, their series end. */
	for (pp = &d->vms; *pp;) {
		vm = *pp;
		if (vm->seen_gen == d->gen) {
			pp = &vm->next;
			continue;
		}
		*pp = vm->next;
		log_info("VM %s (pid %d) is gone", vm->name, (int)vm->pid);
		vm_free(d, vm);
	}
out:
	d->scans++;
	d->last_scan_seconds = now_seconds() - t0;
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

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define _GNU_SOURCE
#include "core/netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71 /* Linux 5.14 */
#endif

int netns_enter(int fd)
{
	struct stat want, now;

	/* Already there (a VM in the host's namespace): setns would want CAP_SYS_ADMIN. */
	if (fstat(fd, &want) == 0 && stat("/proc/thread-self/ns/net", &now) == 0 &&
	    want.st_dev == now.st_dev && want.st_ino == now.st_ino)
		return 0;
	return setns(fd, CLONE_NEWNET) ? -errno : 0;
}

int netns_open_current(void)
{
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int netns_current_cookie(__u64 *cookie)
{
	socklen_t len = sizeof(*cookie);
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		err = -errno;
	close(fd);
	return err;
}

/* Namespaces seen so far by netns_foreach, by their nsfs inode. */
struct ns_seen {
	struct stat *st;
	size_t nr, cap;
};

/* Whether the namespace fd is on was seen; if not, it is now. */
static bool ns_seen_before(struct ns_seen *seen, int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		return true;
	for (size_t i = 0; i < seen->nr; i++)
		if (seen->st[i].st_dev == st.st_dev && seen->st[i].st_ino == st.st_ino)
			return true;
	if (array_reserve((void **)&seen->st, seen->nr, &seen->cap, sizeof(st)))
		return false; /* out of memory: entered again, which is harmless */
	seen->st[seen->nr++] = st;
	return false;
}

/*
 * fn in the namespace of each dir/NAME[/tail] not seen yet: the number
 * entered; *err: why a process directory (tail set) could not be read or
 * a namespace not entered (-errno).
 */
static int foreach_in(const char *dir, const char *tail, struct ns_seen *seen,
		      void (*fn)(void *arg), void *arg, int *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int entered = 0;

	if (!d) {
		/* No process directory is an error; no named namespace is not. */
		if (*tail)
			*err = -errno;
		return 0;
	}
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		int fd, e;

		if (de->d_name[0] == '.' || (*tail && (de->d_name[0] < '0' || de->d_name[0] > '9')))
			continue;
		snprintf(path, sizeof(path), "%s/%s%s", dir, de->d_name, tail);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			/*
			 * The process gone meanwhile, or one we may not look into
			 * (a sandbox's init): nor could a serve, which enters VMs'
			 * namespaces the same way.
			 */
			log_debug("cannot open %s: %s", path, strerror(errno));
			continue;
		}
		if (!ns_seen_before(seen, fd)) {
			e = netns_enter(fd);
			if (e) {
				*err = e;
				log_warn("cannot enter the network namespace of %s: %s", path,
					 strerror(-e));
			} else {
				fn(arg);
				entered++;
			}
		}
		close(fd);
	}
	closedir(d);
	return entered;
}

int netns_foreach(const char *proc_root, void (*fn)(void *arg), void *arg)
{
	struct ns_seen seen = { 0 };
	char named[PATH_MAX];
	int home = netns_open_current(), entered, err = 0, back;

	if (home < 0)
		return home;
	/* The thread's own first: entering it needs nothing. */
	ns_seen_before(&seen, home);
	fn(arg);
	entered = 1 + foreach_in(proc_root, "/ns/net", &seen, fn, arg, &err);
	/*
	 * Named ones (ip netns add) may have no process in them: as the host
	 * has them (its init's root, whatever this process's is), and ours.
	 */
	snprintf(named, sizeof(named), "%s/1/root/run/netns", proc_root);
	entered += foreach_in(named, "", &seen, fn, arg, &err);
	entered += foreach_in("/run/netns", "", &seen, fn, arg, &err);
	back = netns_enter(home);
	close(home);
	free(seen.st);
	return back ? back : err ? err : entered;
}

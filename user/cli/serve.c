// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "core/config.h"
#include "core/discovery.h"
#include "core/pin.h"
#include "core/server.h"
#include "core/util.h"

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && log_max_level < LOG_DEBUG)
		return 0;
	if (level != LIBBPF_WARN && log_max_level < LOG_DEBUG)
		return 0;
	fputs("vmprobe: libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

/* Link events in vmprobe's own namespace make a rescan happen at once. */
static int open_link_events(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void drain(int fd)
{
	char buf[8192];

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
}

/*
 * One `serve` per host: a second would attach a second set of filters to
 * every tap. It also holds the attach lock, so that no top or hist loads
 * filters of its own beside serve's. The locks go with the process,
 * however it ends.
 */
static int take_locks(int *serve_fd, int *attach_fd)
{
	char holder[32];

	*serve_fd = lock_take(SERVE_LOCK, holder, sizeof(holder));
	if (*serve_fd == -EBUSY)
		log_error("another vmprobe serve (pid %s) is running on this host; stop it first",
			  holder);
	else if (*serve_fd < 0)
		log_error("cannot lock %s: %s", SERVE_LOCK, strerror(-*serve_fd));
	if (*serve_fd < 0)
		return *serve_fd;
	*attach_fd = lock_take(ATTACH_LOCK, holder, sizeof(holder));
	if (*attach_fd == -EBUSY)
		log_error("a vmprobe top or hist (pid %s) has probes of its own attached; "
			  "stop it first", holder);
	else if (*attach_fd < 0)
		log_error("cannot lock %s: %s", ATTACH_LOCK, strerror(-*attach_fd));
	if (*attach_fd < 0) {
		close(*serve_fd);
		return *attach_fd;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vmprobe serve [-c FILE] [--listen ADDR:PORT]\n"
		   "  -c, --config FILE   YAML applied over the embedded default\n"
		   "  -l, --listen ADDR   e.g. :19472, 127.0.0.1:19472, [::1]:19472\n");
}

int do_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *cfg_path = NULL, *listen = NULL;
	struct probe_set probes = {};
	struct server *srv = NULL;
	struct discovery d;
	struct config cfg;
	struct pollfd pfd[2];
	sigset_t mask;
	int opt, sfd = -1, lfd, err, ret = EXIT_FAIL, lock_fd, attach_fd;
	bool disc = false, pinned = false;

	while ((opt = getopt_long(argc, argv, "c:l:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cmd_load_config(&cfg, cfg_path))
		return EXIT_USAGE;
	if (listen) {
		char host[128];
		unsigned port;

		if (config_parse_listen(listen, host, sizeof(host), &port)) {
			fprintf(stderr, "vmprobe: --listen '%s' is not HOST:PORT, :PORT or [V6]:PORT\n",
				listen);
			return EXIT_USAGE;
		}
		snprintf(cfg.listen, sizeof(cfg.listen), "%s", listen);
	}
	log_max_level = cfg.log_level;
	libbpf_set_print(libbpf_log);
	if (take_locks(&lock_fd, &attach_fd))
		return EXIT_FAIL;

	/* Signals are read from a signalfd by the main loop, not by handlers. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		close(attach_fd);
		close(lock_fd);
		return EXIT_FAIL;
	}

	err = probes_open(&probes, &cfg, PROBE_SERVE);
	if (err)
		goto cleanup;
	err = discovery_init(&d, &cfg, &probes);
	if (err) {
		log_error("discovery: %s", strerror(-err));
		goto cleanup;
	}
	disc = true;
	pinned = pins_create(&probes) == 0;
	discovery_scan(&d);
	if (pinned)
		state_write(&d);
	srv = server_start(cfg.listen, &d);
	if (!srv)
		goto cleanup;

	lfd = open_link_events();
	if (lfd < 0)
		log_warn("no netlink link events (%s): relying on rescans", strerror(-lfd));
	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	for (;;) {
		int n = poll(pfd, lfd >= 0 ? 2 : 1, (int)cfg.rescan_interval_ms);

		if (n < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			break;
		}
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				log_info("signal %u: detaching and exiting", si.ssi_signo);
				ret = EXIT_OK;
				break;
			}
		}
		if (n > 0 && lfd >= 0 && (pfd[1].revents & POLLIN))
			drain(lfd);
		discovery_scan(&d);
		/* The CLI (top, hist) reads serve's counters through this table. */
		if (pinned)
			state_write(&d);
	}
	if (lfd >= 0)
		close(lfd);
cleanup:
	if (pinned)
		pins_remove();
	server_stop(srv);
	if (disc)
		discovery_fini(&d);
	probes_close(&probes);
	if (sfd >= 0)
		close(sfd);
	close(attach_fd);
	close(lock_fd);
	return ret;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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
#include "core/proc_events.h"
#include "core/server.h"
#include "core/util.h"

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
	char holder[LOCK_HOLDER_MAX];

	*serve_fd = lock_take(SERVE_LOCK, holder, sizeof(holder));
	if (*serve_fd == -EBUSY)
		log_error("another vmprobe serve (pid %s) is running on this host; stop it first",
			  holder);
	else if (*serve_fd < 0)
		log_error("cannot lock %s: %s%s", SERVE_LOCK, strerror(-*serve_fd), holder);
	if (*serve_fd < 0)
		return *serve_fd;
	*attach_fd = lock_take(ATTACH_LOCK, holder, sizeof(holder));
	if (*attach_fd == -EBUSY)
		log_error("a vmprobe top or hist (pid %s) has probes of its own attached; "
			  "stop it first", holder);
	else if (*attach_fd < 0)
		log_error("cannot lock %s: %s%s", ATTACH_LOCK, strerror(-*attach_fd), holder);
	if (*attach_fd < 0) {
		close(*serve_fd);
		return *attach_fd;
	}
	return 0;
}

enum { OPT_WEB_CONFIG = CMD_LONG_ONLY, OPT_MAX_REQUESTS, OPT_PERSIST, OPT_CLEANUP };

static const struct cmd_opt serve_opts[] = {
	{ .name = "config", .key = 'c', .arg = "FILE",
	  .help = "YAML applied over the embedded default (vmprobe config default prints it)",
	  .complete = CMP_FILE },
	{ .name = "listen", .key = 'l', .arg = "ADDR:PORT",
	  .help = "where to serve, e.g. :19472, 127.0.0.1:19472, [::1]:19472 (the "
		  "configuration's listen)" },
	{ .name = "web.config.file", .key = OPT_WEB_CONFIG, .arg = "FILE",
	  .help = "TLS and basic authentication, in the format of Prometheus' exporter-toolkit",
	  .complete = CMP_FILE },
	{ .name = "web.max-requests", .key = OPT_MAX_REQUESTS, .arg = "N",
	  .help = "connections served at once (default 40); more wait, so that many clients "
		  "cannot starve a scrape" },
	{ .name = "persist", .key = OPT_PERSIST,
	  .help = "programs and counters outlive serve, still counting, for the next serve to "
		  "adopt (the configuration's persist: true)" },
	{ .name = "cleanup", .key = OPT_CLEANUP,
	  .help = "remove every program, link and pin at exit (the configuration's persist: "
		  "false)" },
	{ NULL },
};

struct serve_opts {
	const char *cfg_path, *listen, *web_config;
	long max_requests;
	int persist; /* -1: as the configuration says */
};

static bool serve_opt(const struct cmd_opt *o, const char *val, void *ctx)
{
	struct serve_opts *so = ctx;
	char host[128];
	unsigned port;

	switch (o->key) {
	case 'c':
		so->cfg_path = val;
		return true;
	case OPT_PERSIST:
	case OPT_CLEANUP:
		so->persist = o->key == OPT_PERSIST;
		return true;
	case OPT_WEB_CONFIG:
		so->web_config = val;
		return true;
	case OPT_MAX_REQUESTS:
		return cmd_count(o, val, 1, 100000, &so->max_requests);
	default:
		so->listen = val;
		return !config_parse_listen(val, host, sizeof(host), &port) ||
		       cmd_bad_value(o, val, "is not HOST:PORT, :PORT or [V6]:PORT");
	}
}

/*
 * Parses serve's options into cfg, the web configuration (*web_path: the
 * file of one that was given and is good, else NULL) and the connection
 * cap; CMD_GO to go on, else the exit code.
 */
static int serve_options(int argc, char **argv, struct config *cfg, struct web_config *web,
			 const char **web_path, unsigned *max_requests)
{
	struct serve_opts o = { .max_requests = 40, .persist = -1 };
	int first, ret = cmd_parse(&cmd_serve, argc, argv, serve_opt, &o, &first);

	if (ret != CMD_GO)
		return ret;
	*max_requests = (unsigned)o.max_requests;
	/* Checked before anything is attached: a bad file changes nothing. */
	if (o.web_config && web_config_load(web, o.web_config, stderr))
		return EXIT_USAGE;
	*web_path = o.web_config;
	if (cmd_load_config(cfg, o.cfg_path))
		return EXIT_USAGE;
	if (o.listen)
		snprintf(cfg->listen, sizeof(cfg->listen), "%s", o.listen);
	if (o.persist >= 0)
		cfg->persist = o.persist;
	return CMD_GO;
}

/*
 * Signals are read from a signalfd by the main loop, not by handlers.
 * Every signal that would end serve by default ends it the same way:
 * detached (a terminal closing sends SIGHUP to a serve run by hand).
 */
static int signals_fd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &mask, SFD_CLOEXEC);
}

enum { POLL_SIGNAL, POLL_LINK, POLL_PROC, POLL_PROBES };

/* Milliseconds until `at` (now_seconds() clock), at least 0, at most `cap`. */
static int ms_until(double at, int cap)
{
	double ms = (at - now_seconds()) * 1e3;

	return ms <= 0 ? 0 : ms < cap ? (int)ms + 1 : cap;
}

struct serve_state {
	struct probe_set probes;
	struct discovery d;
	struct proc_events events, *pe; /* pe: NULL without them */
	bool process_hooks; /* wanted by the caller (serve, not uninstall) */
	bool disc;   /* d is initialised */
	bool pinned; /* a probe pins its maps: the CLI reads them through the state file */
	bool unpinned; /* a probe could not pin (no bpffs): tried again every PIN_RETRY_S */
	double next_pin_try; /* now_seconds() */
	int lock_fd, attach_fd;
};

/* Removes the pins of probes this serve does not run, or of older versions. */
static void tidy_pins(const struct probe_set *ps)
{
	const char *names[2 * PROBE_MAX];
	unsigned n = 0;

	for (unsigned i = 0; i < ps->nr; i++)
		names[n++] = ps->probes[i].ops->name;
	/* A down probe's pins wait for it: it adopts them when it loads. */
	for (unsigned i = 0; i < ps->nr_down; i++)
		names[n++] = ps->down[i].ops->name;
	if (probes_pinned(ps, false))
		pins_tidy(names, n);
}

/* Pins what loaded while bpffs could not be used; its failures were said once (pins_prepare). */
static void pins_try(struct serve_state *st)
{
	bool was = st->pinned;

	st->unpinned = probes_pin_late(&st->probes) != 0;
	st->pinned = probes_pinned(&st->probes, false);
	if (st->pinned && !was) {
		log_info("maps pinned under %s: top and hist read serve's counters now", PIN_DIR);
		tidy_pins(&st->probes);
	}
	st->next_pin_try = now_seconds() + PIN_RETRY_S;
}

/* The process event hooks, unless the configuration turns them off; NULL without them. */
static struct proc_events *events_open(struct proc_events *pe, struct discovery *d)
{
	if (!d->cfg->process_events) {
		log_info("process events off (discovery.process_events): VMs are found by rescans "
			 "of /proc every %u ms", d->cfg->rescan_interval_ms);
		return NULL;
	}
	/* Said once already (probes_open): opened when the BTF is back. */
	if (d->probes->no_btf)
		return NULL;
	return proc_events_open(pe, d) ? NULL : pe;
}

/*
 * Probes that loaded late join as if opened at start: each VM synced at
 * once claims what an earlier serve counted for it, the rest is released.
 * Their pins are made with them (or by pins_try); the events hooks come
 * with the BTF.
 */
static void probes_retried(struct serve_state *st)
{
	struct discovery *d = &st->d;

	if (!discovery_probes_retry(d))
		return;
	discovery_scan(d);
	probes_adopted(&st->probes, d);
	st->pinned = probes_pinned(&st->probes, false);
	st->unpinned = true; /* unless it pinned as it loaded: the next pins_try says */
	if (!st->pe && st->process_hooks && d->cfg->process_events && !st->probes.no_btf)
		st->pe = events_open(&st->events, d);
}

/*
 * The poll fds of the process events and of each probe (a probe that
 * loaded late brings its own); the timeout shortened to the next rescan
 * process events ask for. How many fds.
 */
static nfds_t poll_fill(struct serve_state *st, struct pollfd *pfd, int *timeout)
{
	struct probe_set *ps = st->d.probes;
	int rescan = st->pe ? proc_events_rescan(st->pe) : -1;

	pfd[POLL_PROC] = (struct pollfd){ .fd = st->pe ? proc_events_fd(st->pe) : -1,
					  .events = POLLIN };
	for (unsigned i = 0; i < ps->nr; i++)
		pfd[POLL_PROBES + i] = (struct pollfd){
			.fd = ps->probes[i].ops->event_fd ? ps->probes[i].ops->event_fd(&ps->probes[i]) : -1,
			.events = POLLIN,
		};
	if (rescan >= 0 && rescan < *timeout)
		*timeout = rescan;
	return POLL_PROBES + ps->nr;
}

/* What serve does after every wake-up, scan or not. */
static void serve_chores(struct serve_state *st, unsigned *trimmed_gen)
{
	struct discovery *d = &st->d;

	if (d->probes->nr_down)
		probes_retried(st);
	if (st->unpinned && now_seconds() >= st->next_pin_try)
		pins_try(st);
	if (st->pe)
		proc_events_watch(st->pe);
	/* The CLI (top, hist) reads serve's counters through this table. */
	if (st->pinned)
		state_write(d);
	/*
	 * A VM came or went: the free pages inside the heaps go back. Holes
	 * a gone VM leaves between chunks that live on would otherwise stay
	 * resident, and RSS creep up with the churn.
	 */
	if (d->table_gen != *trimmed_gen) {
		*trimmed_gen = d->table_gen;
		malloc_trim(0);
	}
}

/*
 * Rescans /proc at every interval, and at once on link events and when a
 * probe wants a VM synced; follows process events (st->pe) in between, and
 * tries again the probes that could not load. Returns on SIGINT or SIGTERM
 * (EXIT_OK).
 */
static int serve_loop(struct serve_state *st, int sfd)
{
	struct discovery *d = &st->d;
	struct probe_set *ps = d->probes;
	struct pollfd pfd[POLL_PROBES + PROBE_MAX];
	int lfd = open_link_events(), ret = EXIT_FAIL, interval = (int)d->cfg->rescan_interval_ms;
	double next_scan = now_seconds() + interval / 1e3;
	unsigned trimmed_gen = d->table_gen;
	struct proc_events *pe;

	if (lfd < 0)
		log_warn("no netlink link events (%s): relying on rescans", strerror(-lfd));
	pfd[POLL_SIGNAL] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[POLL_LINK] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	for (;;) {
		struct signalfd_siginfo si;
		int timeout = ms_until(next_scan, interval);
		nfds_t nfds;
		bool scan;
		int n;

		/* Before the poll: it may shorten the timeout poll is given. */
		nfds = poll_fill(st, pfd, &timeout);
		pe = st->pe;
		n = poll(pfd, nfds, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			break;
		}
		if (n > 0 && (pfd[POLL_SIGNAL].revents & POLLIN) &&
		    read(sfd, &si, sizeof(si)) == sizeof(si)) {
			log_info("signal %u: %s", si.ssi_signo,
				 probes_pinned(ps, true) ? "leaving the programs counting for the next serve"
				 : d->cfg->persist ? "detaching and exiting (nothing was pinned to persist)"
						   : "detaching and exiting");
			ret = EXIT_OK;
			break;
		}
		scan = now_seconds() >= next_scan;
		if (n > 0 && (pfd[POLL_LINK].revents & POLLIN)) {
			drain(lfd);
			scan = true;
		}
		if (n > 0 && (pfd[POLL_PROC].revents & POLLIN))
			proc_events_read(pe);
		for (unsigned i = 0; n > 0 && i < ps->nr; i++)
			if (pfd[POLL_PROBES + i].revents & POLLIN) {
				ps->probes[i].ops->events(&ps->probes[i], d);
				scan = true;
			}
		if (scan) {
			discovery_scan(d);
			next_scan = now_seconds() + interval / 1e3;
		}
		serve_chores(st, &trimmed_gen);
	}
	if (lfd >= 0)
		close(lfd);
	return ret;
}

struct serve_state *serve_begin(struct config *cfg, bool process_hooks)
{
	struct serve_state *st = calloc(1, sizeof(*st));
	int err;

	if (!st || take_locks(&st->lock_fd, &st->attach_fd)) {
		free(st);
		return NULL;
	}
	/* probes_open says why it fails itself, naming the probe and what it lacks. */
	err = probes_open(&st->probes, cfg, PROBE_SERVE);
	if (!err && (err = discovery_init(&st->d, cfg, &st->probes)))
		log_error("cannot start: reading this process's network namespace: %s",
			  strerror(-err));
	if (err) {
		serve_finish(st, cfg->persist);
		return NULL;
	}
	st->disc = true;
	st->process_hooks = process_hooks;
	st->pinned = probes_pinned(&st->probes, false);
	/* Probes that could not pin (no bpffs yet) are tried again, quietly (said once). */
	st->unpinned = true;
	st->next_pin_try = now_seconds() + PIN_RETRY_S;
	tidy_pins(&st->probes);
	/* Hooks first: a VM that starts during the first scan is not missed. */
	st->pe = process_hooks ? events_open(&st->events, &st->d) : NULL;
	/* The first scan: each VM claims what an earlier serve counted for it. */
	discovery_scan(&st->d);
	probes_adopted(&st->probes, &st->d);
	if (st->pe)
		proc_events_watch(st->pe);
	if (st->pinned)
		state_write(&st->d);
	return st;
}

void serve_finish(struct serve_state *st, bool persist)
{
	if (persist)
		probes_keep(&st->probes);
	if (st->pe)
		proc_events_close(st->pe);
	if (st->disc)
		discovery_fini(&st->d);
	probes_close(&st->probes);
	if (!persist && st->pinned && pins_remove_all())
		log_warn("cannot remove %s: %s", PIN_DIR, strerror(errno));
	if (st->pinned)
		unlink(STATE_PATH);
	close(st->attach_fd);
	close(st->lock_fd);
	free(st);
}

static int do_serve(int argc, char **argv)
{
	struct serve_state *st = NULL;
	struct server *srv = NULL;
	struct web_config web = {};
	struct server_opts so = {};
	struct config cfg;
	int sfd, ret;

	ret = serve_options(argc, argv, &cfg, &web, &so.web_path, &so.max_connections);
	if (ret != CMD_GO) {
		web_config_free(&web);
		return ret;
	}
	ret = EXIT_FAIL;
	log_max_level = cfg.log_level;
	log_format = cfg.log_format;
	/*
	 * What a VM takes is large (its struct vm alone 127 KiB; libvirt's
	 * state, the command line's parse) and so are a scrape's buffers:
	 * from mmap, given back when freed. glibc's own threshold rises to
	 * each size freed, after which they come from the heaps, which VMs
	 * coming and going leave holed: RSS crept up by 100-400 kB steps in
	 * the churn soak.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	sfd = signals_fd();
	if (sfd < 0)
		log_error("signalfd: %s", strerror(errno));
	else
		st = serve_begin(&cfg, true);
	if (st) {
		so.listen = cfg.listen;
		so.web = so.web_path ? &web : NULL;
		srv = server_start(&so, &st->d);
	}
	if (srv)
		ret = serve_loop(st, sfd);
	server_stop(srv);
	if (st)
		serve_finish(st, cfg.persist);
	if (sfd >= 0)
		close(sfd);
	web_config_free(&web);
	return ret;
}

const struct cmd cmd_serve = {
	.name = "serve",
	.fn = do_serve,
	.summary = "serve /metrics and /healthz to Prometheus",
	.about = "Finds the QEMU VMs on this host, attaches the probes to their taps and drives, and "
		 "serves /metrics (Prometheus text, OpenMetrics or protobuf, as Accept asks), /healthz "
		 "(ok; no password needed) and a landing page / on the configuration's listen "
		 "address (default :19472). One serve runs per host; top and hist read its "
		 "counters. SIGINT, SIGTERM, SIGHUP and SIGQUIT detach everything and exit 0; with "
		 "persist, programs and counters are left counting, however serve ends, and the next serve "
		 "of the same map layout adopts them: no count lost, no counter reset.",
	.opts = serve_opts,
};

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vmprobe uninstall: removes for good what a persistent serve left
 * attached and pinned (programs, links, filters, counters), as a serve
 * without persist would at its exit: it adopts them, claims them VM by VM
 * (finding the taps in their network namespaces), then detaches all.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "core/config.h"
#include "core/pin.h"
#include "core/probe.h"
#include "core/util.h"

static const struct cmd_opt uninstall_opts[] = {
	{ .name = "config", .key = 'c', .arg = "FILE",
	  .help = "serve's configuration (where the host's /proc is, the map sizes)",
	  .complete = CMP_FILE },
	{ NULL },
};

static bool uninstall_opt(const struct cmd_opt *o, const char *val, void *path)
{
	*(const char **)path = val; /* -c: the only option */
	return true;
}

/*
 * What the probes left attached beyond their pins (clsact filters of a
 * serve that lost their pins): removed, and said. False if a sweep failed.
 */
static bool sweep_all(const struct config *cfg, int *total)
{
	char holder[LOCK_HOLDER_MAX];
	bool ok = true;
	/* A top or hist with probes of its own holds it: its filters are vmprobe's too. */
	int lock = lock_take(ATTACH_LOCK, holder, sizeof(holder));

	*total = 0;
	if (lock == -EBUSY)
		fprintf(stderr, "vmprobe: a vmprobe top, hist or serve (pid %s) has probes "
			"attached; stop it first\n", holder);
	else if (lock < 0)
		fprintf(stderr, "vmprobe: cannot lock %s: %s%s\n", ATTACH_LOCK, strerror(-lock),
			holder);
	if (lock < 0)
		return false;
	for (size_t i = 0; i < probe_registry_len; i++) {
		const struct probe_ops *ops = probe_registry[i];
		int n = ops->sweep ? ops->sweep(cfg) : 0;

		if (n < 0) {
			fprintf(stderr, "vmprobe: the %s probe: looking for what it left attached "
				"failed (%s)\n", ops->title, strerror(-n));
			ok = false;
		} else if (n > 0) {
			printf("the %s probe: removed %d filter%s left attached that no pin led to\n",
			       ops->title, n, n == 1 ? "" : "s");
			*total += n;
		}
	}
	close(lock);
	return ok;
}

static int do_uninstall(int argc, char **argv)
{
	const char *path = NULL;
	struct serve_state *st;
	struct config cfg;
	bool swept_ok;
	int swept, first, ret = cmd_parse(&cmd_uninstall, argc, argv, uninstall_opt, &path, &first);

	if (ret != CMD_GO)
		return ret;
	if (cmd_load_config(&cfg, path))
		return EXIT_USAGE;
	log_max_level = cfg.log_level < LOG_WARN ? cfg.log_level : LOG_WARN;
	log_format = cfg.log_format;
	/* Every probe, whatever the configuration runs: each may have left pins. */
	cfg.net_enabled = cfg.disk_enabled = true;
	cfg.persist = false;
	/* A serve that ran (however it ended) left pins: none, no probe to load for them. */
	if (!pins_exist() && !serve_running()) {
		if (!sweep_all(&cfg, &swept))
			return EXIT_FAIL;
		printf(swept ? "removed what vmprobe serve left on this host\n"
			     : "nothing of vmprobe serve was left on this host\n");
		return EXIT_OK;
	}
	st = serve_begin(&cfg, false);
	if (!st)
		return EXIT_FAIL;
	serve_finish(st, false);
	swept_ok = sweep_all(&cfg, &swept);
	if (pins_exist()) {
		fprintf(stderr, "vmprobe: %s could not be removed entirely (see above)\n", PIN_DIR);
		return EXIT_FAIL;
	}
	if (!swept_ok)
		return EXIT_FAIL;
	printf("removed what vmprobe serve left on this host\n");
	return EXIT_OK;
}

const struct cmd cmd_uninstall = {
	.name = "uninstall",
	.fn = do_uninstall,
	.summary = "remove what a persistent serve left on this host",
	.about = "Removes every program, link, TC filter (in every VM's network namespace) and "
		 "counter that vmprobe serve left on this host (persist: true keeps them across "
		 "restarts), and its pins under " PIN_DIR ". Then looks in every network "
		 "namespace of the host's processes and /run/netns for clsact filters of "
		 "vmprobe's that no pin led to (a serve that lost track of them) and removes "
		 "them too. vmprobe serve must not be running.",
	.opts = uninstall_opts,
};

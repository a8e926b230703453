// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vmprobe config: validate or show the configuration; and what every command shares. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "core/config.h"

int cmd_load_config(struct config *cfg, const char *path)
{
	int err = config_load_default(cfg);

	if (err) {
		fprintf(stderr, "vmprobe: the embedded default configuration is invalid\n");
		return err;
	}
	return path ? config_apply_file(cfg, path, stderr) : 0;
}

int cmd_options(int argc, char **argv, const char *shorts, const struct option *longs,
		void (*usage)(FILE *), int nargs, bool (*on_opt)(int opt, void *ctx), void *ctx,
		bool *done)
{
	int opt;

	*done = true;
	while ((opt = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return EXIT_OK;
		}
		if (opt == '?' || !on_opt(opt, ctx)) {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != nargs) {
		usage(stderr);
		return EXIT_USAGE;
	}
	*done = false;
	return EXIT_OK;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vmprobe config check FILE   validate a configuration file\n"
		   "       vmprobe config default      print the embedded default\n");
}

int do_config(int argc, char **argv)
{
	struct config cfg;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc == 2 && strcmp(argv[1], "default") == 0) {
		fputs(config_default_yaml, stdout);
		return EXIT_OK;
	}
	if (argc != 3 || strcmp(argv[1], "check") != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cmd_load_config(&cfg, argv[2]))
		return EXIT_USAGE;
	printf("%s: ok\n", argv[2]);
	return EXIT_OK;
}

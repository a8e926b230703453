// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vmprobe: per-VM network and disk IO of a KVM/QEMU host, for Prometheus. */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "version.h"

static int do_version(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: vmprobe version\n  Prints the version of this build.\n");
		return EXIT_OK;
	}
	printf("vmprobe %s (revision %s)\n", VMPROBE_VERSION, VMPROBE_REVISION);
	return EXIT_OK;
}

static int do_help(int argc, char **argv);

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "serve", do_serve, "serve [-c FILE] [--listen ADDR:PORT]   serve /metrics" },
	{ "check", do_check, "check [--json]                         can vmprobe run here?" },
	{ "list", do_list, "list [--json]                          the VMs, their taps and drives" },
	{ "top", do_top, "top [-d S] [-n N] [-b] [--sort FIELD]  per-VM rates, live" },
	{ "hist", do_hist, "hist VM [--disk D | --net IF] [-i S]   log2 histograms of a VM" },
	{ "metrics", do_metrics, "metrics [--markdown]                   every metric family, described" },
	{ "config", do_config, "config check FILE | default           validate or show config" },
	{ "version", do_version, "version                                print the version" },
	{ "help", do_help, "help                                   this text" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vmprobe COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %s\n", cmds[i].help);
	fprintf(f, "\n'vmprobe COMMAND --help' describes a command.\n");
}

static int do_help(int argc, char **argv)
{
	usage(stdout);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return do_help(argc - 1, argv + 1);
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))
		return do_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "vmprobe: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}

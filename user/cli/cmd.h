/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* CLI commands: one file per noun, dispatched from main.c's table. */
#ifndef VMPROBE_CMD_H
#define VMPROBE_CMD_H

#include <stdbool.h>
#include <stdio.h>

/* Exit codes that mean something to a script. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,  /* the command ran and failed */
	EXIT_USAGE = 2, /* bad arguments or configuration */
	EXIT_CANNOT_RUN = 3, /* check: something required is missing */
};

int do_serve(int argc, char **argv);
int do_config(int argc, char **argv);
int do_check(int argc, char **argv);
int do_list(int argc, char **argv);
int do_hist(int argc, char **argv);
int do_top(int argc, char **argv);
int do_metrics(int argc, char **argv);

/* Loads the embedded default and, if path is set, a file over it. */
struct config;
int cmd_load_config(struct config *cfg, const char *path);

/*
 * A command's options: getopt_long over argv, each option but --help
 * handed to on_opt (false: a bad option or value), then exactly `nargs`
 * operands must remain (from optind). EXIT_OK to go on; otherwise what
 * the command returns: EXIT_OK after --help printed its usage on stdout,
 * EXIT_USAGE after usage went to stderr. *done says which.
 */
struct option;
int cmd_options(int argc, char **argv, const char *shorts, const struct option *longs,
		void (*usage)(FILE *), int nargs, bool (*on_opt)(int opt, void *ctx), void *ctx,
		bool *done);

#endif

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vmprobe metrics: every family vmprobe can expose, from the descriptions
 * the renderer uses (core/expo.h); --markdown prints the README's table.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "core/metrics.h"

static void print_row(const struct expo_family *f, bool markdown)
{
	if (!markdown) {
		printf("%-48s %-9s %-27s %s\n", f->name, expo_type_names[f->type],
		       f->labels[0] ? f->labels : "-", f->help);
		return;
	}
	printf("| `%s` | %s | %s%s%s | %s |\n", f->name, expo_type_names[f->type],
	       f->labels[0] ? "`" : "", f->labels, f->labels[0] ? "`" : "", f->help);
}

static int print_list(const struct family_list *l, void *arg)
{
	const bool *markdown = arg;

	for (size_t i = 0; i < l->nr; i++)
		print_row(&l->families[i], *markdown);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vmprobe metrics [--markdown]\n"
		   "  Lists every metric family vmprobe can expose: name, type, labels\n"
		   "  and help text.\n"
		   "  -m, --markdown   as a Markdown table (the README's)\n");
}

static bool metrics_opt(int opt, void *markdown)
{
	*(bool *)markdown = true; /* -m: the only option */
	return true;
}

int do_metrics(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "markdown", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	bool markdown = false, done;
	int ret = cmd_options(argc, argv, "mh", longopts, usage, 0, metrics_opt, &markdown, &done);

	if (done)
		return ret;
	if (markdown)
		printf("| metric | type | labels | meaning |\n|---|---|---|---|\n");
	metrics_families(print_list, &markdown);
	return EXIT_OK;
}

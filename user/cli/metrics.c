// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vmprobe metrics: every family vmprobe can expose, from the descriptions
 * the renderer uses (core/expo.h); --markdown prints the README's table.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "core/metrics.h"

static void print_row(const struct expo_family *f, bool markdown)
{
	const char *off = f->off_by_default ? " Off by default (exposition.enabled_families)." : "";

	if (!markdown) {
		printf("%-48s %-9s %-27s %s%s\n", f->name, expo_type_names[f->type],
		       f->labels[0] ? f->labels : "-", f->help, off);
		return;
	}
	printf("| `%s` | %s | %s%s%s | %s%s |\n", f->name, expo_type_names[f->type],
	       f->labels[0] ? "`" : "", f->labels, f->labels[0] ? "`" : "", f->help, off);
}

static int print_list(const struct family_list *l, void *arg)
{
	const bool *markdown = arg;

	for (size_t i = 0; i < l->nr; i++)
		print_row(&l->families[i], *markdown);
	return 0;
}

static const char *const metrics_formats[] = { "text", "markdown", NULL };

static const struct cmd_opt metrics_opts[] = {
	{ .name = "output", .key = 'o', .arg = "FORMAT",
	  .help = "text (the default) or markdown: the README's table", .values = metrics_formats,
	  .complete = CMP_WORDS },
	{ .name = "markdown", .key = 'm', .help = "the same as -o markdown" },
	{ NULL },
};

static bool metrics_opt(const struct cmd_opt *o, const char *val, void *markdown)
{
	int i = 1;

	if (o->key == 'o' && !cmd_choice(o, val, &i))
		return false;
	*(bool *)markdown = i == 1;
	return true;
}

static int do_metrics(int argc, char **argv)
{
	bool markdown = false;
	int first, ret = cmd_parse(&cmd_metrics, argc, argv, metrics_opt, &markdown, &first);

	if (ret != CMD_GO)
		return ret;
	if (markdown)
		printf("| metric | type | labels | meaning |\n|---|---|---|---|\n");
	metrics_families(print_list, &markdown);
	return EXIT_OK;
}

const struct cmd cmd_metrics = {
	.name = "metrics",
	.fn = do_metrics,
	.summary = "every metric family vmprobe can expose, described",
	.about = "Lists every metric family vmprobe can expose: name, type, labels and help "
		 "text, from the descriptions serve renders /metrics from.",
	.opts = metrics_opts,
};

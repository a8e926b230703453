// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What every command shares: the command table, options parsed from each
 * command's table, --help written from it, errors that name the bad
 * value; and the two commands with nothing of their own, help and version.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "version.h"

const struct cmd *const cmd_table[] = {
	&cmd_serve,  &cmd_check,     &cmd_list,    &cmd_top,  &cmd_hist,    &cmd_metrics,
	&cmd_config, &cmd_uninstall, &cmd_version, &cmd_help, &cmd_options,
};
const unsigned cmd_table_len = sizeof(cmd_table) / sizeof(cmd_table[0]);

/* --help's width, and where option help starts. */
#define WIDTH 79
#define HELP_COL 24

static const struct cmd_opt help_opt = { .name = "help", .key = 'h',
					 .help = "print this help and exit" };

const struct cmd_opt *cmd_opt_at(const struct cmd *c, int i)
{
	int n = 0;

	while (c->opts && c->opts[n].name)
		n++;
	return i < n ? &c->opts[i] : i == n ? &help_opt : NULL;
}

/*
 * Prints text from column col, wrapped at WIDTH, later lines from column
 * indent; a [...] group never breaks.
 */
static void wrap(FILE *f, const char *text, int col, int indent)
{
	bool line_start = true;
	const char *p = text;

	while (*p) {
		const char *end = p;
		int depth = 0, len;

		while (*end && (depth || *end != ' ')) {
			depth += *end == '[' ? 1 : *end == ']' && depth ? -1 : 0;
			end++;
		}
		len = (int)(end - p);
		if (!line_start && col + 1 + len > WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (!line_start) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", len, p);
		col += len;
		line_start = false;
		p = end;
		while (*p == ' ')
			p++;
	}
	fputc('\n', f);
}

void cmd_synopsis(const struct cmd *c, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "vmprobe %s", c->name);

	for (const struct cmd_opt *o = c->opts; o && o->name && n < size; o++) {
		if (o->key < CMD_LONG_ONLY)
			n += (size_t)snprintf(buf + n, size - n, " [-%c%s%s]", o->key, o->arg ? " " : "",
					      o->arg ? o->arg : "");
		else
			n += (size_t)snprintf(buf + n, size - n, " [--%s%s%s]", o->name,
					      o->arg ? " " : "", o->arg ? o->arg : "");
	}
	if (c->operands && n < size)
		snprintf(buf + n, size - n, " %s", c->operands);
}

static void usage_line(const struct cmd *c, FILE *f)
{
	char syn[512];

	cmd_synopsis(c, syn, sizeof(syn));
	fputs("usage: ", f);
	wrap(f, syn, 7, 8 + (int)strlen(c->name) + 8);
}

static void opt_usage(const struct cmd_opt *o, FILE *f)
{
	char label[64], help[512];
	int n;

	if (o->key < CMD_LONG_ONLY)
		n = snprintf(label, sizeof(label), "  -%c, --%s%s%s", o->key, o->name,
			     o->arg ? " " : "", o->arg ? o->arg : "");
	else
		n = snprintf(label, sizeof(label), "      --%s%s%s", o->name, o->arg ? " " : "",
			     o->arg ? o->arg : "");
	n = snprintf(help, sizeof(help), "%s", o->help);
	for (const char *const *v = o->values; v && *v; v++)
		n += snprintf(help + n, sizeof(help) - (size_t)n, "%s%s%s%s",
			      v == o->values ? " (" : ", ", v == o->values ? o->arg : "",
			      v == o->values ? ": " : "", *v);
	if (o->values)
		snprintf(help + n, sizeof(help) - (size_t)n, ")");
	if (strlen(label) + 2 > HELP_COL) {
		fprintf(f, "%s\n%*s", label, HELP_COL, "");
		wrap(f, help, HELP_COL, HELP_COL);
	} else {
		fprintf(f, "%-*s", HELP_COL, label);
		wrap(f, help, HELP_COL, HELP_COL);
	}
}

void cmd_usage(const struct cmd *c, FILE *f)
{
	const struct cmd_opt *o;
	char para[1024];
	const char *p, *nl;

	usage_line(c, f);
	/* about: paragraphs separated by '\n', each wrapped. */
	for (p = c->about; p && *p; p = *nl ? nl + 1 : nl) {
		nl = strchrnul(p, '\n');
		snprintf(para, sizeof(para), "%.*s", (int)(nl - p), p);
		fputs("  ", f);
		wrap(f, para, 2, 2);
	}
	fputs("options:\n", f);
	cmd_for_each_opt(o, c, i)
		opt_usage(o, f);
}

/* An error in the arguments: what is wrong, then the synopsis; EXIT_USAGE. */
static int usage_error(const struct cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int usage_error(const struct cmd *c, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fputs("vmprobe: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	usage_line(c, stderr);
	fprintf(stderr, "'vmprobe %s --help' says more.\n", c->name);
	return EXIT_USAGE;
}

static const struct cmd_opt *opt_by_key(const struct cmd *c, int key)
{
	const struct cmd_opt *o;

	cmd_for_each_opt(o, c, i)
		if (o->key == key)
			return o;
	return NULL;
}

/* getopt_long's '?': an option c does not have, or a value given to a flag. */
static int unknown_option(const struct cmd *c, char **argv)
{
	const char *arg = argv[optind - 1];
	const struct cmd_opt *o = optopt ? opt_by_key(c, optopt) : NULL;

	if (o && !strncmp(arg, "--", 2))
		return usage_error(c, "option '--%s' takes no value ('%s')", o->name, arg);
	if (optopt)
		return usage_error(c, "%s has no option '-%c'", c->name, optopt);
	return usage_error(c, "%s has no option '%s'", c->name, arg);
}

/* The getopt tables of c (longs: CMD_MAX_OPTS + 1 entries). */
static void getopt_tables(const struct cmd *c, struct option *longs, char *shorts)
{
	size_t n = 0, s = 0;

	const struct cmd_opt *o;

	shorts[s++] = ':'; /* a missing value returns ':' */
	cmd_for_each_opt(o, c, i) {
		if (n == CMD_MAX_OPTS)
			break;
		longs[n++] = (struct option){ o->name, o->arg ? required_argument : no_argument,
					      NULL, o->key };
		if (o->key < CMD_LONG_ONLY) {
			shorts[s++] = (char)o->key;
			if (o->arg)
				shorts[s++] = ':';
		}
	}
	longs[n] = (struct option){};
	shorts[s] = '\0';
}

int cmd_parse(const struct cmd *c, int argc, char **argv,
	      bool (*on_opt)(const struct cmd_opt *o, const char *val, void *ctx), void *ctx,
	      int *first)
{
	struct option longs[CMD_MAX_OPTS + 1];
	char shorts[2 * CMD_MAX_OPTS + 4];
	const struct cmd_opt *o;
	int key, n;

	getopt_tables(c, longs, shorts);
	optind = 0; /* GNU getopt: start over (a command may be parsed twice in a test) */
	opterr = 0; /* errors name the value here */
	while ((key = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		if (key == 'h') {
			cmd_usage(c, stdout);
			return EXIT_OK;
		}
		if (key == '?')
			return unknown_option(c, argv);
		o = opt_by_key(c, key == ':' ? optopt : key);
		if (key == ':')
			return usage_error(c, "option '--%s' needs a value (%s)", o->name, o->arg);
		if (!on_opt(o, o->arg ? optarg : NULL, ctx))
			return usage_error(c, NULL);
	}
	n = argc - optind;
	if (n < c->min_operands)
		return usage_error(c, "%s needs %s", c->name, c->operands);
	if (n > c->max_operands && !c->max_operands)
		return usage_error(c, "%s takes no arguments, not '%s'", c->name, argv[optind]);
	if (n > c->max_operands)
		return usage_error(c, "%s takes only %s, not also '%s'", c->name, c->operands,
				   argv[optind + c->max_operands]);
	*first = optind;
	return CMD_GO;
}

bool cmd_bad_value(const struct cmd_opt *o, const char *val, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vmprobe: --%s '%s' ", o->name, val);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return false;
}

bool cmd_seconds(const struct cmd_opt *o, const char *val, double min, double max, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(val, &end);
	if (errno || end == val || *end || !isfinite(*out) || *out < min || *out > max)
		return cmd_bad_value(o, val, "is not a number of seconds from %g to %g", min, max);
	return true;
}

bool cmd_count(const struct cmd_opt *o, const char *val, long min, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(val, &end, 10);
	if (errno || end == val || *end || *out < min || *out > max)
		return cmd_bad_value(o, val, "is not a whole number from %ld to %ld", min, max);
	return true;
}

bool cmd_choice(const struct cmd_opt *o, const char *val, int *out)
{
	char list[512];
	size_t n = 0;

	for (int i = 0; o->values[i]; i++) {
		if (!strcmp(val, o->values[i])) {
			*out = i;
			return true;
		}
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
				      o->values[i]);
		if (n >= sizeof(list))
			n = sizeof(list) - 1;
	}
	return cmd_bad_value(o, val, "is not one of %s", list);
}

const char *const cmd_text_json[] = { "text", "json", NULL };

bool cmd_json_opt(const struct cmd_opt *o, const char *val, void *json)
{
	int i = 1;

	if (o->key != 'j' && !cmd_choice(o, val, &i))
		return false;
	*(bool *)json = i == 1;
	return true;
}

static int do_version(int argc, char **argv)
{
	int first, ret = cmd_parse(&cmd_version, argc, argv, NULL, NULL, &first);

	if (ret != CMD_GO)
		return ret;
	printf("vmprobe %s (revision %s)\n", VMPROBE_VERSION, VMPROBE_REVISION);
	return EXIT_OK;
}

const struct cmd cmd_version = {
	.name = "version",
	.fn = do_version,
	.summary = "print the version and the commit it was built from",
	.about = "Prints the version of this build and the commit it was built from.",
};

static void help_all(FILE *f)
{
	char syn[512];

	fprintf(f, "usage: vmprobe COMMAND [OPTION]... [ARG]...\n"
		   "  Per-VM network and disk IO of a KVM/QEMU host, measured with eBPF.\n\n"
		   "commands:\n");
	for (unsigned i = 0; i < cmd_table_len; i++)
		if (!cmd_table[i]->hidden)
			fprintf(f, "  %-9s %s\n", cmd_table[i]->name, cmd_table[i]->summary);
	fprintf(f, "\nsynopsis:\n");
	for (unsigned i = 0; i < cmd_table_len; i++) {
		if (cmd_table[i]->hidden)
			continue;
		cmd_synopsis(cmd_table[i], syn, sizeof(syn));
		fputs("  ", f);
		wrap(f, syn, 2, 10 + (int)strlen(cmd_table[i]->name) + 1);
	}
	fprintf(f, "\n'vmprobe COMMAND --help' (or 'vmprobe help COMMAND') describes a command.\n");
}

int cmd_help_error(const char *cmd)
{
	if (cmd)
		fprintf(stderr, "vmprobe: no command '%s'\n\n", cmd);
	help_all(stderr);
	return EXIT_USAGE;
}

static int do_help(int argc, char **argv)
{
	int first, ret = cmd_parse(&cmd_help, argc, argv, NULL, NULL, &first);

	if (ret != CMD_GO)
		return ret;
	if (first == argc) {
		help_all(stdout);
		return EXIT_OK;
	}
	for (unsigned i = 0; i < cmd_table_len; i++)
		if (!strcmp(argv[first], cmd_table[i]->name)) {
			cmd_usage(cmd_table[i], stdout);
			return EXIT_OK;
		}
	return cmd_help_error(argv[first]);
}

const struct cmd cmd_help = {
	.name = "help",
	.fn = do_help,
	.summary = "list the commands, or describe one",
	.about = "Lists every command with its synopsis; with COMMAND, prints its --help.",
	.operands = "[COMMAND]",
	.max_operands = 1,
	.complete = { CMP_COMMAND },
};

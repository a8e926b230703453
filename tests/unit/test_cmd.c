// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The CLI's parsing from a command's option table (cli/cmd.c): each row
 * an argument list, the exit code, the values the options set and the
 * message on stderr, which names the bad value; --help's layout from the
 * same table; and one meaning per short option across vmprobe's commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit.h"

#include "cli/cmd.h"
#include "core/util.h"

static const char *const colours[] = { "red", "green", NULL };

static const struct cmd_opt test_opts[] = {
	{ .name = "delay", .key = 'd', .arg = "SECS", .help = "the interval" },
	{ .name = "count", .key = 'n', .arg = "N", .help = "how many" },
	{ .name = "batch", .key = 'b', .help = "plain" },
	{ .name = "colour", .key = 'c', .arg = "C", .help = "which one", .values = colours,
	  .complete = CMP_WORDS },
	{ .name = "long.only", .key = CMD_LONG_ONLY, .arg = "X", .help = "no short form" },
	{ NULL },
};

static int test_fn(int argc, char **argv)
{
	return 0;
}

static const struct cmd test_cmd = {
	.name = "probe",
	.fn = test_fn,
	.summary = "a test",
	.about = "A command for the tests, with an about text long enough to wrap at the "
		 "width the help is printed in.\nA second paragraph.",
	.opts = test_opts,
	.operands = "VM",
	.min_operands = 1,
	.max_operands = 1,
};

struct got {
	double delay;
	long count;
	bool batch;
	int colour;
	const char *x;
};

static bool test_opt(const struct cmd_opt *o, const char *val, void *ctx)
{
	struct got *g = ctx;

	switch (o->key) {
	case 'd':
		return cmd_seconds(o, val, 0.1, 3600, &g->delay);
	case 'n':
		return cmd_count(o, val, 1, 100, &g->count);
	case 'b':
		g->batch = true;
		return true;
	case 'c':
		return cmd_choice(o, val, &g->colour);
	default:
		g->x = val;
		return true;
	}
}

/* Runs cmd_parse on the words of `args`, stderr's first line into err. */
static int parse(const char *args, struct got *g, char *err, size_t size, int *first)
{
	char buf[256], *argv[16], *save;
	FILE *tmp = tmpfile();
	int argc = 0, saved, ret;

	snprintf(buf, sizeof(buf), "probe %s", args);
	for (char *w = strtok_r(buf, " ", &save); w && argc < 15; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	*g = (struct got){ .colour = -1 };
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	ret = cmd_parse(&test_cmd, argc, argv, test_opt, g, first);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	err[0] = '\0';
	if (fgets(err, (int)size, tmp))
		err[strcspn(err, "\n")] = '\0';
	fclose(tmp);
	return ret;
}

static void parses_and_names_bad_values(void **state)
{
	static const struct {
		const char *args;
		int ret;
		double delay;
		long count;
		int colour;
		const char *err;
	} rows[] = {
		{ "vm", CMD_GO, 0, 0, -1, "" },
		{ "-d 0.5 vm", CMD_GO, 0.5, 0, -1, "" },
		{ "vm --delay=2.25 -n 3", CMD_GO, 2.25, 3, -1, "" },
		{ "-bd1 vm", CMD_GO, 1, 0, -1, "" },
		{ "-c green vm", CMD_GO, 0, 0, 1, "" },
		{ "--del 7 vm", CMD_GO, 7, 0, -1, "" }, /* an unambiguous prefix, as getopt_long */
		{ "-d 0.01 vm", EXIT_USAGE, 0, 0, -1,
		  "vmprobe: --delay '0.01' is not a number of seconds from 0.1 to 3600" },
		{ "-d 1s vm", EXIT_USAGE, 0, 0, -1,
		  "vmprobe: --delay '1s' is not a number of seconds from 0.1 to 3600" },
		{ "-d nan vm", EXIT_USAGE, 0, 0, -1,
		  "vmprobe: --delay 'nan' is not a number of seconds from 0.1 to 3600" },
		{ "-n 1.5 vm", EXIT_USAGE, 0, 0, -1,
		  "vmprobe: --count '1.5' is not a whole number from 1 to 100" },
		{ "-n 101 vm", EXIT_USAGE, 0, 0, -1,
		  "vmprobe: --count '101' is not a whole number from 1 to 100" },
		{ "--colour blue vm", EXIT_USAGE, 0, 0, -1,
		  "vmprobe: --colour 'blue' is not one of red, green" },
		{ "-x vm", EXIT_USAGE, 0, 0, -1, "vmprobe: probe has no option '-x'" },
		{ "--nope vm", EXIT_USAGE, 0, 0, -1, "vmprobe: probe has no option '--nope'" },
		{ "vm -d", EXIT_USAGE, 0, 0, -1, "vmprobe: option '--delay' needs a value (SECS)" },
		{ "vm --long.only", EXIT_USAGE, 0, 0, -1,
		  "vmprobe: option '--long.only' needs a value (X)" },
		{ "--batch=1 vm", EXIT_USAGE, 0, 0, -1,
		  "vmprobe: option '--batch' takes no value ('--batch=1')" },
		{ "", EXIT_USAGE, 0, 0, -1, "vmprobe: probe needs VM" },
		{ "a b", EXIT_USAGE, 0, 0, -1, "vmprobe: probe takes only VM, not also 'b'" },
		{ "-d 0.01 --help", EXIT_USAGE, 0, 0, -1,
		  "vmprobe: --delay '0.01' is not a number of seconds from 0.1 to 3600" },
	};
	char err[256], what[64];
	struct got g;
	int first;

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		int ret = parse(rows[i].args, &g, err, sizeof(err), &first);

		snprintf(what, sizeof(what), "'%s': exit code", rows[i].args);
		expect_int(what, rows[i].ret, ret);
		snprintf(what, sizeof(what), "'%s': stderr", rows[i].args);
		expect_str(what, rows[i].err, err);
		if (ret != CMD_GO)
			continue;
		snprintf(what, sizeof(what), "'%s': delay in ms", rows[i].args);
		expect_int(what, (long long)(rows[i].delay * 1000), (long long)(g.delay * 1000));
		snprintf(what, sizeof(what), "'%s': count", rows[i].args);
		expect_int(what, rows[i].count, g.count);
		snprintf(what, sizeof(what), "'%s': colour", rows[i].args);
		expect_int(what, rows[i].colour, g.colour);
	}
	/* The operand stays where getopt_long put it (after the options). */
	parse("vm -b --long.only=v", &g, err, sizeof(err), &first);
	expect_int("a flag", 1, g.batch);
	expect_str("a long-only option's value", "v", g.x);
	expect_int("the operand's index", 3, first);
}

static void usage_from_the_table(void **state)
{
	static const char expected[] =
		"usage: vmprobe probe [-d SECS] [-n N] [-b] [-c C] [--long.only X] VM\n"
		"  A command for the tests, with an about text long enough to wrap at the width\n"
		"  the help is printed in.\n"
		"  A second paragraph.\n"
		"options:\n"
		"  -d, --delay SECS      the interval\n"
		"  -n, --count N         how many\n"
		"  -b, --batch           plain\n"
		"  -c, --colour C        which one (C: red, green)\n"
		"      --long.only X     no short form\n"
		"  -h, --help            print this help and exit\n";
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cmd_usage(&test_cmd, f);
	fclose(f);
	expect_str("probe --help", expected, buf);
	free(buf);
}

/*
 * One meaning per short option: a letter used by two commands has the same
 * long name; and no command has more options than the parser takes.
 */
static void one_meaning_per_short_option(void **state)
{
	const char *meaning[128] = {};
	const struct cmd_opt *o;

	for (unsigned i = 0; i < cmd_table_len; i++)
		cmd_for_each_opt(o, cmd_table[i], k) {
			char what[96];

			snprintf(what, sizeof(what), "%s has at most CMD_MAX_OPTS options", cmd_table[i]->name);
			if (k >= CMD_MAX_OPTS)
				fail_msg("%s", what);
			if (o->key >= CMD_LONG_ONLY)
				continue;
			if (!meaning[o->key])
				meaning[o->key] = o->name;
			snprintf(what, sizeof(what), "%s -%c", cmd_table[i]->name, o->key);
			expect_str(what, meaning[o->key], o->name);
		}
	expect_str("-d is top's delay", "delay", meaning['d']);
	expect_str("-D is hist's disk", "disk", meaning['D']);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_and_names_bad_values),
		cmocka_unit_test(usage_from_the_table),
		cmocka_unit_test(one_meaning_per_short_option),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

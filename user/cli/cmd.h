/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * CLI commands: one file per noun, each describing itself in a struct cmd
 * (its options, operands, help). The table of them (cmd.c) is the single
 * source of the parser, --help, `vmprobe help`, and, through `vmprobe
 * options`, of the man page's synopsis and option lists and of the bash
 * completion, which make generates from it.
 */
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

/* What the completion offers for an option's value or an operand. */
enum cmd_complete {
	CMP_NONE,  /* anything: nothing to offer */
	CMP_FILE,  /* a file name */
	CMP_VM,    /* a VM's name (vmprobe list --json) */
	CMP_WORDS, /* one of the listed words */
	CMP_COMMAND, /* a command's name */
};

struct cmd_opt {
	const char *name; /* the long option, without "--" */
	int key;          /* the short option's letter; >= 256: long only */
	const char *arg;  /* its value's name ("SECS"); NULL: a flag */
	/* One or more sentences, for --help and the man page. */
	const char *help;
	/* The only values it takes (NULL-terminated), listed after help; NULL: any. */
	const char *const *values;
	enum cmd_complete complete; /* for arg: CMP_WORDS when values are set */
};

/* The most options a command can have, --help included (tests/unit/test_cmd.c checks). */
#define CMD_MAX_OPTS 16

/* Keys of long-only options start here. */
#define CMD_LONG_ONLY 256

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary; /* vmprobe help's line */
	const char *about;   /* --help's paragraph, after the synopsis */
	/* Its options, ended by { NULL }; -h, --help is every command's. */
	const struct cmd_opt *opts;
	/* The synopsis after the options ("VM"); NULL: none. */
	const char *operands;
	int min_operands, max_operands;
	/* Per operand position: what completes it (CMP_WORDS: operand_words). */
	enum cmd_complete complete[2];
	const char *const *operand_words;
	bool hidden; /* not in vmprobe help, the man page or the completion */
};

/* Every command, in the order vmprobe help lists them. */
extern const struct cmd *const cmd_table[];
extern const unsigned cmd_table_len;

extern const struct cmd cmd_serve, cmd_check, cmd_list, cmd_top, cmd_hist, cmd_metrics,
	cmd_config, cmd_uninstall, cmd_version, cmd_help, cmd_options;

/*
 * serve's start and end (serve.c), shared with uninstall. Begin: takes
 * the host's locks, opens the probes (adopting what an earlier serve
 * pinned), the VM table, the process hooks if wanted, and makes the first
 * scan; NULL after logging why not. Finish: with `persist` everything
 * stays attached and pinned for the next serve, else everything goes.
 */
struct config;
struct serve_state;
struct serve_state *serve_begin(struct config *cfg, bool process_hooks);
void serve_finish(struct serve_state *st, bool persist);

/* `vmprobe` alone, or an unknown command (cmd, if set): the commands on stderr; EXIT_USAGE. */
int cmd_help_error(const char *cmd);

/* Loads the embedded default and, if path is set, a file over it. */
struct config;
int cmd_load_config(struct config *cfg, const char *path);

/* cmd_parse(): go on with the command (anything else is its exit code). */
#define CMD_GO (-1)

/*
 * Parses argv (argv[0]: the command's name) by c's table: each option but
 * --help goes to on_opt with its value (NULL for a flag), which returns
 * false after saying what is wrong (cmd_bad_value); then c's operands
 * must remain, from *first on. Returns CMD_GO, EXIT_OK after --help
 * printed the usage, or EXIT_USAGE after an error named what was wrong.
 */
int cmd_parse(const struct cmd *c, int argc, char **argv,
	      bool (*on_opt)(const struct cmd_opt *o, const char *val, void *ctx), void *ctx,
	      int *first);

/* c's i-th option, -h, --help after its own; NULL past the last. */
const struct cmd_opt *cmd_opt_at(const struct cmd *c, int i);
#define cmd_for_each_opt(o, c, i) for (int i = 0; ((o) = cmd_opt_at((c), i)); i++)

/* The whole --help text of c. */
void cmd_usage(const struct cmd *c, FILE *f);
/* "vmprobe NAME [-x ARG]... OPERANDS" into buf. */
void cmd_synopsis(const struct cmd *c, char *buf, size_t size);

/*
 * "vmprobe: --OPTION 'VALUE' is not ..." on stderr, and false: what
 * on_opt returns for a value it refuses.
 */
bool cmd_bad_value(const struct cmd_opt *o, const char *val, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A number of seconds in [min, max], fractions allowed. */
bool cmd_seconds(const struct cmd_opt *o, const char *val, double min, double max, double *out);
/* A whole number in [min, max]. */
bool cmd_count(const struct cmd_opt *o, const char *val, long min, long max, long *out);
/* The index of val in o->values; false (and says which it takes) if none. */
bool cmd_choice(const struct cmd_opt *o, const char *val, int *out);

/*
 * -o, --output FORMAT (text or json) and -j, --json: the options of a
 * command with JSON for scripts; `what` says what the JSON is.
 */
extern const char *const cmd_text_json[];
#define CMD_OPTS_JSON(what)                                                        \
	{ .name = "output", .key = 'o', .arg = "FORMAT",                           \
	  .help = "text (the default) or json: " what, .values = cmd_text_json,    \
	  .complete = CMP_WORDS },                                                 \
	{ .name = "json", .key = 'j', .help = "the same as -o json" }

/*
 * -o or -j (CMD_OPTS_JSON) into *(bool *)json; false after a bad format.
 * The on_opt of a command with no other options.
 */
bool cmd_json_opt(const struct cmd_opt *o, const char *val, void *json);

#endif

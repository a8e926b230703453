// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vmprobe options (hidden): the command table the parser and --help use,
 * printed as JSON, as the man page's synopsis and option lists (roff) or
 * as the bash completion's tables, which make puts in build/vmprobe.8 and
 * build/vmprobe.bash: one source for all four.
 */
#include <ctype.h>
#include <json-c/json.h>
#include <string.h>

#include "cli/cmd.h"

static const char *const complete_names[] = {
	[CMP_NONE] = "none", [CMP_FILE] = "file", [CMP_VM] = "vm", [CMP_WORDS] = "words",
	[CMP_COMMAND] = "command",
};

static json_object *words_json(const char *const *w)
{
	json_object *a = json_object_new_array();

	for (; w && *w; w++)
		json_object_array_add(a, json_object_new_string(*w));
	return a;
}

static json_object *opt_json(const struct cmd_opt *o)
{
	json_object *j = json_object_new_object();
	char s[64];

	snprintf(s, sizeof(s), "--%s", o->name);
	json_object_object_add(j, "long", json_object_new_string(s));
	snprintf(s, sizeof(s), "-%c", o->key);
	json_object_object_add(j, "short", o->key < CMD_LONG_ONLY ? json_object_new_string(s) : NULL);
	json_object_object_add(j, "arg", o->arg ? json_object_new_string(o->arg) : NULL);
	json_object_object_add(j, "help", json_object_new_string(o->help));
	json_object_object_add(j, "values", words_json(o->values));
	json_object_object_add(j, "completion", json_object_new_string(complete_names[o->complete]));
	return j;
}

static json_object *cmd_json(const struct cmd *c)
{
	json_object *j = json_object_new_object(), *opts = json_object_new_array(),
		    *comp = json_object_new_array();
	const struct cmd_opt *o;
	char syn[512];

	cmd_synopsis(c, syn, sizeof(syn));
	json_object_object_add(j, "name", json_object_new_string(c->name));
	json_object_object_add(j, "summary", json_object_new_string(c->summary));
	json_object_object_add(j, "synopsis", json_object_new_string(syn));
	json_object_object_add(j, "hidden", json_object_new_boolean(c->hidden));
	json_object_object_add(j, "min_operands", json_object_new_int(c->min_operands));
	json_object_object_add(j, "max_operands", json_object_new_int(c->max_operands));
	for (int i = 0; i < c->max_operands && i < 2; i++)
		json_object_array_add(comp, json_object_new_string(complete_names[c->complete[i]]));
	json_object_object_add(j, "operand_completion", comp);
	json_object_object_add(j, "operand_words", words_json(c->operand_words));
	cmd_for_each_opt(o, c, i)
		json_object_array_add(opts, opt_json(o));
	json_object_object_add(j, "options", opts);
	return j;
}

static void print_json(void)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();

	for (unsigned i = 0; i < cmd_table_len; i++)
		json_object_array_add(arr, cmd_json(cmd_table[i]));
	json_object_object_add(o, "commands", arr);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* Text for roff: '-' and '\' escaped, never a control character at a line's start. */
static void roff(const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", stdout);
	for (; *s; s++)
		if (*s == '-')
			fputs("\\-", stdout);
		else if (*s == '\\')
			fputs("\\e", stdout);
		else
			putchar(*s);
}

/* The man page's synopsis of every command (.SY, .OP, .YS: groff's man extensions). */
static void print_man_synopsis(void)
{
	const struct cmd_opt *o;

	for (unsigned i = 0; i < cmd_table_len; i++) {
		const struct cmd *c = cmd_table[i];
		char ops[128], *tok, *save;

		if (c->hidden)
			continue;
		printf(".SY \"vmprobe %s\"\n", c->name);
		cmd_for_each_opt(o, c, k) {
			if (o->key == 'h')
				continue;
			if (o->key < CMD_LONG_ONLY) {
				printf(".OP \\-%c", o->key);
			} else {
				printf(".OP \\-\\-");
				roff(o->name);
			}
			printf("%s%s\n", o->arg ? " " : "", o->arg ? o->arg : "");
		}
		/* Operands: WORDS in italics, the rest bold; "|" and brackets roman. */
		snprintf(ops, sizeof(ops), "%s", c->operands ? c->operands : "");
		for (tok = strtok_r(ops, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			size_t n = strlen(tok);
			bool br = tok[0] == '[' && tok[n - 1] == ']';

			if (br) {
				tok[n - 1] = '\0';
				tok++;
			}
			if (!strcmp(tok, "|"))
				printf("|\n");
			else if (br)
				printf(".RI [ %s ]\n", tok);
			else
				printf(".%s %s\n", strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(tok) ?
							  "I" : "B", tok);
		}
		printf(".YS\n");
	}
}

/* One command's options as a tagged list, for the man page's COMMANDS section. */
static void print_man_options(const struct cmd *c)
{
	const struct cmd_opt *o;

	printf(".RS\n");
	cmd_for_each_opt(o, c, i) {
		printf(".TP\n");
		if (o->key < CMD_LONG_ONLY)
			printf("\\fB\\-%c\\fR, ", o->key);
		printf("\\fB\\-\\-");
		roff(o->name);
		printf("\\fR%s%s%s\n", o->arg ? " \\fI" : "", o->arg ? o->arg : "", o->arg ? "\\fR" : "");
		/* A sentence here; a phrase in --help. */
		putchar(toupper((unsigned char)o->help[0]));
		roff(o->help + 1);
		for (const char *const *v = o->values; v && *v; v++) {
			if (v == o->values)
				printf(" (\\fI%s\\fR: ", o->arg);
			else
				printf(", ");
			printf("\\%%"); /* never hyphenated */
			roff(*v);
		}
		printf("%s.\n", o->values ? ")" : "");
	}
	printf(".RE\n");
}

/* What completes a value or operand, as the completion's template reads it. */
static void bash_words(enum cmd_complete cmp, const char *const *words)
{
	if (cmp != CMP_WORDS) {
		printf("@%s", complete_names[cmp]);
		return;
	}
	for (; *words; words++)
		printf("%s%s", *words, words[1] ? " " : "");
}

/* The completion's tables: bash functions over the command table. */
static void print_bash(void)
{
	const struct cmd_opt *o;

	printf("# Generated by `vmprobe options -o bash` from the tables the parser uses.\n"
	       "_vmprobe_commands='");
	for (unsigned i = 0, n = 0; i < cmd_table_len; i++)
		if (!cmd_table[i]->hidden)
			printf("%s%s", n++ ? " " : "", cmd_table[i]->name);
	printf("'\n\n# _vmprobe_options CMD: its long options\n_vmprobe_options() {\n\tcase $1 in\n");
	for (unsigned i = 0; i < cmd_table_len; i++) {
		if (cmd_table[i]->hidden)
			continue;
		printf("\t%s) echo '", cmd_table[i]->name);
		cmd_for_each_opt(o, cmd_table[i], k)
			printf("%s--%s", k ? " " : "", o->name);
		printf("' ;;\n");
	}
	printf("\tesac\n}\n\n# _vmprobe_value CMD OPTION: what its value completes to (@file, @none or\n"
	       "# words); fails for a flag or an option CMD does not have\n"
	       "_vmprobe_value() {\n\tcase $1:$2 in\n");
	for (unsigned i = 0; i < cmd_table_len; i++) {
		if (cmd_table[i]->hidden)
			continue;
		cmd_for_each_opt(o, cmd_table[i], k) {
			if (!o->arg)
				continue;
			printf("\t%s:--%s", cmd_table[i]->name, o->name);
			if (o->key < CMD_LONG_ONLY)
				printf(" | %s:-%c", cmd_table[i]->name, o->key);
			printf(") echo '");
			bash_words(o->complete, o->values);
			printf("' ;;\n");
		}
	}
	printf("\t*) return 1 ;;\n\tesac\n}\n\n# _vmprobe_operand CMD N: what its Nth operand "
	       "completes to\n_vmprobe_operand() {\n\tcase $1:$2 in\n");
	for (unsigned i = 0; i < cmd_table_len; i++) {
		const struct cmd *c = cmd_table[i];

		for (int k = 0; !c->hidden && k < c->max_operands && k < 2; k++) {
			printf("\t%s:%d) echo '", c->name, k + 1);
			bash_words(c->complete[k], c->operand_words);
			printf("' ;;\n");
		}
	}
	printf("\t*) echo @none ;;\n\tesac\n}\n");
}

static const char *const options_formats[] = { "json", "man", "bash", NULL };

static const struct cmd_opt options_opts[] = {
	{ .name = "output", .key = 'o', .arg = "FORMAT",
	  .help = "json (the default), man: the man page's synopsis, or with COMMAND its "
		  "options; bash: the completion's tables",
	  .values = options_formats, .complete = CMP_WORDS },
	{ .name = "json", .key = 'j', .help = "the same as -o json" },
	{ NULL },
};

static bool options_opt(const struct cmd_opt *o, const char *val, void *format)
{
	if (o->key == 'j') {
		*(int *)format = 0;
		return true;
	}
	return cmd_choice(o, val, format);
}

static int do_options(int argc, char **argv)
{
	int format = 0, first, ret = cmd_parse(&cmd_options, argc, argv, options_opt, &format, &first);

	if (ret != CMD_GO)
		return ret;
	if (first < argc && format != 1) {
		fprintf(stderr, "vmprobe: options takes COMMAND only with -o man\n");
		return EXIT_USAGE;
	}
	if (format == 0) {
		print_json();
	} else if (format == 2) {
		print_bash();
	} else if (first == argc) {
		print_man_synopsis();
	} else {
		for (unsigned i = 0; i < cmd_table_len; i++)
			if (!strcmp(argv[first], cmd_table[i]->name)) {
				print_man_options(cmd_table[i]);
				return EXIT_OK;
			}
		fprintf(stderr, "vmprobe: no command '%s'\n", argv[first]);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

const struct cmd cmd_options = {
	.name = "options",
	.fn = do_options,
	.summary = "the command and option tables, for the man page and the completion",
	.about = "Prints the tables every command's options are parsed from, for make to build "
		 "the man page and the bash completion from them (and for tests).",
	.opts = options_opts,
	.operands = "[COMMAND]",
	.max_operands = 1,
	.complete = { CMP_COMMAND },
	.hidden = true,
};

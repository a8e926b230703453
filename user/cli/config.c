// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vmprobe config: validate or show the configuration; and how every command loads it. */
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

static const char *const config_actions[] = { "check", "default", NULL };

static int do_config(int argc, char **argv)
{
	int first, ret = cmd_parse(&cmd_config, argc, argv, NULL, NULL, &first);
	const char *action;
	struct config cfg;

	if (ret != CMD_GO)
		return ret;
	action = argv[first];
	if (!strcmp(action, "default") && first + 1 == argc) {
		fputs(config_default_yaml, stdout);
		return EXIT_OK;
	}
	if (!strcmp(action, "default")) {
		fprintf(stderr, "vmprobe: config default takes no FILE, not '%s'\n", argv[first + 1]);
		return EXIT_USAGE;
	}
	if (strcmp(action, "check")) {
		fprintf(stderr, "vmprobe: config has no action '%s' (check FILE, default)\n", action);
		return EXIT_USAGE;
	}
	if (first + 2 != argc) {
		fprintf(stderr, "vmprobe: config check needs FILE\n");
		return EXIT_USAGE;
	}
	if (cmd_load_config(&cfg, argv[first + 1]))
		return EXIT_USAGE;
	printf("%s: ok\n", argv[first + 1]);
	return EXIT_OK;
}

const struct cmd cmd_config = {
	.name = "config",
	.fn = do_config,
	.summary = "validate a configuration file, or print the embedded default",
	.about = "check FILE validates a YAML configuration as serve -c would apply it over the "
		 "embedded default (errors name file:line:column); default prints that default.",
	.operands = "check FILE | default",
	.min_operands = 1,
	.max_operands = 2,
	.complete = { CMP_WORDS, CMP_FILE },
	.operand_words = config_actions,
};

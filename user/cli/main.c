// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vmprobe: per-VM network and disk IO of a KVM/QEMU host, for Prometheus. */
#include <bpf/libbpf.h>
#include <string.h>

#include "cli/cmd.h"
#include "core/probe.h"

int main(int argc, char **argv)
{
	if (argc < 2)
		return cmd_help_error(NULL);
	libbpf_set_print(probe_log_libbpf);
	/* vmprobe --help [COMMAND], vmprobe --version: as the commands. */
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		argv[1] = (char *)cmd_help.name;
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))
		argv[1] = (char *)cmd_version.name;
	for (unsigned i = 0; i < cmd_table_len; i++)
		if (!strcmp(argv[1], cmd_table[i]->name))
			return cmd_table[i]->fn(argc - 1, argv + 1);
	return cmd_help_error(argv[1]);
}

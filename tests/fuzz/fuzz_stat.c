// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * /proc/PID/stat (proc_stat_parse, core/process.c): discovery's start
 * time, state and flags of every process, vmprobe's own CPU and memory.
 * Field 2 is the command name, which any process sets (prctl PR_SET_NAME)
 * to anything: spaces and ')' too.
 */
#include "fuzz.h"

#include "core/process.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	struct proc_stat st;

	if (!proc_stat_parse(text, &st))
		fuzz_assert(st.state != '\0');
	free(text);
	return 0;
}

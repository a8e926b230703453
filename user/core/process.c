// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* process_* metrics of vmprobe itself, from /proc/self and getrlimit(2). */
#include "core/process.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

enum { P_CPU, P_RSS, P_VSZ, P_FDS, P_MAX_FDS, P_START, P_MAX };

static const struct expo_family fams[P_MAX] = {
	[P_CPU] = { "process_cpu_seconds_total", EXPO_COUNTER, "seconds", "",
		    "Total user and system CPU time spent in seconds." },
	[P_RSS] = { "process_resident_memory_bytes", EXPO_GAUGE, "bytes", "",
		    "Resident memory size in bytes." },
	[P_VSZ] = { "process_virtual_memory_bytes", EXPO_GAUGE, "bytes", "",
		    "Virtual memory size in bytes." },
	[P_FDS] = { "process_open_fds", EXPO_GAUGE, "", "", "Number of open file descriptors." },
	[P_MAX_FDS] = { "process_max_fds", EXPO_GAUGE, "", "",
			"Maximum number of open file descriptors." },
	[P_START] = { "process_start_time_seconds", EXPO_GAUGE, "seconds", "",
		      "Start time of the process since unix epoch in seconds." },
};

const struct expo_family *process_families(size_t *nr)
{
	*nr = P_MAX;
	return fams;
}

static void single(struct expo *e, int f, double v)
{
	expo_family(e, &fams[f]);
	expo_double(e, fams[f].name, "", v);
}

/* The boot time, seconds since the epoch (btime of /proc/stat); 0 if unknown. */
static double boot_time(void)
{
	char buf[8192], *p;

	if (read_file("/proc/stat", buf, sizeof(buf)) <= 0)
		return 0;
	p = strstr(buf, "\nbtime ");
	return p ? strtod(p + 7, NULL) : 0;
}

static int open_fds(void)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int n = 0;

	/* Linux 6.2 and later give the number as the directory's size: no walk of it. */
	if (!stat("/proc/self/fd", &st) && st.st_size > 0)
		return (int)st.st_size;
	dir = opendir("/proc/self/fd");
	if (!dir)
		return -1;
	while ((de = readdir(dir)))
		n += de->d_name[0] != '.';
	closedir(dir);
	return n - 1; /* less the directory's own */
}

int proc_stat_parse(const char *text, struct proc_stat *st)
{
	const char *p = strrchr(text, ')');

	memset(st, 0, sizeof(*st));
	if (!p || p[1] != ' ')
		return -EINVAL;
	return sscanf(p + 2, "%c %*d %*d %*d %*d %*d %lu %*u %*u %*u %*u %llu %llu %*d %*d %*d "
			     "%*d %*d %*d %llu %llu %lld", &st->state, &st->flags, &st->utime,
		      &st->stime, &st->start, &st->vsize, &st->rss) == 7 ? 0 : -EINVAL;
}

/* vmprobe's own /proc/self/stat; 0, or -1 if it cannot be read. */
static int self_stat(struct proc_stat *st)
{
	char buf[1024];

	return read_file("/proc/self/stat", buf, sizeof(buf)) > 0 && !proc_stat_parse(buf, st)
		       ? 0 : -1;
}

double process_start_time(void)
{
	static double start; /* it does not change: read once */
	struct proc_stat st;
	double boot;

	if (!start && !self_stat(&st) && (boot = boot_time()) > 0)
		start = boot + st.start / (double)sysconf(_SC_CLK_TCK);
	return start;
}

void process_render(struct expo *e)
{
	double tick = (double)sysconf(_SC_CLK_TCK), start = process_start_time();
	struct proc_stat st;
	struct rlimit rl;
	int fds;

	if (!self_stat(&st)) {
		single(e, P_CPU, (st.utime + st.stime) / tick);
		single(e, P_RSS, (double)st.rss * sysconf(_SC_PAGESIZE));
		single(e, P_VSZ, (double)st.vsize);
	}
	if (start > 0)
		single(e, P_START, start);
	fds = open_fds();
	if (fds >= 0)
		single(e, P_FDS, fds);
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		single(e, P_MAX_FDS, rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
}

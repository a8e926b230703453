// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vmprobe hist: a VM's log2 histograms over an interval, like biolatency. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "cli/view.h"
#include "core/util.h"

#define BAR_WIDTH 40

enum kind { K_DISK, K_SIZE, K_RTT };

enum { MAX_SERIES = VM_MAX_DRIVES * DISK_OP_MAX + VM_MAX_NICS * NET_DIR_MAX * 2 };

/* One histogram followed over the interval: a (drive, op), a (tap, dir) or a (tap, path). */
struct series {
	char title[160];
	enum kind kind;
	int slot;
	const struct view_drive *drive; /* K_DISK */
	unsigned sub; /* op or direction */
	bool gone;    /* its drive or tap went during the run */
	__u64 before[DISK_LAT_SLOTS];
	__u64 now[DISK_LAT_SLOTS];
};

static unsigned series_slots(const struct series *s)
{
	return s->kind == K_DISK ? DISK_LAT_SLOTS : s->kind == K_RTT ? NET_RTT_SLOTS : NET_SIZE_SLOTS;
}

static void series_read(const struct view *v, struct series *s, __u64 *out)
{
	if (s->gone) {
		memcpy(out, s->before, sizeof(s->before));
	} else if (s->kind == K_DISK) {
		struct drive_stats st;

		view_drive_read(v, s->drive, s->sub, &st);
		memcpy(out, st.lat_slots, sizeof(st.lat_slots));
	} else {
		struct net_stats st;

		net_read(v->np, s->slot, s->sub, &st);
		if (s->kind == K_RTT)
			memcpy(out, st.rtt_slots, sizeof(st.rtt_slots));
		else
			memcpy(out, st.size_slots, sizeof(st.size_slots));
	}
}

/*
 * Slot i counts values in (2^(i-1), 2^i] units: the rows show that range,
 * in usecs for latency (units are 2^-30 s, vmprobe/hist.h: 3 decimals,
 * rounded) and bytes for sizes. The last slot has no upper bound.
 */
static void edge(char *buf, size_t size, const struct series *s, int i)
{
	unsigned long long v = i < 0 ? 0 : 1ULL << i;

	if (i >= (int)series_slots(s) - 1)
		snprintf(buf, size, "inf");
	else if (s->kind != K_SIZE)
		snprintf(buf, size, "%.3f", (double)v * 1e6 / TIME_SLOT_UNITS);
	else
		snprintf(buf, size, "%llu", v);
}

static void series_print(const struct series *s)
{
	unsigned n = series_slots(s);
	__u64 d[DISK_LAT_SLOTS], max = 0, total = 0;
	int first = -1, last = -1;
	char lo[32], hi[32];

	for (unsigned i = 0; i < n; i++) {
		d[i] = s->now[i] >= s->before[i] ? s->now[i] - s->before[i] : 0;
		total += d[i];
		if (d[i] > max)
			max = d[i];
		if (d[i] && first < 0)
			first = (int)i;
		if (d[i])
			last = (int)i;
	}
	printf("\n%s: %llu\n", s->title, (unsigned long long)total);
	if (!total)
		return;
	printf("%26s : %-10s distribution\n", s->kind == K_SIZE ? "bytes" : "usecs", "count");
	for (int i = first; i <= last; i++) {
		int stars = (int)(d[i] * BAR_WIDTH / max);

		edge(lo, sizeof(lo), s, i - 1);
		edge(hi, sizeof(hi), s, i);
		printf("%12s -> %-10s : %-10llu |%-*.*s|\n", lo, hi, (unsigned long long)d[i],
		       BAR_WIDTH, stars, "****************************************");
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vmprobe hist VM [--disk DRIVE | --net IFACE] [-i SECS] [-n COUNT]\n"
		   "  Log2 histograms of one VM over an interval, like biolatency: disk\n"
		   "  latency per drive and operation (usecs), frame sizes per tap and\n"
		   "  direction (bytes; rx: into the guest) and TCP RTT per tap and path\n"
		   "  (usecs; network, guest). VM is a name, NAMESPACE/NAME or PID.\n"
		   "  Reads vmprobe serve's counters when it runs, else loads its own probes.\n"
		   "  -d, --disk DRIVE     only this drive (default: every drive and tap)\n"
		   "  -N, --net IFACE      only this tap\n"
		   "  -i, --interval SECS  length of each interval (default 5)\n"
		   "  -n, --count COUNT    intervals to print (default 1)\n");
}

/* The series the options select; the number of them, or -1 if the VM has no such device. */
static int select_series(const struct view *v, const struct view_vm *vm, const char *disk,
			 const char *net, struct series *out, int max)
{
	int n = 0;
	bool found = !disk && !net;

	for (int i = 0; !net && i < vm->nr_drives; i++) {
		if (disk && strcmp(disk, vm->drives[i].label))
			continue;
		found = true;
		if (vm->drives[i].slot < 0)
			continue;
		for (unsigned op = 0; op < DISK_OP_MAX && n < max; op++, n++) {
			out[n] = (struct series){ .kind = K_DISK, .slot = vm->drives[i].slot,
						  .drive = &vm->drives[i], .sub = op };
			snprintf(out[n].title, sizeof(out[n].title), "drive %s, %s latency, operations",
				 vm->drives[i].label, disk_op_names[op]);
		}
	}
	for (int i = 0; v->np && !disk && i < vm->nr_taps; i++) {
		if (net && strcmp(net, vm->taps[i].ifname))
			continue;
		found = true;
		if (vm->taps[i].slot < 0)
			continue;
		for (unsigned dir = 0; dir < NET_DIR_MAX && n < max; dir++, n++) {
			out[n] = (struct series){ .kind = K_SIZE, .slot = vm->taps[i].slot, .sub = dir };
			snprintf(out[n].title, sizeof(out[n].title), "tap %s, %s frame sizes, frames",
				 vm->taps[i].ifname, dir == NET_DIR_RX ? "rx" : "tx");
		}
		for (unsigned dir = 0; dir < NET_DIR_MAX && n < max; dir++, n++) {
			out[n] = (struct series){ .kind = K_RTT, .slot = vm->taps[i].slot, .sub = dir };
			snprintf(out[n].title, sizeof(out[n].title), "tap %s, TCP RTT, %s path, samples",
				 vm->taps[i].ifname, dir == NET_PATH_NETWORK ? "network" : "guest");
		}
	}
	return found ? n : -1;
}

struct hist_opts {
	const char *disk, *net, *name;
	long interval, count;
};

static bool hist_opt(int opt, void *ctx)
{
	struct hist_opts *o = ctx;

	if (opt == 'd')
		o->disk = optarg;
	else if (opt == 'N')
		o->net = optarg;
	else if (opt == 'i')
		return view_arg(optarg, 1, 86400, &o->interval);
	else
		return view_arg(optarg, 1, LONG_MAX, &o->count);
	return true;
}

/* Parses hist's options; EXIT_OK to go on, else the exit code (-1: --help). */
static int hist_options(int argc, char **argv, struct hist_opts *o)
{
	static const struct option longopts[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "net", required_argument, NULL, 'N' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	bool done;
	int ret;

	*o = (struct hist_opts){ .interval = 5, .count = 1 };
	ret = cmd_options(argc, argv, "d:N:i:n:h", longopts, usage, 1, hist_opt, o, &done);
	if (done)
		return ret == EXIT_OK ? -1 : ret;
	if (o->disk && o->net) {
		usage(stderr);
		return EXIT_USAGE;
	}
	o->name = argv[optind];
	return EXIT_OK;
}

/*
 * Own probes: the view is refreshed, so that what the probes found meanwhile
 * (a network disk's session) is matched and its requests added; the
 * series follow their drive or tap by title.
 */
static void series_follow(struct view *v, const struct hist_opts *o, struct series *ser, int n)
{
	const struct view_vm *vm;
	struct series *now;
	int m;

	if (v->shared || view_settle(v))
		return;
	vm = view_find(v, o->name);
	now = calloc(MAX_SERIES, sizeof(*now));
	m = vm && now ? select_series(v, vm, o->disk, o->net, now, MAX_SERIES) : -1;
	for (int i = 0; i < n; i++) {
		int j = 0;

		while (j < m && strcmp(now[j].title, ser[i].title))
			j++;
		ser[i].gone = j >= m;
		if (!ser[i].gone) {
			ser[i].drive = now[j].drive;
			ser[i].slot = now[j].slot;
		}
	}
	free(now);
}

/* Prints the n series' histograms of each interval. */
static void hist_loop(struct view *v, struct series *ser, int n, const struct hist_opts *o)
{
	for (long k = 0; k < o->count; k++) {
		time_t t;
		char ts[16];

		view_wait((int)(o->interval * 1000), -1);
		series_follow(v, o, ser, n);
		t = time(NULL);
		strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&t));
		printf("\n%s\n", ts);
		for (int i = 0; i < n; i++) {
			series_read(v, &ser[i], ser[i].now);
			series_print(&ser[i]);
			memcpy(ser[i].before, ser[i].now, sizeof(ser[i].now));
		}
		fflush(stdout);
		if (view_interrupted())
			break;
	}
}

int do_hist(int argc, char **argv)
{
	struct series *ser = NULL;
	const struct view_vm *vm;
	struct hist_opts o;
	int n, ret;
	struct view v;

	ret = hist_options(argc, argv, &o);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	ret = EXIT_FAIL;
	log_max_level = LOG_ERROR;
	view_catch_signals();
	if (view_open(&v))
		return EXIT_FAIL;
	vm = view_find(&v, o.name);
	ser = vm ? calloc(MAX_SERIES, sizeof(*ser)) : NULL;
	n = ser ? select_series(&v, vm, o.disk, o.net, ser, MAX_SERIES) : -1;
	if (!vm)
		fprintf(stderr, "vmprobe: no VM named '%s' (see vmprobe list)\n", o.name);
	else if (ser && n < 0)
		fprintf(stderr, "vmprobe: VM '%s' has no %s '%s'\n", o.name,
			o.disk ? "drive" : "interface", o.disk ? o.disk : o.net);
	if (n >= 0) {
		/* series point into v.vms: series_follow() moves them when it changes. */
		for (int i = 0; i < n; i++)
			series_read(&v, &ser[i], ser[i].before);
		printf("Tracing VM %s%s%s (%s) for %ld s x %ld... Hit Ctrl-C to end.\n", vm->ns,
		       vm->ns[0] ? "/" : "", vm->name,
		       v.shared ? "vmprobe serve's counters" : "own probes", o.interval, o.count);
		fflush(stdout);
		hist_loop(&v, ser, n, &o);
		ret = EXIT_OK;
	}
	free(ser);
	view_close(&v);
	return ret;
}

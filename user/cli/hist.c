// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vmprobe hist: a VM's log2 histograms over an interval, like biolatency. */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
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
	char device[VM_ID_MAX]; /* the drive or interface label */
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
			str_copy(out[n].device, sizeof(out[n].device), vm->drives[i].label);
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
			str_copy(out[n].device, sizeof(out[n].device), vm->taps[i].ifname);
			snprintf(out[n].title, sizeof(out[n].title), "tap %s, %s frame sizes, frames",
				 vm->taps[i].ifname, dir == NET_DIR_RX ? "rx" : "tx");
		}
		for (unsigned dir = 0; dir < NET_DIR_MAX && n < max; dir++, n++) {
			out[n] = (struct series){ .kind = K_RTT, .slot = vm->taps[i].slot, .sub = dir };
			str_copy(out[n].device, sizeof(out[n].device), vm->taps[i].ifname);
			snprintf(out[n].title, sizeof(out[n].title), "tap %s, TCP RTT, %s path, samples",
				 vm->taps[i].ifname, dir == NET_PATH_NETWORK ? "network" : "guest");
		}
	}
	return found ? n : -1;
}

static const struct cmd_opt hist_opts[] = {
	{ .name = "disk", .key = 'D', .arg = "DRIVE",
	  .help = "only this drive (default: every drive and interface)" },
	{ .name = "net", .key = 'N', .arg = "IFACE", .help = "only this interface" },
	{ .name = "delay", .key = 'd', .arg = "SECS",
	  .help = "the length of each interval, in seconds, fractions allowed (default 5)" },
	{ .name = "count", .key = 'n', .arg = "COUNT", .help = "intervals to print (default 1)" },
	CMD_OPTS_JSON("an object an interval, each on a line of its own"),
	{ NULL },
};

struct hist_opts {
	const char *disk, *net, *name;
	double interval;
	long count;
	bool json;
};

static bool hist_opt(const struct cmd_opt *o, const char *val, void *ctx)
{
	struct hist_opts *h = ctx;

	switch (o->key) {
	case 'D':
		h->disk = val;
		return true;
	case 'N':
		h->net = val;
		return true;
	case 'd':
		if (cmd_seconds(o, val, VIEW_MIN_INTERVAL, VIEW_MAX_INTERVAL, &h->interval))
			return true;
		/* Up to 0.1.0, hist -d was the drive. */
		if (!isdigit((unsigned char)val[0]) && val[0] != '.')
			fprintf(stderr, "vmprobe: hist -d is the interval, as in top; -D (--disk) "
					"picks a drive\n");
		return false;
	case 'n':
		return cmd_count(o, val, 1, LONG_MAX, &h->count);
	default:
		return cmd_json_opt(o, val, &h->json);
	}
}

/* Parses hist's options; CMD_GO to go on, else the exit code. */
static int hist_options(int argc, char **argv, struct hist_opts *o)
{
	int first, ret;

	*o = (struct hist_opts){ .interval = 5, .count = 1 };
	ret = cmd_parse(&cmd_hist, argc, argv, hist_opt, o, &first);
	if (ret != CMD_GO)
		return ret;
	if (o->disk && o->net) {
		fprintf(stderr, "vmprobe: hist takes --disk '%s' or --net '%s', not both\n", o->disk,
			o->net);
		return EXIT_USAGE;
	}
	o->name = argv[first];
	return CMD_GO;
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

/*
 * A series as its /metrics histogram: family, labels (but the VM's), the
 * interval's count and its non-empty log2 buckets, each the count of
 * values in (previous le, le], le in seconds or bytes.
 */
static json_object *series_json(const struct series *s)
{
	static const char *const family[] = {
		[K_DISK] = "vmprobe_disk_latency_seconds",
		[K_SIZE] = "vmprobe_network_packet_size_bytes",
		[K_RTT] = "vmprobe_network_tcp_rtt_seconds",
	};
	json_object *o = json_object_new_object(), *labels = json_object_new_object(),
		    *buckets = json_object_new_array();
	unsigned n = series_slots(s);
	__u64 total = 0;

	json_object_object_add(o, "family", json_object_new_string(family[s->kind]));
	json_object_object_add(labels, s->kind == K_DISK ? "drive" : "interface",
			       json_object_new_string(s->device));
	if (s->kind == K_DISK)
		json_object_object_add(labels, "operation",
				       json_object_new_string(disk_op_names[s->sub]));
	else if (s->kind == K_SIZE)
		json_object_object_add(labels, "direction",
				       json_object_new_string(s->sub == NET_DIR_RX ? "rx" : "tx"));
	else
		json_object_object_add(labels, "path", json_object_new_string(
			s->sub == NET_PATH_NETWORK ? "network" : "guest"));
	json_object_object_add(o, "labels", labels);
	for (unsigned i = 0; i < n; i++) {
		__u64 d = s->now[i] >= s->before[i] ? s->now[i] - s->before[i] : 0;
		json_object *b;

		total += d;
		if (!d)
			continue;
		b = json_object_new_object();
		if (i == n - 1)
			json_object_object_add(b, "le", json_object_new_string("+Inf"));
		else if (s->kind == K_SIZE)
			json_object_object_add(b, "le", json_object_new_uint64(1ULL << i));
		else
			json_object_object_add(b, "le", json_object_new_double(
				(double)(1ULL << i) / TIME_SLOT_UNITS));
		json_object_object_add(b, "count", json_object_new_uint64(d));
		json_object_array_add(buckets, b);
	}
	json_object_object_add(o, "count", json_object_new_uint64(total));
	json_object_object_add(o, "buckets", buckets);
	return o;
}

/* One interval as one line of JSON. */
static void print_json(const struct view *v, const struct view_vm *vm, const struct series *ser,
		       int n, double secs)
{
	json_object *o = view_json_interval(v, secs), *j = json_object_new_object(),
		    *arr = json_object_new_array();

	json_object_object_add(j, "name", json_object_new_string(vm->name));
	json_object_object_add(j, "namespace", json_object_new_string(vm->ns));
	json_object_object_add(j, "pid", json_object_new_int(vm->pid));
	json_object_object_add(o, "vm", j);
	for (int i = 0; i < n; i++)
		json_object_array_add(arr, series_json(&ser[i]));
	json_object_object_add(o, "histograms", arr);
	view_json_print(o);
}

/* Prints the n series' histograms of each interval; vm: the VM's identity, copied. */
static void hist_loop(struct view *v, const struct view_vm *vm, struct series *ser, int n,
		      const struct hist_opts *o)
{
	double t0 = now_seconds(), t;

	for (long k = 0; k < o->count; k++) {
		time_t now;
		char ts[16];

		view_wait((int)(o->interval * 1000), -1);
		series_follow(v, o, ser, n);
		for (int i = 0; i < n; i++)
			series_read(v, &ser[i], ser[i].now);
		t = now_seconds();
		if (o->json) {
			print_json(v, vm, ser, n, t - t0);
		} else {
			now = time(NULL);
			strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));
			printf("\n%s\n", ts);
			for (int i = 0; i < n; i++)
				series_print(&ser[i]);
			fflush(stdout);
		}
		for (int i = 0; i < n; i++)
			memcpy(ser[i].before, ser[i].now, sizeof(ser[i].now));
		t0 = t;
		if (view_interrupted())
			break;
	}
}

static int do_hist(int argc, char **argv)
{
	struct series *ser = NULL;
	const struct view_vm *vm;
	struct view_vm who;
	struct hist_opts o;
	int n, ret;
	struct view v;

	ret = hist_options(argc, argv, &o);
	if (ret != CMD_GO)
		return ret;
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
		/* With --json, stdout has only JSON. */
		fprintf(o.json ? stderr : stdout,
			"Tracing VM %s%s%s (%s) for %g s x %ld... Hit Ctrl-C to end.\n", vm->ns,
			vm->ns[0] ? "/" : "", vm->name,
			v.shared ? "vmprobe serve's counters" : "own probes", o.interval, o.count);
		fflush(stdout);
		who = *vm;
		hist_loop(&v, &who, ser, n, &o);
		ret = EXIT_OK;
	}
	free(ser);
	view_close(&v);
	return ret;
}

const struct cmd cmd_hist = {
	.name = "hist",
	.fn = do_hist,
	.summary = "log2 histograms of one VM over an interval, like biolatency",
	.about = "Log2 histograms of one VM over each interval, like biolatency: disk latency per "
		 "drive and operation (usecs), frame sizes per interface and direction (bytes; rx: "
		 "into the guest) and TCP RTT per interface and path (usecs; network, guest). A row "
		 "\"lo -> hi\" counts values above lo and at most hi: the bucket le=hi of /metrics. "
		 "VM is a name, NAMESPACE/NAME or PID. Reads vmprobe serve's counters when it runs, "
		 "else loads its own probes and removes them on exit.",
	.opts = hist_opts,
	.operands = "VM",
	.min_operands = 1,
	.max_operands = 1,
	.complete = { CMP_VM },
};

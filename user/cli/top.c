// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vmprobe top: one row per VM, network and disk rates over the last interval. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/view.h"
#include "core/util.h"

/* Sort columns: rates, then p99 latencies; all but F_NAME kept in row.v. */
enum field {
	F_RXPK, F_TXPK, F_RXBIT, F_TXBIT, F_RIOPS, F_WIOPS, F_RMB, F_WMB,
	F_P99, F_NRTT, F_GRTT, F_NAME, F_MAX
};

/* The latency histograms of a row, in the order of their columns. */
enum lat { L_DISK, L_NET, L_GUEST, L_MAX };

/* The sort field holding each histogram's p99. */
static const enum field p99_field[L_MAX] = { F_P99, F_NRTT, F_GRTT };

/* Counters of one VM, summed over its taps and drives. */
struct totals {
	__u64 pkts[NET_DIR_MAX], bytes[NET_DIR_MAX];
	__u64 ops[2], disk_bytes[2]; /* read, write */
	__u64 lat[L_MAX][DISK_LAT_SLOTS]; /* time slots: every disk op; RTT per path */
};
_Static_assert(NET_RTT_SLOTS <= DISK_LAT_SLOTS, "RTT slots fit the latency rows");

struct row {
	pid_t pid;
	char name[VM_NAME_MAX * 2 + 2]; /* NAMESPACE/NAME, or NAME */
	char vm_name[VM_NAME_MAX], ns[VM_NAME_MAX];
	struct totals prev, cur;
	double v[F_NAME]; /* rates (bytes/s for F_RMB, F_WMB) and p99s (seconds, < 0 when none) */
	double p50[L_MAX]; /* seconds; < 0 when none */
};

static const char *const field_names[F_MAX + 1] = {
	[F_RXPK] = "rxpk", [F_TXPK] = "txpk", [F_RXBIT] = "rxbit", [F_TXBIT] = "txbit",
	[F_RIOPS] = "riops", [F_WIOPS] = "wiops", [F_RMB] = "rmb", [F_WMB] = "wmb",
	[F_P99] = "p99", [F_NRTT] = "netrtt", [F_GRTT] = "guestrtt", [F_NAME] = "name",
};

static void totals_read(const struct view *v, const struct view_vm *vm, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; v->np && i < vm->nr_taps; i++) {
		if (vm->taps[i].slot < 0)
			continue;
		for (unsigned dir = 0; dir < NET_DIR_MAX; dir++) {
			struct net_stats st;

			net_read(v->np, vm->taps[i].slot, dir, &st);
			t->bytes[dir] += st.bytes;
			for (int s = 0; s < NET_SIZE_SLOTS; s++)
				t->pkts[dir] += st.size_slots[s];
			for (int s = 0; s < NET_RTT_SLOTS; s++)
				t->lat[dir == NET_PATH_NETWORK ? L_NET : L_GUEST][s] += st.rtt_slots[s];
		}
	}
	for (int i = 0; i < vm->nr_drives; i++) {
		if (vm->drives[i].slot < 0)
			continue;
		for (unsigned op = 0; op < DISK_OP_MAX; op++) {
			struct drive_stats st;

			view_drive_read(v, &vm->drives[i], op, &st);
			for (int s = 0; s < DISK_LAT_SLOTS; s++) {
				t->lat[L_DISK][s] += st.lat_slots[s];
				if (op <= DISK_OP_WRITE)
					t->ops[op] += st.lat_slots[s];
			}
			if (op <= DISK_OP_WRITE)
				t->disk_bytes[op] += st.bytes;
		}
	}
}

static double delta(__u64 now, __u64 before)
{
	return now >= before ? (double)(now - before) : 0;
}

/* Upper edge (seconds) of the log2 slot holding quantile q of the interval's values; -1: none. */
static double quantile(const __u64 *cur, const __u64 *prev, double q)
{
	double total = 0, seen = 0;

	for (int s = 0; s < DISK_LAT_SLOTS; s++)
		total += delta(cur[s], prev[s]);
	if (total == 0)
		return -1;
	for (int s = 0; s < DISK_LAT_SLOTS; s++) {
		seen += delta(cur[s], prev[s]);
		if (seen >= q * total)
			return (double)(1ULL << s) / TIME_SLOT_UNITS;
	}
	return -1;
}

static void row_rates(struct row *r, double secs)
{
	const struct totals *c = &r->cur, *p = &r->prev;

	r->v[F_RXPK] = delta(c->pkts[NET_DIR_RX], p->pkts[NET_DIR_RX]) / secs;
	r->v[F_TXPK] = delta(c->pkts[NET_DIR_TX], p->pkts[NET_DIR_TX]) / secs;
	r->v[F_RXBIT] = delta(c->bytes[NET_DIR_RX], p->bytes[NET_DIR_RX]) * 8 / secs;
	r->v[F_TXBIT] = delta(c->bytes[NET_DIR_TX], p->bytes[NET_DIR_TX]) * 8 / secs;
	r->v[F_RIOPS] = delta(c->ops[0], p->ops[0]) / secs;
	r->v[F_WIOPS] = delta(c->ops[1], p->ops[1]) / secs;
	r->v[F_RMB] = delta(c->disk_bytes[0], p->disk_bytes[0]) / secs;
	r->v[F_WMB] = delta(c->disk_bytes[1], p->disk_bytes[1]) / secs;
	for (int l = 0; l < L_MAX; l++) {
		r->p50[l] = quantile(c->lat[l], p->lat[l], 0.5);
		r->v[p99_field[l]] = quantile(c->lat[l], p->lat[l], 0.99);
	}
}

static enum field sort_field;

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (sort_field != F_NAME && x->v[sort_field] != y->v[sort_field])
		return x->v[sort_field] < y->v[sort_field] ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* A rate in at most 4 columns: 999, 9.9k, 99k, 999k, 1.2M. */
static void human(char *buf, size_t size, double v)
{
	static const char units[] = " kMGTP";
	int u = 0;

	while (v >= 999.5 && u < 5) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%.0f", v);
	else
		snprintf(buf, size, v < 9.95 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

/* A latency (seconds) in at most 4 columns: 512u, 33m, 17s; "-" for none. */
static void latency_text(char *buf, size_t size, double secs)
{
	double us = secs * 1e6;

	if (us < 0)
		snprintf(buf, size, "-");
	else if (us < 999.5)
		snprintf(buf, size, "%.0fu", us);
	else if (us < 999.5e3)
		snprintf(buf, size, "%.0fm", us / 1000);
	else
		snprintf(buf, size, "%.0fs", us / 1e6);
}

/*
 * Sorted, 79 columns; `eol` ends each line ("\r\n" in raw mode). Each
 * column is a pair: rx/tx, read/write, p50/p99.
 */
static void print_table(struct row *rows, int n, const char *eol)
{
	char a[8], b[8], c[7][20];

	qsort(rows, n, sizeof(*rows), row_cmp);
	printf("%-9s %9s %9s %9s %9s %9s %9s %9s%s", "VM", "RX/TXpk/s", "RX/TXb/s", "RD/WRio/s",
	       "RD/WRMB/s", "DISK50/99", "NET50/99", "GST50/99", eol);
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		for (int k = 0; k < 4; k++) {
			for (int j = 0; j < 2; j++) {
				double v = r->v[2 * k + j] / (2 * k + j >= F_RMB ? 1e6 : 1);

				/* MB/s below 10 keeps a decimal: a slow disk is not 0. */
				if (2 * k + j >= F_RMB && v < 9.95)
					snprintf(j ? b : a, sizeof(a), "%.1f", v);
				else
					human(j ? b : a, sizeof(a), v);
			}
			snprintf(c[k], sizeof(c[k]), "%s/%s", a, b);
		}
		for (int l = 0; l < L_MAX; l++) {
			latency_text(a, sizeof(a), r->p50[l]);
			latency_text(b, sizeof(b), r->v[p99_field[l]]);
			snprintf(c[4 + l], sizeof(c[4 + l]), "%s/%s", a, b);
		}
		printf("%-9.9s %9s %9s %9s %9s %9s %9s %9s%s", r->name, c[0], c[1], c[2], c[3], c[4],
		       c[5], c[6], eol);
	}
	if (!n)
		printf("(no QEMU VM on this host)%s", eol);
	if (eol[0] == '\n')
		printf("\n");
}

static void draw(struct row *rows, int n, double delay, const struct view *v)
{
	printf("\033[H\033[2J");
	printf("vmprobe top: every %gs, sort %s, %s (q quit, < > sort)\r\n\r\n", delay,
	       field_names[sort_field], v->shared ? "serve's counters" : "own probes");
	print_table(rows, n, "\r\n");
}

/* p50 and p99 (seconds; null: no sample) of one latency histogram. */
static json_object *quantiles_json(const struct row *r, enum lat l)
{
	json_object *q = json_object_new_object();

	json_object_object_add(q, "p50", view_json_seconds(r->p50[l]));
	json_object_object_add(q, "p99", view_json_seconds(r->v[p99_field[l]]));
	return q;
}

static json_object *row_json(const struct row *r)
{
	json_object *o = json_object_new_object(), *net = json_object_new_object(),
		    *rtt = json_object_new_object(), *disk = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(r->vm_name));
	json_object_object_add(o, "namespace", json_object_new_string(r->ns));
	json_object_object_add(o, "pid", json_object_new_int(r->pid));
	json_object_object_add(net, "rx_packets_per_second", json_object_new_double(r->v[F_RXPK]));
	json_object_object_add(net, "tx_packets_per_second", json_object_new_double(r->v[F_TXPK]));
	json_object_object_add(net, "rx_bits_per_second", json_object_new_double(r->v[F_RXBIT]));
	json_object_object_add(net, "tx_bits_per_second", json_object_new_double(r->v[F_TXBIT]));
	json_object_object_add(rtt, "network", quantiles_json(r, L_NET));
	json_object_object_add(rtt, "guest", quantiles_json(r, L_GUEST));
	json_object_object_add(net, "tcp_rtt_seconds", rtt);
	json_object_object_add(o, "network", net);
	json_object_object_add(disk, "read_operations_per_second",
			       json_object_new_double(r->v[F_RIOPS]));
	json_object_object_add(disk, "write_operations_per_second",
			       json_object_new_double(r->v[F_WIOPS]));
	json_object_object_add(disk, "read_bytes_per_second", json_object_new_double(r->v[F_RMB]));
	json_object_object_add(disk, "write_bytes_per_second", json_object_new_double(r->v[F_WMB]));
	json_object_object_add(disk, "latency_seconds", quantiles_json(r, L_DISK));
	json_object_object_add(o, "disk", disk);
	return o;
}

/* One interval as one line of JSON: the rows in the table's order. */
static void print_json(struct row *rows, int n, double secs, const struct view *v)
{
	json_object *o = view_json_interval(v, secs), *vms = json_object_new_array();

	qsort(rows, n, sizeof(*rows), row_cmp);
	json_object_object_add(o, "sort", json_object_new_string(field_names[sort_field]));
	for (int i = 0; i < n; i++)
		json_object_array_add(vms, row_json(&rows[i]));
	json_object_object_add(o, "vms", vms);
	view_json_print(o);
}

static struct termios saved_tio;
static bool tio_saved;

static void restore_terminal(void)
{
	if (!tio_saved)
		return;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	/* Leave the alternate screen; show the cursor. */
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	tio_saved = false;
}

static int raw_terminal(void)
{
	struct termios tio;

	if (tcgetattr(STDIN_FILENO, &saved_tio))
		return -errno;
	tio = saved_tio;
	tio.c_lflag &= ~(ICANON | ECHO);
	tio.c_cc[VMIN] = 0;
	tio.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio))
		return -errno;
	tio_saved = true;
	atexit(restore_terminal);
	fputs("\033[?1049h\033[?25l", stdout);
	return 0;
}

/* Keys: q quits; a letter picks the sort column; < and > step through them. */
static bool handle_keys(void)
{
	static const char keys[F_MAX] = {
		[F_RXPK] = 'r', [F_TXPK] = 't', [F_RXBIT] = 'R', [F_TXBIT] = 'T', [F_RIOPS] = 'i',
		[F_WIOPS] = 'w', [F_RMB] = 'b', [F_WMB] = 'B', [F_P99] = 'l', [F_NRTT] = 'N',
		[F_GRTT] = 'g', [F_NAME] = 'n',
	};
	char ch;

	while (read(STDIN_FILENO, &ch, 1) == 1) {
		if (ch == 'q' || ch == 'Q')
			return false;
		if (ch == '>')
			sort_field = (sort_field + 1) % F_MAX;
		else if (ch == '<')
			sort_field = (sort_field + F_MAX - 1) % F_MAX;
		for (int f = 0; f < F_MAX; f++)
			if (ch == keys[f])
				sort_field = f;
	}
	return true;
}

static const struct cmd_opt top_opts[] = {
	{ .name = "delay", .key = 'd', .arg = "SECS",
	  .help = "the interval, in seconds, fractions allowed (default 2)" },
	{ .name = "count", .key = 'n', .arg = "COUNT",
	  .help = "stop after COUNT intervals (default: run until q or a signal)" },
	{ .name = "batch", .key = 'b',
	  .help = "plain tables, one per interval, as top -b (also when standard input or output "
		  "is not a terminal)" },
	{ .name = "sort", .key = 's', .arg = "FIELD",
	  .help = "the column to sort by, largest first (name: alphabetically): packets/s, bits/s, "
		  "IOPS, bytes/s of each direction, p99 of disk latency (p99), of TCP RTT on the "
		  "network path (netrtt) and in the guest (guestrtt); default rxbit",
	  .values = field_names, .complete = CMP_WORDS },
	CMD_OPTS_JSON("an object an interval, each on a line of its own"),
	{ NULL },
};

struct top_opts {
	double delay;
	long count;
	bool batch, json;
};

static bool top_opt(const struct cmd_opt *o, const char *val, void *ctx)
{
	struct top_opts *t = ctx;
	int f;

	switch (o->key) {
	case 'd':
		return cmd_seconds(o, val, VIEW_MIN_INTERVAL, VIEW_MAX_INTERVAL, &t->delay);
	case 'n':
		return cmd_count(o, val, 1, LONG_MAX, &t->count);
	case 'b':
		t->batch = true;
		return true;
	case 's':
		if (!cmd_choice(o, val, &f))
			return false;
		sort_field = f;
		return true;
	default:
		return cmd_json_opt(o, val, &t->json);
	}
}

/* Parses top's options; CMD_GO to go on, else the exit code. */
static int top_options(int argc, char **argv, struct top_opts *o)
{
	int first, ret;

	*o = (struct top_opts){ .delay = 2 };
	sort_field = F_RXBIT;
	ret = cmd_parse(&cmd_top, argc, argv, top_opt, o, &first);
	if (ret != CMD_GO)
		return ret;
	if (o->json || !isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))
		o->batch = true;
	return CMD_GO;
}

/* A row per VM, its counters now: the start of an interval. NULL if out of memory. */
static struct row *rows_start(const struct view *v, int *n)
{
	struct row *rows = calloc(v->nr_vms ? v->nr_vms : 1, sizeof(*rows));

	*n = v->nr_vms;
	for (int i = 0; rows && i < *n; i++) {
		const struct view_vm *vm = &v->vms[i];

		rows[i].pid = vm->pid;
		snprintf(rows[i].name, sizeof(rows[i].name), "%s%s%s", vm->ns, vm->ns[0] ? "/" : "",
			 vm->name);
		snprintf(rows[i].vm_name, sizeof(rows[i].vm_name), "%s", vm->name);
		snprintf(rows[i].ns, sizeof(rows[i].ns), "%s", vm->ns);
		totals_read(v, vm, &rows[i].prev);
		rows[i].cur = rows[i].prev;
	}
	return rows;
}

/* The end of the interval: each row's rates; a VM gone meanwhile shows 0. */
static void rows_finish(const struct view *v, struct row *rows, int n, double secs)
{
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < v->nr_vms; j++)
			if (v->vms[j].pid == rows[i].pid)
				totals_read(v, &v->vms[j], &rows[i].cur);
		row_rates(&rows[i], secs);
	}
}

/* Waits out the interval from t0, redrawing `shown` when a key changes the sort. */
static bool interval_wait(double t0, const struct top_opts *o, struct row *shown, int nr_shown,
			  const struct view *v)
{
	bool go = true;
	double left;

	while (go && (left = t0 + o->delay - now_seconds()) > 0) {
		go = view_wait((int)(left * 1000) + 1, o->batch ? -1 : STDIN_FILENO);
		if (go && !o->batch) {
			enum field was = sort_field;

			go = handle_keys();
			if (go && shown && sort_field != was)
				draw(shown, nr_shown, o->delay, v);
		}
	}
	return go;
}

static int do_top(int argc, char **argv)
{
	struct row *rows = NULL, *shown = NULL;
	int nr_shown = 0, n, ret;
	struct top_opts o;
	struct view v;

	ret = top_options(argc, argv, &o);
	if (ret != CMD_GO)
		return ret;
	log_max_level = LOG_ERROR;
	view_catch_signals();
	if (view_open(&v))
		return EXIT_FAIL;
	if (!o.batch && raw_terminal())
		o.batch = true;
	ret = EXIT_OK;
	for (long k = 0; !o.count || k < o.count; k++) {
		double t0 = now_seconds(), secs;

		rows = rows_start(&v, &n);
		if (!rows) {
			ret = EXIT_FAIL;
			break;
		}
		if (!interval_wait(t0, &o, shown, nr_shown, &v) || view_refresh(&v))
			break;
		secs = now_seconds() - t0;
		rows_finish(&v, rows, n, secs);
		free(shown);
		shown = rows;
		nr_shown = n;
		rows = NULL;
		if (o.json)
			print_json(shown, nr_shown, secs, &v);
		else if (o.batch)
			print_table(shown, nr_shown, "\n");
		else
			draw(shown, nr_shown, o.delay, &v);
		fflush(stdout);
	}
	restore_terminal();
	free(rows);
	free(shown);
	view_close(&v);
	return ret;
}

const struct cmd cmd_top = {
	.name = "top",
	.fn = do_top,
	.summary = "per-VM network and disk rates and latencies, live",
	.about = "One row per VM over the last interval, each column a pair: packets/s and bits/s "
		 "into (RX) and out of (TX) the guest, disk read/write IOPS and MB/s, p50/p99 of "
		 "disk latency, of TCP RTT on the network path and of TCP RTT in the guest (upper "
		 "edge of the log2 bucket; u = usecs, m = msecs, s = secs; - = no sample). Reads "
		 "vmprobe serve's counters when it runs, else loads its own probes and removes them "
		 "on exit.\n"
		 "Keys: q quits; r t R T i w b B l N g n sort by rxpk txpk rxbit txbit riops wiops "
		 "rmb wmb p99 netrtt guestrtt name; < and > step through them.",
	.opts = top_opts,
};

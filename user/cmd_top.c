// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vmprobe top: one row per VM, network and disk rates over the last interval. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "pin.h"
#include "util.h"

/* Sort columns; the first F_P99 are rates kept in row.v. */
enum field { F_RXPK, F_TXPK, F_RXBIT, F_TXBIT, F_RIOPS, F_WIOPS, F_RMB, F_WMB, F_P99, F_NAME, F_MAX };

/* Counters of one VM, summed over its taps and drives. */
struct totals {
	__u64 pkts[NET_DIR_MAX], bytes[NET_DIR_MAX];
	__u64 ops[2], disk_bytes[2]; /* read, write */
	__u64 lat[DISK_LAT_SLOTS];   /* every operation */
};

struct row {
	pid_t pid;
	char name[VM_NAME_MAX * 2 + 2];
	struct totals prev, cur;
	double v[F_P99]; /* rates of the interval, indexed by enum field */
	double p50, p99; /* usecs; < 0 when no IO */
};


static const char *const field_names[F_MAX] = {
	[F_RXPK] = "rxpk", [F_TXPK] = "txpk", [F_RXBIT] = "rxbit", [F_TXBIT] = "txbit",
	[F_RIOPS] = "riops", [F_WIOPS] = "wiops", [F_RMB] = "rmb", [F_WMB] = "wmb",
	[F_P99] = "p99", [F_NAME] = "name",
};

static void totals_read(const struct view *v, const struct view_vm *vm, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; v->net_on && i < vm->nr_taps; i++) {
		if (vm->taps[i].slot < 0)
			continue;
		for (unsigned dir = 0; dir < NET_DIR_MAX; dir++) {
			struct net_stats st;

			net_read(&v->np, vm->taps[i].slot, dir, &st);
			t->bytes[dir] += st.bytes;
			for (int s = 0; s < NET_SIZE_SLOTS; s++)
				t->pkts[dir] += st.size_slots[s];
		}
	}
	for (int i = 0; v->disk_on && i < vm->nr_drives; i++) {
		if (vm->drives[i].slot < 0)
			continue;
		for (unsigned op = 0; op < DISK_OP_MAX; op++) {
			struct drive_stats st;

			disk_read(&v->dp, vm->drives[i].slot, op, &st);
			for (int s = 0; s < DISK_LAT_SLOTS; s++) {
				t->lat[s] += st.lat_slots[s];
				if (op <= DISK_OP_WRITE)
					t->ops[op] += st.lat_slots[s];
			}
			if (op <= DISK_OP_WRITE)
				t->disk_bytes[op] += st.bytes;
		}
	}
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double delta(__u64 now, __u64 before)
{
	return now >= before ? (double)(now - before) : 0;
}

/* Upper edge (usecs) of the log2 slot holding quantile q of the interval's latencies. */
static double quantile(const struct totals *cur, const struct totals *prev, double q)
{
	double total = 0, seen = 0;

	for (int s = 0; s < DISK_LAT_SLOTS; s++)
		total += delta(cur->lat[s], prev->lat[s]);
	if (total == 0)
		return -1;
	for (int s = 0; s < DISK_LAT_SLOTS; s++) {
		seen += delta(cur->lat[s], prev->lat[s]);
		if (seen >= q * total)
			return (double)(1ULL << s) / 1000;
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
	r->v[F_RMB] = delta(c->disk_bytes[0], p->disk_bytes[0]) / 1e6 / secs;
	r->v[F_WMB] = delta(c->disk_bytes[1], p->disk_bytes[1]) / 1e6 / secs;
	r->p50 = quantile(c, p, 0.5);
	r->p99 = quantile(c, p, 0.99);
}

static enum field sort_field;

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	double vx, vy;

	if (sort_field == F_NAME)
		return strcmp(x->name, y->name);
	vx = sort_field == F_P99 ? x->p99 : x->v[sort_field];
	vy = sort_field == F_P99 ? y->p99 : y->v[sort_field];
	if (vx != vy)
		return vx < vy ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* Fits a rate in 6 columns: 999, 12.3k, 4.56M, 7.89G. */
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
		snprintf(buf, size, v < 9.995 ? "%.2f%c" : v < 99.95 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

static void usec(char *buf, size_t size, double us)
{
	if (us < 0)
		snprintf(buf, size, "-");
	else if (us < 1000)
		snprintf(buf, size, "%.0fu", us);
	else if (us < 1e6)
		snprintf(buf, size, "%.0fm", us / 1000);
	else
		snprintf(buf, size, "%.0fs", us / 1e6);
}

/* Sorted, 78 columns; `eol` ends each line ("\r\n" in raw mode). */
static void print_table(struct row *rows, int n, const char *eol)
{
	char c[10][16];

	qsort(rows, n, sizeof(*rows), row_cmp);
	printf("%-14s %6s %6s %6s %6s %5s %5s %5s %5s %5s %5s%s", "VM", "RXPK/s", "TXPK/s", "RXb/s",
	       "TXb/s", "RDIO", "WRIO", "RDMB", "WRMB", "P50", "P99", eol);
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		for (int k = 0; k < 6; k++)
			human(c[k], sizeof(c[k]), r->v[k]);
		snprintf(c[6], sizeof(c[6]), "%.1f", r->v[F_RMB]);
		snprintf(c[7], sizeof(c[7]), "%.1f", r->v[F_WMB]);
		usec(c[8], sizeof(c[8]), r->p50);
		usec(c[9], sizeof(c[9]), r->p99);
		printf("%-14.14s %6s %6s %6s %6s %5s %5s %5s %5s %5s %5s%s", r->name, c[0], c[1], c[2],
		       c[3], c[4], c[5], c[6], c[7], c[8], c[9], eol);
	}
	if (!n)
		printf("(no QEMU VM on this host)%s", eol);
	if (eol[0] == '\n')
		printf("\n");
}

static void draw(struct row *rows, int n, long delay, const struct view *v)
{
	printf("\033[H\033[2J");
	printf("vmprobe top: every %lds, sort %s, %s (q quit, < > sort)\r\n\r\n", delay,
	       field_names[sort_field], v->shared ? "serve's counters" : "own probes");
	print_table(rows, n, "\r\n");
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
		[F_WIOPS] = 'w', [F_RMB] = 'b', [F_WMB] = 'B', [F_P99] = 'l', [F_NAME] = 'n',
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

static void usage(FILE *f)
{
	fprintf(f, "usage: vmprobe top [-d SECS] [-n COUNT] [-b] [--sort FIELD]\n"
		   "  One row per VM over the last interval: packets/s and bits/s into (RX)\n"
		   "  and out of (TX) the guest, disk read/write IOPS and MB/s, and p50/p99\n"
		   "  disk latency (upper edge of its log2 bucket; u = usecs, m = msecs).\n"
		   "  TCP RTT columns do not exist yet. Reads vmprobe serve's counters when\n"
		   "  it runs, else loads its own probes and removes them on exit.\n"
		   "  -d, --delay SECS    interval (default 2)\n"
		   "  -n, --count COUNT   stop after COUNT intervals\n"
		   "  -b, --batch         plain tables, one per interval (also without a tty)\n"
		   "  -s, --sort FIELD    rxpk txpk rxbit txbit riops wiops rmb wmb p99 name\n"
		   "                      (default rxbit)\n"
		   "  keys: q quit; r t R T i w b B l n sort by that column; < > previous/next\n");
}

int do_top(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "delay", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "batch", no_argument, NULL, 'b' },
		{ "sort", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct row *rows = NULL, *shown = NULL;
	int opt, nr_shown = 0, ret = EXIT_FAIL;
	long delay = 2, count = 0;
	bool batch = false, go = true;
	struct view v;

	sort_field = F_RXBIT;
	while ((opt = getopt_long(argc, argv, "d:n:bs:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (!view_arg(optarg, 1, 3600, &delay))
				goto bad;
			break;
		case 'n':
			if (!view_arg(optarg, 1, LONG_MAX, &count))
				goto bad;
			break;
		case 'b':
			batch = true;
			break;
		case 's':
			sort_field = F_MAX;
			for (int f = 0; f < F_MAX; f++)
				if (!strcmp(optarg, field_names[f]))
					sort_field = f;
			if (sort_field == F_MAX)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))
		batch = true;

	log_max_level = LOG_ERROR;
	view_catch_signals();
	if (view_open(&v))
		return EXIT_FAIL;
	if (!batch && raw_terminal())
		batch = true;
	for (long k = 0; go && (!count || k < count); k++) {
		double t0 = now_seconds(), left;
		int n = v.nr_vms;

		/* A VM's row covers the interval from here; a VM gone meanwhile shows 0. */
		rows = calloc(n ? n : 1, sizeof(*rows));
		if (!rows)
			goto cleanup;
		for (int i = 0; i < n; i++) {
			const struct view_vm *vm = &v.vms[i];

			rows[i].pid = vm->pid;
			snprintf(rows[i].name, sizeof(rows[i].name), "%s%s%s", vm->ns,
				 vm->ns[0] ? "/" : "", vm->name);
			totals_read(&v, vm, &rows[i].prev);
			rows[i].cur = rows[i].prev;
		}
		while (go && (left = t0 + delay - now_seconds()) > 0) {
			go = view_wait((int)(left * 1000) + 1, batch ? -1 : STDIN_FILENO);
			if (go && !batch) {
				enum field was = sort_field;

				go = handle_keys();
				if (go && shown && sort_field != was)
					draw(shown, nr_shown, delay, &v);
			}
		}
		if (!go || view_refresh(&v))
			break;
		for (int i = 0; i < n; i++)
			for (int j = 0; j < v.nr_vms; j++)
				if (v.vms[j].pid == rows[i].pid)
					totals_read(&v, &v.vms[j], &rows[i].cur);
		for (int i = 0; i < n; i++)
			row_rates(&rows[i], now_seconds() - t0);
		free(shown);
		shown = rows;
		nr_shown = n;
		rows = NULL;
		if (batch)
			print_table(shown, nr_shown, "\n");
		else
			draw(shown, nr_shown, delay, &v);
		fflush(stdout);
	}
	ret = EXIT_OK;
cleanup:
	restore_terminal();
	free(rows);
	free(shown);
	view_close(&v);
	return ret;
bad:
	usage(stderr);
	return EXIT_USAGE;
}

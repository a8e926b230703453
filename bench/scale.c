// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `make bench`, a scrape at scale: /metrics of 1, 100, 1,000 and 10,000
 * synthetic VMs, fetched over HTTP from the server `vmprobe serve` runs,
 * as text, OpenMetrics and protobuf, plain and gzip: bytes and time
 * (wall clock and CPU) per scrape and per VM, and memory per VM. Prints
 * `BENCH <name> <value> <unit>` lines and `#` commentary.
 *
 * No QEMU: each VM's command line (one virtio drive and one tap) goes
 * through the parser and the inventory discovery uses, every probe is
 * opened as serve opens it (its BPF maps sized for 10,000 VMs) and is
 * given the VM (vm_add); the tap and the drive are then counted in slots
 * of the real maps as a sync would count them, without attaching TC to
 * 10,000 taps or hooks to 10,000 processes. Their counters are written
 * into the mmapped maps as traffic would leave them: every operation of
 * the drive and both directions of the tap busy, TCP flows open, QEMU's
 * own host sockets sampled, and one tap in ten with drops.
 *
 * Goals (issue 17): with the default configuration at most 4 KB of
 * protobuf per VM; 10,000 VMs scraped in at most 1 s; the cost per VM at
 * 10,000 within 1.2x of that at 100, measured side by side with a second
 * table of 100 VMs (side_by_side).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/config.h"
#include "core/discovery.h"
#include "core/expo.h"
#include "core/pin.h"
#include "core/server.h"
#include "core/storage.h"
#include "metrics.pb-c.h"
#include "net.skel.h"
#include "probes/disk/disk_probe.h"
#include "probes/net/net_probe.h"

#define MAX_VMS 10000
/* Every tap with traffic holds this many TCP flows open (the table holds 32 a tap). */
#define FLOWS_PER_TAP 16
/* One tap in DROPS_EVERY has dropped frames (one reason, to the guest). */
#define DROPS_EVERY 10
/* Timed scrapes of each format per table size, after one to warm up. */
#define RUNS_SMALL 9
#define RUNS_LARGE 5

static const unsigned vm_counts[] = { 1, 100, 1000, 10000 };
#define NR_COUNTS ARRAY_SIZE(vm_counts)

/*
 * What is fetched: a format, plain or gzip, from vmprobe's default
 * configuration (native histograms alone in protobuf: what a Prometheus
 * with native histograms keeps of a histogram) or with the classic
 * buckets beside them in protobuf (classic_in_protobuf: true, for a
 * Prometheus that scrapes classic histograms too).
 */
static const struct fetch {
	const char *name;
	enum expo_format format;
	bool gzip;
	bool with_classic;
} fetches[] = {
	{ "text", EXPO_TEXT, false, false },
	{ "text_gzip", EXPO_TEXT, true, false },
	{ "openmetrics_gzip", EXPO_OPENMETRICS, true, false },
	{ "protobuf", EXPO_PROTOBUF, false, false },
	{ "protobuf_gzip", EXPO_PROTOBUF, true, false },
	{ "protobuf_classic", EXPO_PROTOBUF, false, true },
	{ "protobuf_classic_gzip", EXPO_PROTOBUF, true, true },
};
#define WITH_CLASSIC "exposition:\n  classic_in_protobuf: true\n"
#define NR_FETCHES ARRAY_SIZE(fetches)

/* What one scrape of one table gave: median time, body bytes, series. */
struct result {
	double ms;
	double cpu_ms; /* CPU time of this process: the server, and the client reading */
	size_t bytes;
	size_t series; /* samples in the text formats, metrics in protobuf */
	size_t host_series; /* of them, the host's block devices': as the host's own IO has it */
};

static double clock_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The resident memory of this process (vmprobe's server and tables), KiB; -1 if unknown. */
static long rss_kib(void)
{
	char text[4096], *p;

	if (read_file("/proc/self/status", text, sizeof(text)) <= 0 || !(p = strstr(text, "VmRSS:")))
		return -1;
	return strtol(p + 6, NULL, 10);
}

/* A loopback port free now (the server binds it next). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -errno;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* The traffic of a busy drive: latencies 16 us .. 8 ms, sizes 4 KiB .. 1 MiB. */
static void fill_drive(struct disk_probe *dp, unsigned slot, unsigned seed)
{
	for (unsigned op = 0; op < DISK_OP_MAX; op++) {
		struct drive_stats *st = &dp->store.stats[drive_stats_index(slot, op)];

		memset(st, 0, sizeof(*st));
		for (unsigned s = 14; s <= 23; s++) {
			st->lat_slots[s] = 1000ULL * (seed % 7 + 1) * (s - 13) + op;
			st->lat_sum_ns += st->lat_slots[s] * (1000000000ULL >> (30 - s));
		}
		if (op == DISK_OP_FLUSH) {
			st->size_slots[0] = expo_hist_count(st->lat_slots, DISK_LAT_SLOTS);
			continue;
		}
		for (unsigned s = 12; s <= 20; s++) {
			st->size_slots[s] = 700ULL * (seed % 5 + 1) * (21 - s) + op;
			st->bytes += st->size_slots[s] << (s - 1);
		}
	}
}

/* A busy tap: frames of 64 B .. 2 KiB and GSO ones, RTTs 64 us .. 16 ms, both ways. */
static void fill_tap(struct net_probe *np, unsigned slot, unsigned seed)
{
	for (unsigned dir = 0; dir < NET_DIR_MAX; dir++) {
		struct net_tcp_cell *tcp = &np->tcp[net_tcp_index(slot, dir)];

		for (unsigned cpu = 0; cpu < np->nr_cpus; cpu++) {
			struct net_pkt_cell *c =
				&np->stats[net_stats_index(cpu, slot, dir, np->max_ifaces)];

			memset(c, 0, sizeof(*c));
			for (unsigned s = 6; s <= 11; s++)
				c->size_slots[s] = 100003ULL * (seed % 11 + 1) + s * 17 + cpu + dir;
			c->size_slots[16] = 5000ULL + seed % 13;
			for (unsigned s = 0; s < NET_SIZE_SLOTS; s++)
				c->bytes += c->size_slots[s] << (s > 0 ? s - 1 : 0);
		}
		memset(tcp, 0, sizeof(*tcp));
		tcp->tcp_retransmits = seed % 3;
		tcp->tcp_resets = seed % 2;
		tcp->tcp_opened = 40 + seed % 9;
		for (unsigned s = 16; s <= 24; s++) {
			tcp->rtt_slots[s] = 300ULL * (s - 15) + seed % 5;
			tcp->rtt_sum_ns += tcp->rtt_slots[s] * (1000000000ULL >> (30 - s));
		}
	}
}

/* The VM's host sockets (VNC, migration): a few srtt samples. */
static int fill_host_tcp(struct net_probe *np, __u32 tgid, unsigned seed)
{
	struct net_host_tcp t = { .retransmits = seed % 2 };

	for (unsigned s = 17; s <= 19; s++) {
		t.srtt_slots[s] = 10 + seed % 7;
		t.srtt_sum_ns += t.srtt_slots[s] * (1000000000ULL >> (30 - s));
	}
	return bpf_map_update_elem(bpf_map__fd(np->skel->maps.host_tcp), &tgid, &t, BPF_EXIST)
		       ? -errno : 0;
}

/* Open TCP flows of the tap, and a drop now and then, in the probe's hash maps. */
static int fill_tap_maps(struct net_probe *np, unsigned slot, unsigned seed)
{
	struct net_flow flow = { .state = NET_FLOW_ESTABLISHED, .opener = NET_DIR_TX };
	int err = 0;

	for (unsigned f = 0; f < FLOWS_PER_TAP && !err; f++) {
		struct net_flow_key k = { .slot = slot, .guest_port = (__u16)(40000 + f),
					  .peer_port = 443 };

		k.guest_addr[0] = htonl(0x0a000000 | seed);
		k.peer_addr[0] = htonl(0xc0a80001);
		if (bpf_map_update_elem(bpf_map__fd(np->skel->maps.net_flows), &k, &flow, BPF_ANY))
			err = -errno;
	}
	if (!err && seed % DROPS_EVERY == 0) {
		/* SKB_DROP_REASON_NOT_SPECIFIED: a name the kernel has for sure. */
		struct net_drop_key k = { .slot = slot, .dir = NET_DIR_RX, .reason = 2 };
		__u64 n = 3 + seed % 5;

		if (bpf_map_update_elem(bpf_map__fd(np->skel->maps.net_drops), &k, &n, BPF_ANY))
			err = -errno;
	}
	return err;
}

/*
 * A VM as discovery would find it: its command line parsed, its drive
 * and NIC taken from it by the inventory, every probe told of it.
 */
static struct vm *vm_new(struct discovery *d, unsigned i)
{
	char name[80], ns[24] = "", uuid[40], drive[128], tap[80], dev[96];
	char *argv[] = { "qemu-system-x86_64", "-name", name, "-uuid", uuid, "-drive", drive,
			 "-device", "virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0",
			 "-netdev", tap, "-device", dev };
	struct vm_snapshot snap = {};
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	/*
	 * Quotes, a backslash and UTF-8: the label escaping is part of the
	 * cost. Every other VM is a KubeVirt one, NAMESPACE_NAME in a pod.
	 */
	if (i % 2)
		snprintf(ns, sizeof(ns), "tenant-%u_", i % 10);
	snprintf(name, sizeof(name), "guest=%sweb \"frontend\" \\ %05u caf\xc3\xa9",
		 i % 2 ? ns : "", i);
	snprintf(uuid, sizeof(uuid), "%08x-0000-4000-8000-%012x", i, i);
	snprintf(drive, sizeof(drive), "file=/var/lib/libvirt/images/vm%05u.qcow2,format=qcow2,"
		 "if=none,id=drive-virtio-disk0,cache=none,aio=threads", i);
	snprintf(tap, sizeof(tap), "tap,ifname=vnet%u,id=hostnet0,script=no,downscript=no", i);
	snprintf(dev, sizeof(dev), "virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:%02x:%02x:%02x",
		 i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff);
	if (qemu_parse_argv(ARRAY_SIZE(argv), argv, &vm->spec)) {
		free(vm);
		return NULL;
	}
	/* Past pid_max: no process of this host is taken for a VM. */
	vm->pid = (pid_t)(5000000 + i);
	vm->start_time = 4242 + i;
	vm->netns_fd = -1;
	snprintf(vm->pid_str, sizeof(vm->pid_str), "%d", (int)vm->pid);
	vm_identity(vm->spec.name, i % 2 ? "0::/kubepods/pod" : "0::/machine.slice", vm->pid,
		    vm->spec.uuid, vm->name, sizeof(vm->name), vm->ns, sizeof(vm->ns));
	inventory_update(d, vm, &snap, NULL);
	return vm;
}

/* The probes count the VM's tap and drive, as their syncs would, and traffic fills them. */
static int vm_count(struct discovery *d, struct vm *vm, unsigned i)
{
	struct probe *pn = probes_find(d->probes, "net"), *pd = probes_find(d->probes, "disk");
	struct vm_disk *disk = &vm->disks[0];
	struct vm_iface *ifc = &vm->ifaces[0];
	struct drive_state *ds;
	struct tap_state *t;
	int slot, err;

	if (vm->nr_disks != 1 || vm->nr_ifaces != 1)
		return -EPROTO;
	slot = net_slot_alloc(pn->priv);
	t = slot >= 0 ? calloc(1, sizeof(*t)) : NULL;
	if (!t)
		return slot < 0 ? slot : -ENOMEM;
	/* With no namespace to enter, net_vm_del() only frees the slot. */
	*t = (struct tap_state){ .ifindex = (int)(1000 + i), .netns_cookie = 1, .slot = slot };
	ifc->priv[pn->id] = t;
	coverage_set(&ifc->cov, pn, true, NULL);
	fill_tap(pn->priv, (unsigned)slot, i);
	err = fill_tap_maps(pn->priv, (unsigned)slot, i);
	if (!err)
		err = fill_host_tcp(pn->priv, (__u32)vm->pid, i);
	if (err)
		return err;

	slot = drive_store_get(&((struct disk_probe *)pd->priv)->store);
	ds = slot >= 0 ? calloc(1, sizeof(*ds)) : NULL;
	if (!ds)
		return slot < 0 ? slot : -ENOMEM;
	ds->slot = slot;
	disk->priv[pd->id] = ds;
	disk->resolved = true;
	coverage_set(&disk->cov, pd, true, NULL);
	fill_drive(pd->priv, (unsigned)slot, i);
	return 0;
}

/* Grows the table to n VMs. */
static int vms_add(struct discovery *d, unsigned *have, unsigned n)
{
	for (; *have < n; (*have)++) {
		struct vm *vm = vm_new(d, *have);
		int err = vm ? 0 : -ENOMEM;

		if (!vm)
			return err;
		vm->next = d->vms;
		d->vms = vm;
		for (unsigned p = 0; p < d->probes->nr && !err; p++)
			err = d->probes->probes[p].ops->vm_add(&d->probes->probes[p], d, vm);
		if (!err)
			err = vm_count(d, vm, *have);
		if (err)
			return err;
	}
	d->table_gen++;
	return 0;
}

static void vms_free(struct discovery *d)
{
	while (d->vms) {
		struct vm *vm = d->vms;

		d->vms = vm->next;
		for (unsigned p = 0; p < d->probes->nr; p++)
			if (vm->priv[p])
				d->probes->probes[p].ops->vm_del(&d->probes->probes[p], d, vm);
		free(vm);
	}
}

/* The body of a gzip response, decoded into out. */
static int gunzip(const char *in, size_t len, struct strbuf *out)
{
	z_stream zs = { .next_in = (Bytef *)in, .avail_in = (uInt)len };
	char buf[1 << 16];
	int zr = inflateInit2(&zs, 15 + 16);

	while (zr == Z_OK) {
		zs.next_out = (Bytef *)buf;
		zs.avail_out = sizeof(buf);
		zr = inflate(&zs, Z_NO_FLUSH);
		sb_add(out, buf, sizeof(buf) - zs.avail_out);
	}
	inflateEnd(&zs);
	return zr == Z_STREAM_END && !out->oom ? 0 : -EPROTO;
}

/*
 * A 200 response's header: whether it is gzip, and its Content-Length;
 * -EPROTO for anything else.
 */
static int parse_head(const char *head, bool *gzip, size_t *length)
{
	const char *cl = strcasestr(head, "\r\nContent-Length: ");

	if (strncmp(head, "HTTP/1.1 200 ", 13) || !cl)
		return -EPROTO;
	*gzip = strcasestr(head, "\r\nContent-Encoding: gzip\r\n") != NULL;
	*length = strtoull(cl + 18, NULL, 10);
	return 0;
}

/*
 * GET /metrics as a Prometheus would ask for `f`, read to the end: the
 * bytes of the body as sent in *wire_bytes, and, if `out`, the body
 * (decoded if gzip). Only the first, untimed scrape of a series keeps it:
 * a scraper's own copying is not vmprobe's cost.
 */
static int scrape(int port, const struct fetch *f, struct strbuf *out, size_t *wire_bytes)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static char buf[1 << 20];
	struct strbuf raw;
	size_t head = 0, got = 0, length = 0;
	char req[512], *end = NULL;
	bool gzip = false;
	ssize_t n;
	int fd, err = 0;

	snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: %s\r\n"
		 "Accept-Encoding: %s\r\nConnection: close\r\n\r\n",
		 expo_media_types[f->format], f->gzip ? "gzip" : "identity");
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		err = -errno;
		close(fd);
		return err;
	}
	sb_init(&raw);
	/* The header, then whatever came with it. */
	while (!end && head < sizeof(buf) - 1 && (n = read(fd, buf + head, sizeof(buf) - 1 - head)) > 0) {
		head += (size_t)n;
		buf[head] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	err = end ? 0 : -EPROTO;
	if (!err) {
		*end = '\0';
		err = parse_head(buf, &gzip, &length);
	}
	if (!err && gzip != f->gzip)
		err = -EPROTO;
	if (!err) {
		got = head - (size_t)(end + 4 - buf);
		if (out)
			sb_add(&raw, end + 4, got);
		while ((n = read(fd, buf, sizeof(buf))) > 0) {
			got += (size_t)n;
			if (out)
				sb_add(&raw, buf, (size_t)n);
		}
		err = n < 0 ? -errno : got != length || raw.oom ? -EPROTO : 0;
	}
	close(fd);
	*wire_bytes = got;
	if (!err && out) {
		sb_reset(out);
		if (gzip)
			err = gunzip(raw.buf, raw.len, out);
		else
			sb_add(out, raw.buf ? raw.buf : "", raw.len);
	}
	sb_free(&raw);
	return err;
}

/* The host's block latency: series for each device with IO since the probes opened. */
#define HOST_BLOCK "vmprobe_host_block_latency_seconds"

/* Samples of a text body, how many are the host block devices', how many vmprobe_vm_info's. */
static void text_count(const struct strbuf *b, size_t *series, size_t *host, size_t *vms)
{
	*series = *host = *vms = 0;
	for (const char *p = b->buf; p && p < b->buf + b->len;) {
		const char *nl = memchr(p, '\n', (size_t)(b->buf + b->len - p));

		if (*p != '#') {
			(*series)++;
			*vms += !strncmp(p, "vmprobe_vm_info{", 16);
			*host += !strncmp(p, HOST_BLOCK, strlen(HOST_BLOCK));
		}
		p = nl ? nl + 1 : b->buf + b->len;
	}
}

/* The same of a length-delimited protobuf body (decoded): metrics. */
static int pb_count(const struct strbuf *b, size_t *series, size_t *host, size_t *vms)
{
	size_t off = 0;

	*series = *host = *vms = 0;
	while (off < b->len) {
		Io__Prometheus__Client__MetricFamily *mf;
		uint64_t len = 0;
		int shift = 0;

		do {
			if (off >= b->len || shift > 63)
				return -EPROTO;
			len |= (uint64_t)(b->buf[off] & 0x7f) << shift;
			shift += 7;
		} while (b->buf[off++] & 0x80);
		if (len > b->len - off)
			return -EPROTO;
		mf = io__prometheus__client__metric_family__unpack(NULL, len,
								   (const uint8_t *)b->buf + off);
		if (!mf)
			return -EPROTO;
		*series += mf->n_metric;
		if (!strcmp(mf->name, "vmprobe_vm_info"))
			*vms += mf->n_metric;
		if (!strcmp(mf->name, HOST_BLOCK))
			*host += mf->n_metric;
		io__prometheus__client__metric_family__free_unpacked(mf, NULL);
		off += len;
	}
	return 0;
}

/* scrape(), timed: wall-clock and CPU milliseconds; `wire` may be NULL. */
static int timed_scrape(int port, const struct fetch *f, struct strbuf *out, size_t *wire,
			double *ms, double *cpu)
{
	double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	size_t unused;
	int err = scrape(port, f, out, wire ? wire : &unused);

	*ms = clock_ms(CLOCK_MONOTONIC) - t0;
	*cpu = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
	return err;
}

/* Scrapes `f` runs + 1 times (the first unkept); checks each body holds every VM. */
static int measure(int port, const struct fetch *f, unsigned nr_vms, struct result *res)
{
	unsigned runs = nr_vms >= 10000 ? RUNS_LARGE : RUNS_SMALL;
	double ms[RUNS_SMALL], cpu[RUNS_SMALL];
	struct strbuf body;
	int err = 0;

	sb_init(&body);
	for (unsigned r = 0; r <= runs && !err; r++) {
		size_t vms = 0, wire = 0;
		double t_ms, t_cpu;

		err = timed_scrape(port, f, r ? NULL : &body, &wire, &t_ms, &t_cpu);
		if (r) {
			ms[r - 1] = t_ms;
			cpu[r - 1] = t_cpu;
		}
		res->bytes = wire;
		if (r || err)
			continue;
		if (f->format == EXPO_PROTOBUF)
			err = pb_count(&body, &res->series, &res->host_series, &vms);
		else
			text_count(&body, &res->series, &res->host_series, &vms);
		if (!err && vms != nr_vms) {
			fprintf(stderr, "bench: a %s scrape of %u VMs held %zu of them\n", f->name,
				nr_vms, vms);
			err = -EPROTO;
		}
	}
	sb_free(&body);
	if (err)
		fprintf(stderr, "bench: scraping %u VMs as %s failed (%s)\n", nr_vms, f->name,
			strerror(-err));
	res->ms = err ? 0 : median(ms, runs);
	res->cpu_ms = err ? 0 : median(cpu, runs);
	return err;
}

static void verdict(const char *what, double value, double goal)
{
	printf("# goal %s <= %g: %.3f, %s\n", what, goal, value, value <= goal ? "met" : "NOT met");
}

/*
 * One table's numbers, each fetch against plain text; memory after its
 * scrapes, and per VM above what the process held before the first VM.
 */
static void report_count(unsigned nr_vms, const struct result res[NR_FETCHES], long rss0)
{
	long rss = rss_kib();

	printf("# %u VMs:\n", nr_vms);
	if (rss >= 0 && rss0 >= 0) {
		printf("BENCH scale_rss_%uvms %.1f MiB\n", nr_vms, rss / 1024.0);
		printf("BENCH scale_rss_per_vm_%uvms %.1f KiB\n", nr_vms,
		       (double)(rss - rss0) / nr_vms);
	}
	for (unsigned f = 0; f < NR_FETCHES; f++) {
		printf("BENCH scale_scrape_ms_%s_%uvms %.3f ms\n", fetches[f].name, nr_vms,
		       res[f].ms);
		printf("BENCH scale_bytes_%s_%uvms %zu bytes\n", fetches[f].name, nr_vms,
		       res[f].bytes);
		printf("BENCH scale_bytes_per_vm_%s_%uvms %.0f bytes\n", fetches[f].name, nr_vms,
		       (double)res[f].bytes / nr_vms);
		printf("BENCH scale_us_per_vm_%s_%uvms %.2f us\n", fetches[f].name, nr_vms,
		       res[f].ms * 1e3 / nr_vms);
		printf("BENCH scale_cpu_us_per_vm_%s_%uvms %.2f us\n", fetches[f].name, nr_vms,
		       res[f].cpu_ms * 1e3 / nr_vms);
	}
	printf("BENCH scale_series_per_vm_text_%uvms %.1f series\n", nr_vms,
	       (double)res[0].series / nr_vms);
	printf("BENCH scale_series_per_vm_protobuf_%uvms %.1f series\n", nr_vms,
	       (double)res[3].series / nr_vms);
	for (unsigned f = 1; f < NR_FETCHES; f++) {
		printf("BENCH scale_bytes_%s_over_text_%uvms %.3f ratio\n", fetches[f].name, nr_vms,
		       (double)res[f].bytes / res[0].bytes);
		printf("BENCH scale_time_%s_over_text_%uvms %.3f ratio\n", fetches[f].name, nr_vms,
		       res[f].ms / res[0].ms);
	}
	fflush(stdout);
}

/*
 * The goals, from the runs side by side (side_by_side: [0] wall-clock and
 * [1] CPU per VM, [2] the large table's scrape time, its samples spread
 * over the whole run); and, for the record, as the tables measured one
 * after the other gave them.
 */
static void report_goals(const struct result res[NR_COUNTS][NR_FETCHES],
			 const double side[NR_FETCHES][3])
{
	unsigned last = NR_COUNTS - 1, hundred = 1;
	char what[128];

	printf("# goals, at %u VMs and per VM against %u VMs (side by side):\n", vm_counts[last],
	       vm_counts[hundred]);
	for (unsigned f = 0; f < NR_FETCHES; f++) {
		double seq = (res[last][f].ms / vm_counts[last]) /
			     (res[hundred][f].ms / vm_counts[hundred]);
		double seq_cpu = (res[last][f].cpu_ms / vm_counts[last]) /
				 (res[hundred][f].cpu_ms / vm_counts[hundred]);

		printf("BENCH scale_cost_per_vm_%s_%u_over_%u %.3f ratio\n", fetches[f].name,
		       vm_counts[last], vm_counts[hundred], side[f][0]);
		printf("BENCH scale_cpu_per_vm_%s_%u_over_%u %.3f ratio\n", fetches[f].name,
		       vm_counts[last], vm_counts[hundred], side[f][1]);
		printf("BENCH scale_sequential_cost_per_vm_%s_%u_over_%u %.3f ratio\n",
		       fetches[f].name, vm_counts[last], vm_counts[hundred], seq);
		printf("BENCH scale_sequential_cpu_per_vm_%s_%u_over_%u %.3f ratio\n",
		       fetches[f].name, vm_counts[last], vm_counts[hundred], seq_cpu);
		printf("BENCH scale_scrape_ms_%s_%uvms_spread %.3f ms\n", fetches[f].name,
		       vm_counts[last], side[f][2]);
		snprintf(what, sizeof(what), "%s scrape of %u VMs (s)", fetches[f].name,
			 vm_counts[last]);
		verdict(what, side[f][2] / 1e3, 1.0);
		snprintf(what, sizeof(what), "%s cost per VM, %u over %u VMs", fetches[f].name,
			 vm_counts[last], vm_counts[hundred]);
		verdict(what, side[f][0], 1.2);
		/* CPU time: what other work on this host does not stretch. */
		snprintf(what, sizeof(what), "%s CPU per VM, %u over %u VMs", fetches[f].name,
			 vm_counts[last], vm_counts[hundred]);
		verdict(what, side[f][1], 1.2);
		if (fetches[f].format == EXPO_PROTOBUF && !fetches[f].gzip &&
		    !fetches[f].with_classic) {
			snprintf(what, sizeof(what), "%s bytes per VM at %u VMs (KiB)",
				 fetches[f].name, vm_counts[last]);
			verdict(what, (double)res[last][f].bytes / vm_counts[last] / 1024, 4.0);
		}
	}
}

/* The default configuration for MAX_VMS VMs, with `yaml` over it. */
static int config_for(struct config *cfg, const char *yaml)
{
	static const char sized[] = "max_vms: 10000\n";
	int err = config_load_default(cfg);

	if (!err)
		err = config_apply_string(cfg, "bench", sized, strlen(sized), stderr);
	if (!err)
		err = config_apply_string(cfg, "bench", yaml, strlen(yaml), stderr);
	if (err)
		fprintf(stderr, "bench: the configuration %s%s does not load (%s)\n", sized, yaml,
			strerror(-err));
	return err;
}

/*
 * A VM table and what serves it: probes of its own (their maps sized for
 * MAX_VMS, whatever the table holds), and a server on a port of its own.
 */
struct world {
	struct probe_set probes;
	struct discovery d;
	struct server *srv;
	int port;
	unsigned have;
};

static int world_open(struct world *w, struct config *cfg)
{
	struct server_opts so = { .max_connections = 4 };
	char listen[32];
	int err;

	*w = (struct world){ .d = { .home_netns = -1, .cfg = cfg } };
	pthread_mutex_init(&w->d.lock, NULL);
	err = probes_open(&w->probes, cfg, PROBE_SERVE);
	/*
	 * Its pins are of no use here (no CLI reads them, nothing persists),
	 * and the next world would take them for a dead serve's: removed at
	 * once, whether or not every probe opened. They are the bench's own:
	 * bench() found none before. The maps live on through the probes' fds.
	 */
	pins_remove_all();
	if (err) {
		fprintf(stderr, "bench: opening the probes failed (%s): run as root\n",
			strerror(-err));
		return err;
	}
	w->d.probes = &w->probes;
	/* A probe that is down (no memory for its maps) would leave families out of one table. */
	if (!probes_find(&w->probes, "net") || !probes_find(&w->probes, "disk") ||
	    w->probes.nr_down) {
		fprintf(stderr, "bench: every probe must open (the network and disk ones at least); "
			"%u did not\n", w->probes.nr_down);
		return -EINVAL;
	}
	w->port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", w->port);
	so.listen = listen;
	w->srv = w->port > 0 ? server_start(&so, &w->d) : NULL;
	if (!w->srv) {
		fprintf(stderr, "bench: serving on %s failed\n", listen);
		return -EADDRINUSE;
	}
	return 0;
}

/* After world_open(), whether or not it succeeded. */
static void world_close(struct world *w)
{
	if (!w->d.cfg)
		return;
	server_stop(w->srv);
	if (w->d.probes) {
		vms_free(&w->d);
		probes_close(&w->probes);
	}
	pthread_mutex_destroy(&w->d.lock);
	*w = (struct world){ 0 };
}

static int world_grow(struct world *w, unsigned n)
{
	int err;

	pthread_mutex_lock(&w->d.lock);
	err = vms_add(&w->d, &w->have, n);
	pthread_mutex_unlock(&w->d.lock);
	if (err)
		fprintf(stderr, "bench: building a table of %u VMs failed (%s)\n", n,
			strerror(-err));
	return err;
}

static void world_config(struct world *w, const struct config *cfg)
{
	pthread_mutex_lock(&w->d.lock);
	w->d.cfg = cfg;
	pthread_mutex_unlock(&w->d.lock);
}

/*
 * The goal's ratio, cost per VM of the large table over the small one,
 * side by side: the two tables (each its own probes, maps and server, the
 * same configuration) are scraped in alternation, so that whatever the
 * host does meanwhile stretches both alike. A round is SMALL_PER_ROUND
 * scrapes of the small table (their median), then one of the large. Each
 * fetch has a block of ROUNDS rounds (after one unkept scrape of each
 * table: the servers' buffers grown for it) in each of PASSES passes over
 * the fetches, and its ratio is the median over all its rounds, wall-clock
 * ([0]) and CPU ([1]); [2] is the median wall-clock time of its large
 * scrapes, in ms. A fetch's rounds are spread over the run: a slow
 * spell of this shared host (it has spells of seconds) spoils one block.
 * Within a block the format stays, as a Prometheus keeps to one: taking
 * the formats in turn at every round would add the cost of a large table
 * switching between 36 MB and 414 MB bodies to the large table alone.
 */
#define PASSES 3
#define ROUNDS 5
#define SMALL_PER_ROUND 5
static int side_by_side(struct world *small, struct world *large, const struct config *cfg,
			const struct config *with_classic, double ratio[NR_FETCHES][3])
{
	static double r[NR_FETCHES][3][PASSES * ROUNDS];
	double sm[SMALL_PER_ROUND], sc[SMALL_PER_ROUND], lm = 0, lc = 0;
	unsigned f = 0;
	int err = 0;

	for (unsigned pass = 0; pass < PASSES && !err; pass++) {
		for (f = 0; f < NR_FETCHES && !err; f++) {
			const struct config *c = fetches[f].with_classic ? with_classic : cfg;

			world_config(large, c);
			world_config(small, c);
			for (int i = -1; i < ROUNDS && !err; i++) {
				unsigned at = pass * ROUNDS + (unsigned)i;

				for (unsigned k = 0; k < (i < 0 ? 1 : SMALL_PER_ROUND) && !err; k++)
					err = timed_scrape(small->port, &fetches[f], NULL, NULL,
							   &sm[k], &sc[k]);
				if (!err)
					err = timed_scrape(large->port, &fetches[f], NULL, NULL,
							   &lm, &lc);
				if (err || i < 0)
					continue;
				r[f][0][at] = (lm / large->have) /
					      (median(sm, SMALL_PER_ROUND) / small->have);
				r[f][1][at] = (lc / large->have) /
					      (median(sc, SMALL_PER_ROUND) / small->have);
				r[f][2][at] = lm;
			}
		}
	}
	if (err) {
		fprintf(stderr, "bench: scraping %u and %u VMs side by side as %s failed (%s)\n",
			small->have, large->have, fetches[f - 1].name, strerror(-err));
		return err;
	}
	for (f = 0; f < NR_FETCHES; f++) {
		ratio[f][0] = median(r[f][0], PASSES * ROUNDS);
		ratio[f][1] = median(r[f][1], PASSES * ROUNDS);
		ratio[f][2] = median(r[f][2], PASSES * ROUNDS);
	}
	return 0;
}

/*
 * A gzip fetch holds what the plain fetch of the same format before it
 * held: the same series but for the host's block devices (whose series
 * come with their first IO). Text over 2 MiB is deflated while it is
 * rendered (core/gzip.c): a cut anywhere but between samples would lose
 * or garble series.
 */
static int check_gzip(unsigned nr_vms, const struct result res[NR_FETCHES])
{
	for (unsigned f = 1; f < NR_FETCHES; f++) {
		const struct fetch *z = &fetches[f], *p = &fetches[f - 1];

		if (!z->gzip || p->gzip || p->format != z->format || p->with_classic != z->with_classic)
			continue;
		if (res[f].series - res[f].host_series != res[f - 1].series - res[f - 1].host_series) {
			fprintf(stderr, "bench: %u VMs as %s: %zu series (%zu of host block devices), "
				"as %s: %zu (%zu)\n", nr_vms, z->name, res[f].series,
				res[f].host_series, p->name, res[f - 1].series,
				res[f - 1].host_series);
			return -EPROTO;
		}
	}
	return 0;
}

/* Every table size, every fetch; then the large table beside a small one. */
static int bench(unsigned max_vms)
{
	static struct result res[NR_COUNTS][NR_FETCHES];
	static struct world large, small;
	double ratio[NR_FETCHES][3];
	struct config cfg, with_classic;
	char holder[32];
	long rss0;
	int err, lock;

	err = config_for(&cfg, "");
	if (!err)
		err = config_for(&with_classic, WITH_CLASSIC);
	if (err)
		return err;
	/* As serve: alone on the host, and no serve starts meanwhile (it would find our maps' pins). */
	lock = lock_take(SERVE_LOCK, holder, sizeof(holder));
	if (lock == -EBUSY)
		fprintf(stderr, "bench: a vmprobe serve (pid %s) runs on this host: stop it first\n",
			holder);
	else if (lock < 0)
		fprintf(stderr, "bench: cannot lock %s (%s): run as root\n", SERVE_LOCK,
			strerror(-lock));
	if (lock < 0)
		return lock;
	/* A persistent serve's programs count on while it is stopped: never the bench's to take. */
	if (pins_exist()) {
		fprintf(stderr, "bench: %s holds pins (a serve that persisted counts on through "
			"them) that the bench would take: run it where there are none (`vmprobe "
			"uninstall` removes them)\n", PIN_DIR);
		close(lock);
		return -EEXIST;
	}
	err = world_open(&large, &cfg);
	if (err)
		goto cleanup;
	rss0 = rss_kib();
	for (unsigned c = 0; c < NR_COUNTS && vm_counts[c] <= max_vms && !err; c++) {
		err = world_grow(&large, vm_counts[c]);
		for (unsigned f = 0; f < NR_FETCHES && !err; f++) {
			world_config(&large, fetches[f].with_classic ? &with_classic : &cfg);
			err = measure(large.port, &fetches[f], vm_counts[c], &res[c][f]);
		}
		if (!err)
			err = check_gzip(vm_counts[c], res[c]);
		if (!err)
			report_count(vm_counts[c], res[c], rss0);
	}
	if (err || max_vms < MAX_VMS)
		goto cleanup;
	err = world_open(&small, &cfg);
	if (!err)
		err = world_grow(&small, vm_counts[1]);
	/*
	 * The small table serves what the large one did at 100 VMs: the same
	 * series, but for the host's block devices (a device's series come
	 * with its first IO).
	 */
	for (unsigned f = 0; f < NR_FETCHES && !err; f++) {
		struct result same;

		world_config(&small, fetches[f].with_classic ? &with_classic : &cfg);
		err = measure(small.port, &fetches[f], vm_counts[1], &same);
		if (!err && same.series - same.host_series !=
				    res[1][f].series - res[1][f].host_series) {
			fprintf(stderr, "bench: the second table of %u VMs serves %zu series as %s "
				"(%zu of host block devices), the first served %zu (%zu)\n",
				vm_counts[1], same.series, fetches[f].name, same.host_series,
				res[1][f].series, res[1][f].host_series);
			err = -EPROTO;
		}
	}
	if (!err)
		err = side_by_side(&small, &large, &cfg, &with_classic, ratio);
	if (!err)
		report_goals((const struct result(*)[NR_FETCHES])res,
			     (const double(*)[3])ratio);
cleanup:
	world_close(&small);
	world_close(&large);
	close(lock);
	return err;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	unsigned max_vms = MAX_VMS;
	int err;

	if (argc > 2 || (argc == 2 && !(max_vms = (unsigned)atoi(argv[1])))) {
		fprintf(stderr, "usage: scale [MAX_VMS]  (tables of 1, 100, 1000, 10000 VMs up to it)\n");
		return 2;
	}
	log_max_level = LOG_WARN;
	printf("# /metrics over HTTP of synthetic VMs (a drive and a tap each, all busy), median "
	       "of %d scrapes (%d at %u VMs); bytes as sent; time wall-clock, and CPU of this\n"
	       "# process (vmprobe's server and the client reading)\n", RUNS_SMALL, RUNS_LARGE,
	       MAX_VMS);
	err = bench(max_vms);
	getrusage(RUSAGE_SELF, &ru);
	printf("# peak RSS %ld MiB\n", ru.ru_maxrss / 1024);
	return err ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The per-drive families (vmprobe_disk_*), whichever probe measures the
 * drive (probe_ops.drive_store), and what each drive and NIC is: measured
 * or not, and why (vmprobe_drive_info, vmprobe_interface_info).
 */
#include "core/storage.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/bpfmap.h"
#include "core/metrics.h"

enum { F_OPS, F_ERRORS, F_BYTES, F_LATENCY, F_SIZE, F_DRIVE_INFO, F_IFACE_INFO, F_MAX };

static const struct expo_family fams[F_MAX] = {
	[F_OPS] = { "vmprobe_disk_operations_total", EXPO_COUNTER, "",
		    "name,namespace,drive,operation",
		    "Requests (read, write, flush, discard) QEMU issued for the VM's drive: the "
		    "count of vmprobe_disk_latency_seconds, repeated.", .off_by_default = true },
	[F_ERRORS] = { "vmprobe_disk_errors_total", EXPO_COUNTER, "",
		       "name,namespace,drive,operation",
		       "Requests QEMU issued for the VM's drive that the host failed (a negative "
		       "syscall return, io_uring result or block status); never in the operations, "
		       "bytes or latency; rbd and iSCSI: a negative librbd result or a SCSI status "
		       "other than GOOD. Only for drives whose errors vmprobe sees (not rbd where "
		       "it could not learn librbd's result, see the log)." },
	[F_BYTES] = { "vmprobe_disk_bytes_total", EXPO_COUNTER, "bytes",
		      "name,namespace,drive,operation",
		      "Bytes of the requests QEMU issued for the VM's drive (as transferred): the sum "
		      "of vmprobe_disk_request_size_bytes, repeated.", .off_by_default = true },
	[F_LATENCY] = { "vmprobe_disk_latency_seconds", EXPO_HISTOGRAM, "seconds",
			"name,namespace,drive,operation",
			"Host-side latency of the requests (read, write, flush, discard) QEMU issued "
			"for the VM's drive, issue to completion: to the host for a local image, to "
			"the cluster or target for network storage; its count is the requests; le "
			"powers of two of a second, by default 2^-20 (0.95 us) .. 2^4 (16 s) "
			"(exposition.time_buckets)." },
	[F_SIZE] = { "vmprobe_disk_request_size_bytes", EXPO_HISTOGRAM, "bytes",
		     "name,namespace,drive,operation",
		     "Sizes of the VM drive's reads, writes and discards (a flush has none); its "
		     "sum is their bytes (as transferred); le "
		     "by default 512 B .. 16 MiB (disk.request_size_buckets)." },
	[F_DRIVE_INFO] = { "vmprobe_drive_info", EXPO_GAUGE, "",
			   "name,namespace,drive,backend,source,measured,reason",
			   "Every drive the VM uses, always 1: its backend (file, host_device, rbd, "
			   "iscsi, nbd, ...), where vmprobe learned it (cmdline, libvirt, fd), and "
			   "whether it is measured, or why not." },
	[F_IFACE_INFO] = { "vmprobe_interface_info", EXPO_GAUGE, "",
			   "name,namespace,interface,tap,type,measured,reason",
			   "Every NIC the VM has, always 1: its interface label, tap (\"\" without "
			   "one), netdev type, and whether it is measured, or why not." },
};

int drive_store_open(struct drive_store *s, int stats_fd, int born_fd, unsigned max_drives,
		     const char *map)
{
	int err;

	memset(s, 0, sizeof(*s));
	s->max_drives = max_drives;
	s->map = map;
	err = bpf_array_mmap(stats_fd, (size_t)max_drives * DISK_OP_MAX * sizeof(*s->stats),
			     &s->stats) ?:
	      bpf_array_mmap(born_fd, max_drives * sizeof(*s->born), &s->born) ?:
	      slot_pool_init(&s->slots, max_drives, s->born);
	if (err)
		drive_store_close(s);
	return err;
}

void drive_store_close(struct drive_store *s)
{
	if (s->stats)
		munmap(s->stats, (size_t)s->max_drives * DISK_OP_MAX * sizeof(*s->stats));
	slot_pool_fini(&s->slots);
	if (s->born)
		munmap(s->born, s->max_drives * sizeof(*s->born));
	memset(s, 0, sizeof(*s));
}

int drive_store_get(struct drive_store *s)
{
	int slot = slot_pool_get(&s->slots);

	if (slot >= 0)
		memset(&s->stats[drive_stats_index(slot, 0)], 0, DISK_OP_MAX * sizeof(*s->stats));
	return slot;
}

void drive_store_put(struct drive_store *s, unsigned slot)
{
	slot_pool_put(&s->slots, slot);
}

const struct drive_store *drive_store_of(const struct vm_disk *disk, unsigned *slot)
{
	struct probe *p = (struct probe *)disk->cov.probe;

	return p && p->ops->drive_store ? p->ops->drive_store(p, disk, slot) : NULL;
}

void drive_stats_copy(const struct drive_stats *stats, unsigned slot, unsigned op,
		      struct drive_stats *out)
{
	const __u64 *src = (const __u64 *)&stats[drive_stats_index(slot, op)];

	/* Aligned 64-bit loads: no counter is seen half-written. */
	for (size_t i = 0; i < sizeof(*out) / sizeof(__u64); i++)
		((__u64 *)out)[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

int staged_merge(int map_fd, const void *key, struct drive_stats *stats, unsigned slot,
		 __u32 dev, __u64 ino)
{
	struct staged_stats *ss = malloc(sizeof(*ss));
	int err = 0;

	if (!ss)
		return -ENOMEM;
	if (bpf_map_lookup_and_delete_elem(map_fd, key, ss) &&
	    (bpf_map_lookup_elem(map_fd, key, ss) || bpf_map_delete_elem(map_fd, key)))
		err = -ENOENT;
	/* Made on another file than the one now known under the key: not the drive's. */
	if (!err && (ss->dev != dev || ss->ino != ino))
		err = -ESTALE;
	for (unsigned op = 0; !err && op < DISK_OP_MAX; op++) {
		__u64 *dst = (__u64 *)&stats[drive_stats_index(slot, op)];
		const __u64 *src = (const __u64 *)&ss->ops[op];

		/* The programs add to the same counters: atomically, as they do. */
		for (size_t i = 0; i < sizeof(struct drive_stats) / sizeof(__u64); i++)
			if (src[i])
				__atomic_fetch_add(&dst[i], src[i], __ATOMIC_RELAXED);
	}
	free(ss);
	return err;
}

const struct expo_family *storage_families(size_t *nr)
{
	*nr = F_MAX;
	return fams;
}

const char *const disk_op_names[DISK_OP_MAX] = {
	[DISK_OP_READ] = "read", [DISK_OP_WRITE] = "write",
	[DISK_OP_FLUSH] = "flush", [DISK_OP_DISCARD] = "discard",
};

/* One (drive, operation) of a VM, read once per scrape. */
struct disk_row {
	size_t labels; /* offset of name, namespace, drive, operation in the rows' labels */
	unsigned op;
	struct drive_stats st;
	bool errors; /* its probe measures errors */
	double created; /* when its drive began to be counted (epoch s), 0: unknown */
};

struct disk_rows {
	struct disk_row *rows;
	size_t n;
	struct strbuf labels; /* every row's, NUL-separated: one buffer, not one each */
};

static bool counted(const struct vm_disk *disk)
{
	return disk->cov.measured && disk->cov.probe && disk->cov.probe->ops->drive_store;
}

static bool errors_seen(const struct vm_disk *disk)
{
	const struct probe *p = disk->cov.probe;

	return p->ops->drive_errors && p->ops->drive_errors(p, disk);
}

static void rows_collect(struct discovery *d, struct disk_rows *out)
{
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	for (struct vm *vm = d->vms; vm; vm = vm->next)
		for (int i = 0; i < vm->nr_disks; i++)
			cap += counted(&vm->disks[i]) ? DISK_OP_MAX : 0;
	out->rows = malloc((cap ? cap : 1) * sizeof(*out->rows));
	if (!out->rows)
		return;
	for (struct vm *vm = d->vms; vm; vm = vm->next) {
		for (int i = 0; i < vm->nr_disks; i++) {
			const struct vm_disk *disk = &vm->disks[i];
			unsigned slot = 0;
			const struct drive_store *s =
				counted(disk) ? drive_store_of(disk, &slot) : NULL;

			for (unsigned op = 0; counted(disk) && op < DISK_OP_MAX; op++) {
				struct disk_row *r = &out->rows[out->n++];
				struct expo_label l[] = { { "drive", disk->spec.label },
							  { "operation", disk_op_names[op] } };

				r->labels = vm_labels_add(&out->labels, vm, l, ARRAY_SIZE(l));
				r->op = op;
				r->errors = errors_seen(disk);
				r->created = s ? slot_pool_born(&s->slots, (int)slot) : 0;
				if (s)
					drive_stats_copy(s->stats, slot, op, &r->st);
				else
					memset(&r->st, 0, sizeof(r->st));
			}
		}
	}
}

/* Row i's labels, its drive's _created set for the sample written next. */
static const char *row_series(struct expo *e, const struct disk_rows *rows, size_t i)
{
	expo_created(e, rows->rows[i].created);
	return rows->labels.buf + rows->rows[i].labels;
}

void storage_render(struct discovery *d, struct expo *e)
{
	const struct hist_range size_range = { .min_slot = d->cfg->dsize_min_slot,
					       .max_slot = d->cfg->dsize_max_slot, .per_unit = 1 };
	struct disk_rows rows;
	const struct disk_row *r;
	size_t i;

	rows_collect(d, &rows);
	r = rows.rows;
	if (!r || rows.labels.oom) {
		e->out->oom = true;
		goto out;
	}
	expo_family(e, &fams[F_OPS]);
	for (i = 0; i < rows.n; i++)
		expo_u64(e, fams[F_OPS].name, row_series(e, &rows, i),
			 expo_hist_count(r[i].st.lat_slots, DISK_LAT_SLOTS));
	expo_family(e, &fams[F_ERRORS]);
	for (i = 0; i < rows.n; i++)
		if (r[i].errors)
			expo_u64(e, fams[F_ERRORS].name, row_series(e, &rows, i), r[i].st.errors);
	expo_family(e, &fams[F_BYTES]);
	for (i = 0; i < rows.n; i++)
		expo_u64(e, fams[F_BYTES].name, row_series(e, &rows, i), r[i].st.bytes);
	expo_family(e, &fams[F_LATENCY]);
	for (i = 0; i < rows.n; i++)
		expo_histogram(e, fams[F_LATENCY].name, row_series(e, &rows, i), r[i].st.lat_slots,
			       DISK_LAT_SLOTS, &e->time_range, r[i].st.lat_sum_ns);
	expo_family(e, &fams[F_SIZE]);
	for (i = 0; i < rows.n; i++)
		if (r[i].op != DISK_OP_FLUSH) /* a flush has no size: nothing to tell */
			expo_histogram(e, fams[F_SIZE].name, row_series(e, &rows, i),
				       r[i].st.size_slots, DISK_SIZE_SLOTS, &size_range,
				       r[i].st.bytes);
out:
	sb_free(&rows.labels);
	free(rows.rows);
}

void coverage_render(struct discovery *d, struct expo *e)
{
	struct strbuf lb;

	sb_init(&lb);
	expo_family(e, &fams[F_DRIVE_INFO]);
	for (struct vm *vm = d->vms; vm; vm = vm->next)
		for (int i = 0; i < vm->nr_disks; i++) {
			const struct vm_disk *disk = &vm->disks[i];
			struct expo_label l[] = {
				{ "drive", disk->spec.label },
				{ "backend", disk->spec.backend },
				{ "source", vm_source_names[disk->source] },
				{ "measured", disk->cov.measured ? "true" : "false" },
				{ "reason", disk->cov.reason },
			};

			vm_labels(&lb, vm, l, ARRAY_SIZE(l));
			expo_u64(e, fams[F_DRIVE_INFO].name, lb.buf, 1);
		}
	expo_family(e, &fams[F_IFACE_INFO]);
	for (struct vm *vm = d->vms; vm; vm = vm->next)
		for (int i = 0; i < vm->nr_ifaces; i++) {
			const struct vm_iface *ifc = &vm->ifaces[i];
			struct expo_label l[] = {
				{ "interface", ifc->label },
				{ "tap", ifc->tap },
				{ "type", ifc->type },
				{ "measured", ifc->cov.measured ? "true" : "false" },
				{ "reason", ifc->cov.reason },
			};

			vm_labels(&lb, vm, l, ARRAY_SIZE(l));
			expo_u64(e, fams[F_IFACE_INFO].name, lb.buf, 1);
		}
	sb_free(&lb);
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The disk probe's programs: which sources this kernel allows, loading, maps. */
#include "probes/disk/disk_probe.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/bpfmap.h"
#include "core/caps.h"
#include "core/fault.h"
#include "core/pin.h"
#include "disk.skel.h"
#include "core/util.h"

const char *const disk_src_names[DISK_SRC_MAX] = {
	[DISK_SRC_SYSCALL] = "threads", [DISK_SRC_IO_URING] = "io_uring",
	[DISK_SRC_NATIVE] = "native",
};

static const char *const tracefs_roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };

const char *tracefs_root(bool *mounted_now)
{
	char path[128];
	int denied = 0;

	if (mounted_now)
		*mounted_now = false;
	/* By the effective capabilities: access(2) would judge by the real uid. */
	for (size_t i = 0; i < ARRAY_SIZE(tracefs_roots); i++) {
		snprintf(path, sizeof(path), "%s/events", tracefs_roots[i]);
		if (faccessat(AT_FDCWD, path, F_OK, AT_EACCESS) == 0)
			return tracefs_roots[i];
		if (errno == EACCES)
			denied = EACCES;
	}
	if (denied) {
		errno = denied;
		return NULL;
	}
	if (mount("nodev", tracefs_roots[0], "tracefs", 0, NULL) == 0) {
		if (mounted_now)
			*mounted_now = true;
		return tracefs_roots[0];
	}
	return NULL;
}

/* Does this kernel have the program's attach point? Feature, not version. */
static bool attach_point_exists(const struct bpf_program *prog, const struct btf *vmlinux,
				const char *tracefs)
{
	const char *sec = bpf_program__section_name(prog);
	char path[256];

	if (strncmp(sec, "raw_tp/", 7) == 0 || strncmp(sec, "tp_btf/", 7) == 0) {
		snprintf(path, sizeof(path), "btf_trace_%s", sec + 7);
		return vmlinux && btf__find_by_name_kind(vmlinux, path, BTF_KIND_TYPEDEF) > 0;
	}
	if (strncmp(sec, "tracepoint/", 11) == 0) {
		if (!tracefs)
			return false;
		snprintf(path, sizeof(path), "%s/events/%s", tracefs, sec + 11);
		return faccessat(AT_FDCWD, path, F_OK, AT_EACCESS) == 0;
	}
	return false;
}

/*
 * Addresses of kernel functions from /proc/kallsyms; 0 for one this kernel
 * lacks, and for all when addresses are hidden (kernel.kptr_restrict, or
 * no CAP_SYSLOG with kernel.perf_event_paranoid > 1).
 */
static void kallsyms_find(const char *const *names, __u64 *addrs, size_t n)
{
	char line[256], name[128], type;
	unsigned long long addr;
	FILE *f = fopen("/proc/kallsyms", "re");

	memset(addrs, 0, n * sizeof(*addrs));
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		/* Module symbols end in "\t[module]": not wanted, and skipped by the format. */
		if (sscanf(line, "%llx %c %127s", &addr, &type, name) != 3 || strchr(line, '['))
			continue;
		for (size_t i = 0; i < n; i++)
			if (!addrs[i] && !strcmp(name, names[i]))
				addrs[i] = addr;
	}
	fclose(f);
}

/*
 * aio=native from block_rq_complete alone (bpf/disk.bpf.c says how) needs
 * the kernel addresses that identify Linux AIO direct-IO bios and the
 * fields of the walk to the submitter; else the io_submit + block_getrq
 * pair is used, which costs every process's AIO two more hooks.
 */
static bool native_at_complete(struct disk_bpf *skel, const struct btf *btf)
{
	static const char *const names[] = { "blkdev_bio_end_io_async", "blkdev_bio_end_io",
					     "iomap_dio_bio_end_io", "aio_complete_rw",
					     "bio_chain_endio" };
	__u64 addr[ARRAY_SIZE(names)];

	if (!btf)
		return false;
	kallsyms_find(names, addr, ARRAY_SIZE(names));
	if (!addr[3] || !(addr[0] || addr[1] || addr[2])) {
		log_info("aio=native: kernel symbols unreadable or missing, using io_submit + "
			 "block_getrq (run as root or with CAP_SYSLOG for the cheaper path)");
		return false;
	}
	if (btf__find_by_name_kind(btf, "bpf_rdonly_cast", BTF_KIND_FUNC) <= 0) {
		log_info("aio=native: no bpf_rdonly_cast kfunc (Linux < 6.2), using io_submit + "
			 "block_getrq");
		return false;
	}
	if (!btf_has_member(btf, "aio_kiocb", "ki_ctx") ||
	    !btf_has_member(btf, "kioctx", "aio_ring_file") ||
	    !btf_has_member(btf, "mm_struct", "owner") ||
	    !btf_has_member(btf, "vm_area_struct", "shared")) {
		log_info("aio=native: kernel types lack the walk to the submitter (no CONFIG_MEMCG?), "
			 "using io_submit + block_getrq");
		return false;
	}
	skel->rodata->ksym_blkdev_dio_async = addr[0];
	skel->rodata->ksym_blkdev_dio = addr[1];
	skel->rodata->ksym_iomap_dio = addr[2];
	skel->rodata->ksym_aio_complete_rw = addr[3];
	/* Without it, a request split into several block requests counts as each of them. */
	skel->rodata->ksym_bio_chain_endio = addr[4];
	if (!addr[4])
		log_warn("aio=native: no bio_chain_endio in /proc/kallsyms: a request the block "
			 "layer splits counts once per piece");
	log_info("aio=native: measured at block completion (no io_submit or block_getrq hook)");
	return true;
}

/* Every program of a source must load, or the source is off. */
static void choose_programs(struct disk_probe *dp, struct disk_bpf *skel, bool want_host)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	const char *tracefs = tracefs_root(NULL);
	struct bpf_program *prog;
	bool threads = true, uring = true, native = true, host = true, at_complete;
	/* io_uring's submission tracepoint: _req since Linux 6.4, _sqe before. */
	bool submit_req = false, submit_sqe = false;

	if (!tracefs && errno == EACCES)
		log_warn("tracefs at %s is not readable by vmprobe (run as root or with "
			 "CAP_DAC_READ_SEARCH): no syscall or io_uring tracepoints", tracefs_roots[0]);
	else if (!tracefs)
		log_warn("tracefs is not mounted and cannot be (%s; mounting needs CAP_SYS_ADMIN): "
			 "no syscall or io_uring tracepoints", strerror(errno));
	at_complete = native_at_complete(skel, vmlinux);
	bpf_object__for_each_program(prog, skel->obj) {
		const char *name = bpf_program__name(prog);
		bool ok = attach_point_exists(prog, vmlinux, tracefs);

		if (!strcmp(name, "uring_submit")) {
			submit_req = ok;
			continue;
		}
		if (!strcmp(name, "uring_submit_sqe")) {
			submit_sqe = ok;
			continue;
		}
		if (!ok)
			log_warn("attach point of %s (%s) missing on this kernel", name,
				 bpf_program__section_name(prog));
		if (!strncmp(name, "uring_", 6))
			uring &= ok;
		else if (!strcmp(name, "rq_complete") || !strcmp(name, "rq_complete_walk"))
			host &= ok, native &= ok;
		else if (!strcmp(name, "native_getrq") || !strcmp(name, "enter_io_submit"))
			native &= ok || at_complete;
		else
			threads &= ok;
	}
	if (!submit_req && !submit_sqe)
		log_warn("attach point of uring_submit (tracepoint io_uring/io_uring_submit_req, "
			 "or io_uring_submit_sqe before Linux 6.4) missing on this kernel");
	uring &= submit_req || submit_sqe;
	dp->source_on[DISK_SRC_SYSCALL] = threads;
	dp->source_on[DISK_SRC_IO_URING] = uring;
	dp->source_on[DISK_SRC_NATIVE] = native;
	/* Host block latency reads the request's own issue stamp. */
	if (!btf_has_member(vmlinux, "request", "io_start_time_ns") &&
	    !btf_has_member(vmlinux, "request", "start_time_ns")) {
		log_warn("struct request has no issue time stamp on this kernel");
		host = false;
	}
	dp->host_block_on = host && want_host;
	host = dp->host_block_on;
	skel->rodata->host_block = host;
	bpf_object__for_each_program(prog, skel->obj) {
		const char *name = bpf_program__name(prog);
		bool on;

		if (!strcmp(name, "uring_submit"))
			on = uring && submit_req;
		else if (!strcmp(name, "uring_submit_sqe"))
			on = uring && !submit_req;
		else if (!strncmp(name, "uring_", 6))
			on = uring;
		else if (!strcmp(name, "rq_complete"))
			on = (host || native) && !at_complete;
		else if (!strcmp(name, "rq_complete_walk"))
			on = (host || native) && at_complete;
		else if (!strcmp(name, "native_getrq") || !strcmp(name, "enter_io_submit"))
			on = native && !at_complete;
		else
			on = threads;
		bpf_program__set_autoload(prog, on);
	}
	btf__free(vmlinux);
}

/* Where disk_events_consume() hands each event: set for the length of one call. */
struct events_ctx {
	void (*fn)(__u32 tgid, void *arg);
	void *arg;
};

static struct events_ctx *events_now;

static int event_seen(void *ctx, void *data, size_t len)
{
	const struct drive_fd_key *k = data;

	if (len >= sizeof(*k) && events_now)
		events_now->fn(k->tgid, events_now->arg);
	return 0;
}

enum hook_kind { HOOK_VM, HOOK_BLOCK };

static const char *const hook_names[] = {
	[HOOK_VM] = "syscall, io_uring and io_submit tracepoints",
	[HOOK_BLOCK] = "block_rq_complete",
};

/* Block completion serves host block latency and aio=native; the rest, VMs only. */
static enum hook_kind hook_kind(const struct bpf_program *prog)
{
	return strncmp(bpf_program__name(prog), "rq_complete", 11) ? HOOK_VM : HOOK_BLOCK;
}

/*
 * Attaches or detaches each kind of hook as it is wanted now: the VM hooks
 * while a VM is marked, block completion while host block latency is on or
 * a VM has an aio=native drive. A kind attaches whole or not at all (an
 * enter hook without its exit is no use). 0, or the -errno of the kind
 * that failed to attach (said once per distinct error).
 */
static int hooks_update(struct disk_probe *dp)
{
	bool want[2] = { dp->nr_vms > 0, dp->host_block_on || dp->native_drives > 0 };
	bool starting[2] = { false, false };
	struct bpf_program *prog;
	int errs[2] = { 0, 0 }, ret = 0;
	size_t i = 0;

	bpf_object__for_each_program(prog, dp->skel->obj) {
		enum hook_kind k = hook_kind(prog);
		struct bpf_link **l = &dp->links[i++];

		if (!bpf_program__autoload(prog) || want[k] == !!*l || errs[k])
			continue;
		if (!want[k]) {
			/* Hooks an earlier serve left stay until its VMs are all claimed. */
			if (disk_adopting(dp))
				continue;
			pins_link_end(dp->pins, *l);
			*l = NULL;
			continue;
		}
		if (!starting[k] && k == HOOK_VM)
			/* Entries in flight from an earlier attach complete nothing now. */
			dp->skel->bss->hooks_epoch++;
		starting[k] = true;
		*l = pins_link_attach(dp->pins, prog);
		if (!*l)
			errs[k] = -errno;
	}
	for (int k = 0; k < 2; k++) {
		if (errs[k]) {
			/* Undone whole: another try attaches the kind from scratch. */
			i = 0;
			bpf_object__for_each_program(prog, dp->skel->obj) {
				struct bpf_link **l = &dp->links[i++];

				if (hook_kind(prog) == (enum hook_kind)k && *l) {
					pins_link_end(dp->pins, *l);
					*l = NULL;
				}
			}
			/* Without tracefs, said by tracefs_ensure(). */
			if (errs[k] != dp->hooks_err[k] && !(k == HOOK_VM && dp->tracefs_lost)) {
				char hint[CAPS_HINT_MAX];

				log_error("attaching the disk probe's %s failed (%s)%s", hook_names[k],
					  strerror(-errs[k]), caps_hint(hint, sizeof(hint), -errs[k],
									CAP_BIT(CAP_PERFMON), true));
			}
			ret = errs[k];
		} else if (starting[k]) {
			log_debug("disk probe: %s attached", hook_names[k]);
		}
		dp->hooks_err[k] = errs[k];
	}
	return ret;
}

/*
 * The hooks an earlier serve left, kept as they are (moved to our programs
 * if those differ) until disk_adopted(); a kind not left whole is attached
 * afresh when wanted.
 */
static void hooks_adopt(struct disk_probe *dp)
{
	bool whole[2] = { true, true };
	struct bpf_program *prog;
	size_t i = 0;

	bpf_object__for_each_program(prog, dp->skel->obj) {
		struct bpf_link **l = &dp->links[i++];

		if (!bpf_program__autoload(prog))
			continue;
		*l = pins_link_adopt(dp->pins, prog);
		whole[hook_kind(prog)] &= *l != NULL;
	}
	i = 0;
	bpf_object__for_each_program(prog, dp->skel->obj) {
		struct bpf_link **l = &dp->links[i++];

		if (*l && !whole[hook_kind(prog)]) {
			pins_link_end(dp->pins, *l);
			*l = NULL;
		}
	}
}

/* Is `name` one of the links this probe holds? For pins_links_foreach(). */
static int stray_link(const char *name, void *arg)
{
	struct disk_probe *dp = arg;
	struct bpf_program *prog;
	size_t i = 0;

	bpf_object__for_each_program(prog, dp->skel->obj)
		if (dp->links[i++] && !strcmp(bpf_program__name(prog), name))
			return 0;
	/* A hook of the earlier serve's this one has no program for. */
	pins_fd_end(dp->pins, -1, name);
	return 0;
}

void disk_adopted(struct disk_probe *dp)
{
	if (!disk_adopting(dp))
		return;
	disk_adopt_release(dp);
	pins_links_foreach(dp->pins, stray_link, dp);
	__atomic_store_n(&dp->skel->bss->native_drives, dp->native_drives, __ATOMIC_RELAXED);
	hooks_update(dp);
}

int disk_hooks_try(struct disk_probe *dp)
{
	unsigned nr_vms = dp->nr_vms;
	int native = dp->native_drives, err;

	dp->nr_vms = 1;
	dp->native_drives = 1;
	err = hooks_update(dp);
	dp->nr_vms = nr_vms;
	dp->native_drives = native;
	hooks_update(dp);
	return err;
}

int disk_events_consume(struct disk_probe *dp, void (*fn)(__u32 tgid, void *arg), void *arg)
{
	struct events_ctx ctx = { fn, arg };
	int n;

	events_now = &ctx;
	n = ring_buffer__consume(dp->events);
	events_now = NULL;
	return n;
}

int disk_events_fd(const struct disk_probe *dp)
{
	return ring_buffer__epoll_fd(dp->events);
}

int disk_staged_merge(struct disk_probe *dp, __u32 tgid, __u32 fd, unsigned slot, __u32 kdev,
		      __u64 ino)
{
	struct drive_fd_key key = { .tgid = tgid, .fd = fd };

	return staged_merge(bpf_map__fd(dp->skel->maps.disk_staged), &key, dp->store.stats, slot,
			    kdev, ino);
}

int disk_maps_size(struct disk_bpf *skel, unsigned max_drives, long pid_max)
{
	__u32 words = (__u32)((pid_max + 63) / 64);
	int err;

	skel->rodata->max_drives = max_drives;
	err = bpf_map__set_max_entries(skel->maps.drive_stats, max_drives * DISK_OP_MAX);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.drive_born, max_drives);
	if (err)
		return err;
	skel->rodata->tgid_words = words;
	return bpf_map__set_max_entries(skel->maps.vm_tgids, words);
}

int disk_probe_open(struct disk_probe *dp, unsigned max_drives, bool host_block,
		    struct probe_pins *pins)
{
	struct disk_bpf *skel;
	int err;

	memset(dp, 0, sizeof(*dp));
	dp->pins = pins;
	skel = disk_bpf__open();
	if (!skel)
		return -errno;
	dp->skel = skel;
	{
		char buf[32];
		long pid_max = read_file("/proc/sys/kernel/pid_max", buf, sizeof(buf)) > 0 ?
				       atol(buf) : 4194304;

		err = disk_maps_size(skel, max_drives, pid_max);
		if (err)
			goto cleanup;
	}
	choose_programs(dp, skel, host_block);
	pins_prepare(pins, "disk", skel->obj, disk_bpf__elf_bytes);
	caps_load_note(skel->obj);
	err = disk_bpf__load(skel);
	if (err)
		goto cleanup;
	pins_commit(pins);
	{
		struct bpf_program *prog;

		bpf_object__for_each_program(prog, skel->obj)
			dp->nr_links++;
	}
	dp->links = calloc(dp->nr_links, sizeof(*dp->links));
	if (!dp->links) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = drive_store_open(&dp->store, bpf_map__fd(skel->maps.drive_stats),
			       bpf_map__fd(skel->maps.drive_born), max_drives, "disk/drive_stats");
	if (!err)
		err = disk_adopt_open(dp);
	if (!err && disk_adopting(dp))
		hooks_adopt(dp);
	if (!err)
		err = hooks_update(dp);
	if (err)
		goto cleanup;
	dp->events = ring_buffer__new(bpf_map__fd(skel->maps.disk_events), event_seen, dp, NULL);
	if (!dp->events) {
		err = -errno;
		goto cleanup;
	}
	dp->dev_slots = mmap(NULL, DISK_DEV_SLOTS * sizeof(struct blkdev_slot), PROT_READ,
			     MAP_SHARED, bpf_map__fd(skel->maps.dev_stats), 0);
	if (dp->dev_slots == MAP_FAILED) {
		err = -errno;
		dp->dev_slots = NULL;
		goto cleanup;
	}
	log_info("disk sources: threads %s, io_uring %s, native %s, host block %s",
		 dp->source_on[DISK_SRC_SYSCALL] ? "on" : "OFF",
		 dp->source_on[DISK_SRC_IO_URING] ? "on" : "OFF",
		 dp->source_on[DISK_SRC_NATIVE] ? "on" : "OFF", dp->host_block_on ? "on" : "OFF");
	return 0;
cleanup:
	disk_probe_close(dp);
	return err;
}

void disk_probe_close(struct disk_probe *dp)
{
	for (size_t i = 0; i < dp->nr_links; i++)
		pins_link_end(dp->pins, dp->links[i]);
	free(dp->links);
	free(dp->dev_names);
	disk_adopt_free(dp);
	ring_buffer__free(dp->events);
	if (dp->dev_slots)
		munmap(dp->dev_slots, DISK_DEV_SLOTS * sizeof(struct blkdev_slot));
	drive_store_close(&dp->store);
	disk_bpf__destroy(dp->skel);
	memset(dp, 0, sizeof(*dp));
}

static int key_add(struct bpf_map *map, __u32 tgid, __u32 v, unsigned slot)
{
	struct drive_fd_key key = { .tgid = tgid, .fd = v };
	__u32 s = slot;

	return bpf_map_update_elem(bpf_map__fd(map), &key, &s, BPF_ANY) ? -errno : 0;
}

static void key_del(struct bpf_map *map, __u32 tgid, __u32 v)
{
	struct drive_fd_key key = { .tgid = tgid, .fd = v };

	bpf_map_delete_elem(bpf_map__fd(map), &key);
}

int disk_fd_add(struct disk_probe *dp, __u32 tgid, __u32 fd, unsigned slot)
{
	return key_add(dp->skel->maps.disk_fds, tgid, fd, slot);
}

void disk_fd_del(struct disk_probe *dp, __u32 tgid, __u32 fd)
{
	key_del(dp->skel->maps.disk_fds, tgid, fd);
}

int disk_dev_add(struct disk_probe *dp, __u32 tgid, __u32 kdev, unsigned slot)
{
	return key_add(dp->skel->maps.disk_devs, tgid, kdev, slot);
}

void disk_dev_del(struct disk_probe *dp, __u32 tgid, __u32 kdev)
{
	key_del(dp->skel->maps.disk_devs, tgid, kdev);
}

/* Sets the bitmap from the images in native_files (tgid 0: one per image). */
static void native_bits_sync(struct disk_probe *dp)
{
	int fd = bpf_map__fd(dp->skel->maps.native_files);
	int bits_fd = bpf_map__fd(dp->skel->maps.native_inode_bits);
	struct native_file_key key, next, *prev = NULL;
	static __u64 words[NATIVE_BITS_WORDS];

	memset(words, 0, sizeof(words));
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		if (!next.tgid) {
			__u32 bit = native_inode_bit(next.dev, next.ino);

			words[bit / 64] |= 1ULL << (bit % 64);
		}
		key = next;
		prev = &key;
	}
	for (__u32 w = 0; w < NATIVE_BITS_WORDS; w++) {
		__u64 cur = 0;

		if (bpf_map_lookup_elem(bits_fd, &w, &cur) || cur != words[w])
			bpf_map_update_elem(bits_fd, &w, &words[w], BPF_ANY);
	}
}

/* The image inode of a native drive; (0, dev, ino) counts the VMs using it. */
int disk_native_file_add(struct disk_probe *dp, __u32 tgid, __u32 kdev, __u64 ino, unsigned slot)
{
	int fd = bpf_map__fd(dp->skel->maps.native_files);
	struct native_file_key key = { .tgid = tgid, .dev = kdev, .ino = ino };
	__u32 s = slot, users = 0;

	if (bpf_map_update_elem(fd, &key, &s, BPF_NOEXIST))
		return errno == EEXIST ? 0 : -errno;
	key.tgid = 0;
	bpf_map_lookup_elem(fd, &key, &users);
	users++;
	if (bpf_map_update_elem(fd, &key, &users, BPF_ANY)) {
		int err = -errno;

		key.tgid = tgid;
		bpf_map_delete_elem(fd, &key);
		return err;
	}
	native_bits_sync(dp);
	return 0;
}

void disk_native_file_del(struct disk_probe *dp, __u32 tgid, __u32 kdev, __u64 ino)
{
	int fd = bpf_map__fd(dp->skel->maps.native_files);
	struct native_file_key key = { .tgid = tgid, .dev = kdev, .ino = ino };
	__u32 users = 0;

	if (bpf_map_delete_elem(fd, &key))
		return;
	key.tgid = 0;
	if (bpf_map_lookup_elem(fd, &key, &users) || users <= 1)
		bpf_map_delete_elem(fd, &key);
	else
		users--, bpf_map_update_elem(fd, &key, &users, BPF_ANY);
	native_bits_sync(dp);
}

int disk_dev_foreach(const struct disk_probe *dp,
		     int (*fn)(const struct blkdev_key *k, const struct blkdev_stats *s, void *arg),
		     void *arg)
{
	for (unsigned i = 0; i < DISK_DEV_SLOTS; i++) {
		const struct blkdev_slot *e = &dp->dev_slots[i];
		__u64 key = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);
		struct blkdev_key k;
		struct blkdev_stats st;
		int ret;

		if (!key)
			continue;
		k.dev = (__u32)((key - 1) >> 8);
		k.op = (__u32)((key - 1) & 0xff);
		st.lat_sum_ns = __atomic_load_n(&e->st.lat_sum_ns, __ATOMIC_RELAXED);
		for (int s = 0; s < DISK_LAT_SLOTS; s++)
			st.lat_slots[s] = __atomic_load_n(&e->st.lat_slots[s], __ATOMIC_RELAXED);
		ret = fn(&k, &st, arg);
		if (ret)
			return ret;
	}
	return 0;
}

/* QEMU processes, one bit each in vm_tgids. */
static int vm_bit(struct disk_probe *dp, __u32 tgid, bool on)
{
	int fd = bpf_map__fd(dp->skel->maps.vm_tgids);
	__u32 word = tgid / 64;
	__u64 bits = 0;

	if (bpf_map_lookup_elem(fd, &word, &bits))
		return -errno;
	bits = on ? bits | (1ULL << (tgid % 64)) : bits & ~(1ULL << (tgid % 64));
	return bpf_map_update_elem(fd, &word, &bits, BPF_ANY) ? -errno : 0;
}

int disk_native_drives(struct disk_probe *dp, int delta)
{
	dp->native_drives += delta;
	/* While adopting, the programs keep the earlier serve's count until disk_adopted(). */
	if (!disk_adopting(dp))
		__atomic_add_fetch(&dp->skel->bss->native_drives, delta, __ATOMIC_RELAXED);
	return hooks_update(dp);
}

/*
 * The syscall and io_uring tracepoints attach through tracefs, which may
 * have been unmounted since the probe loaded: mounted again (as at start)
 * before they are, or said once that they cannot be.
 */
static void tracefs_ensure(struct disk_probe *dp)
{
	bool mounted_now;
	const char *root;

	if (!dp->source_on[DISK_SRC_SYSCALL] && !dp->source_on[DISK_SRC_IO_URING])
		return;
	root = tracefs_root(&mounted_now);
	if (root && mounted_now) {
		fault_count(FAULT_TRACEFS);
		log_warn("tracefs was not mounted any more: mounted it again at %s for the syscall "
			 "and io_uring tracepoints", root);
	} else if (!root && !dp->tracefs_lost) {
		fault_count(FAULT_TRACEFS);
		log_error("tracefs is not mounted any more and cannot be (%s; mounting needs "
			  "CAP_SYS_ADMIN): the VMs' drives are not measured until it is back",
			  strerror(errno));
	}
	dp->tracefs_lost = !root;
}

int disk_vm_mark(struct disk_probe *dp, __u32 tgid)
{
	int err;

	if (!dp->nr_vms)
		tracefs_ensure(dp);
	dp->nr_vms++;
	err = hooks_update(dp);
	if (!err)
		err = vm_bit(dp, tgid, true);
	if (err) {
		dp->nr_vms--;
		hooks_update(dp);
	} else {
		disk_adopt_tgid(dp, tgid, true);
	}
	return err;
}

void disk_vm_unmark(struct disk_probe *dp, __u32 tgid)
{
	disk_adopt_tgid(dp, tgid, false);
	vm_bit(dp, tgid, false);
	dp->nr_vms--;
	hooks_update(dp);
}

__u64 disk_source_count(const struct disk_probe *dp, unsigned src)
{
	return bpf_percpu_sum(bpf_map__fd(dp->skel->maps.disk_sources), src);
}

__u64 disk_error_count(const struct disk_probe *dp, unsigned err)
{
	return bpf_percpu_sum(bpf_map__fd(dp->skel->maps.disk_errors), err);
}

__u32 disk_kdev(unsigned long long rdev)
{
	return (major(rdev) << 20) | minor(rdev);
}

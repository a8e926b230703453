// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "core/qemu.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static int qopts_add(struct qopts *o, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct qopt *items = realloc(o->items, (o->n + 1) * sizeof(*items));

	if (!items)
		return -ENOMEM;
	o->items = items;
	items[o->n].key = strndup(key, klen);
	items[o->n].val = strndup(val, vlen);
	if (!items[o->n].key || !items[o->n].val) {
		free(items[o->n].key);
		free(items[o->n].val);
		return -ENOMEM;
	}
	o->n++;
	return 0;
}

/* JSON objects flatten to dotted keys, as QEMU's keyval syntax spells them. */
static int qopts_add_json(struct qopts *o, const char *prefix, json_object *obj)
{
	char key[256];
	int err;

	json_object_object_foreach(obj, k, v) {
		snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", k);
		if (json_object_is_type(v, json_type_object)) {
			err = qopts_add_json(o, key, v);
		} else {
			const char *s = json_object_get_string(v);

			s = s ? s : "";
			err = qopts_add(o, key, strlen(key), s, strlen(s));
		}
		if (err)
			return err;
	}
	return 0;
}

int qopts_parse(const char *s, const char *implied_key, struct qopts *o)
{
	struct strbuf tok;
	bool first = true;
	int err = 0;

	memset(o, 0, sizeof(*o));
	if (s[0] == '{') {
		json_object *obj = json_tokener_parse(s);

		if (!obj || !json_object_is_type(obj, json_type_object)) {
			json_object_put(obj);
			return -EINVAL;
		}
		err = qopts_add_json(o, "", obj);
		json_object_put(obj);
		return err;
	}

	/* QEMU opts: comma-separated key=value, a doubled comma is a literal one. */
	sb_init(&tok);
	for (const char *p = s;; p++) {
		if (*p == ',' && p[1] == ',') {
			sb_putc(&tok, ',');
			p++;
			continue;
		}
		if (*p && *p != ',') {
			sb_putc(&tok, *p);
			continue;
		}
		if (tok.len) {
			char *eq = strchr(tok.buf, '=');

			if (eq)
				err = qopts_add(o, tok.buf, eq - tok.buf, eq + 1, strlen(eq + 1));
			else if (first && implied_key)
				err = qopts_add(o, implied_key, strlen(implied_key), tok.buf, tok.len);
			else
				err = qopts_add(o, tok.buf, tok.len, "on", 2);
		}
		first = false;
		sb_reset(&tok);
		if (err || !*p)
			break;
	}
	if (!err && tok.oom)
		err = -ENOMEM;
	sb_free(&tok);
	return err;
}

const char *qopts_get(const struct qopts *o, const char *key)
{
	/* The last occurrence wins, as in QEMU. */
	for (size_t i = o->n; i-- > 0;)
		if (strcmp(o->items[i].key, key) == 0)
			return o->items[i].val;
	return NULL;
}

void qopts_free(struct qopts *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->items[i].key);
		free(o->items[i].val);
	}
	free(o->items);
	memset(o, 0, sizeof(*o));
}

bool qemu_is_emulator(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base ? base + 1 : argv0;
	return strncmp(base, "qemu-system-", 12) == 0 || strcmp(base, "qemu-kvm") == 0;
}

#define copy str_copy

static void parse_fds(struct vm_nic *nic, const char *fd, const char *fds)
{
	char *end;
	long v;

	if (fd) {
		v = strtol(fd, &end, 10);
		if (end != fd && *end == '\0' && v >= 0)
			nic->fds[nic->nr_fds++] = (int)v;
	}
	for (const char *p = fds; p && *p && nic->nr_fds < VM_MAX_FDS;) {
		v = strtol(p, &end, 10);
		if (end == p || v < 0)
			break;
		nic->fds[nic->nr_fds++] = (int)v;
		p = *end == ':' ? end + 1 : end;
		if (*end != ':')
			break;
	}
}

/* -netdev, -nic or -net: every host side of a NIC, whether or not it is a tap. */
static void add_netdev(struct vm_spec *vm, const struct qopts *o)
{
	const char *type = qopts_get(o, "type");
	struct vm_nic *nic;

	/*
	 * -net nic is the guest side of the legacy syntax; none the absence of
	 * one; an empty type no QEMU starts with.
	 */
	if (!type || !*type || !strcmp(type, "nic") || !strcmp(type, "none") ||
	    vm->nr_nics >= VM_MAX_NICS)
		return;
	nic = &vm->nics[vm->nr_nics++];
	memset(nic, 0, sizeof(*nic));
	copy(nic->type, sizeof(nic->type), type);
	copy(nic->netdev_id, sizeof(nic->netdev_id), qopts_get(o, "id"));
	copy(nic->ifname, sizeof(nic->ifname), qopts_get(o, "ifname"));
	copy(nic->mac, sizeof(nic->mac), qopts_get(o, "mac"));
	parse_fds(nic, qopts_get(o, "fd"), qopts_get(o, "fds"));
}

/* A -blockdev node, kept until -device lines name the top of its chain. */
struct bnode {
	char node[VM_ID_MAX];
	char child[VM_ID_MAX]; /* `file` given as a reference to another node */
	char file[VM_PATH_MAX];
	char aio[16];
	char backend[16];      /* a protocol driver's name, "" for a format's node */
	char format[16];       /* a format driver's name (qcow2, raw, ...) */
	char remote[VM_PATH_MAX];
	bool is_drive; /* from -drive, which is a whole chain in one */
	bool used;
};

struct bdevice {
	char drive[VM_ID_MAX];
	char id[VM_ID_MAX];
	bool cdrom; /* ide-cd, scsi-cd: its medium is no disk of the guest's */
};

/* -device netdev=X,mac=Y; applied once all -netdev are known (any order). */
struct ndevice {
	char netdev[VM_ID_MAX];
	char id[VM_ID_MAX];
	char mac[18];
};

struct parse_state {
	struct bnode nodes[VM_MAX_DRIVES * 2];
	int nr_nodes;
	struct bdevice devs[VM_MAX_DRIVES];
	int nr_devs;
	struct ndevice ndevs[VM_MAX_NICS];
	int nr_ndevs;
	int drives_per_if[8]; /* to name -drive without id= as QEMU does */
};

/* Protocol drivers: what reaches the storage, below any format. */
static const char *const protocols[] = {
	"file", "host_device", "host_cdrom", "rbd", "iscsi", "nbd", "gluster", "ssh", "http",
	"https", "ftp", "ftps", "nfs", "nvme", "null-co", "null-aio", "vxhs", "io_uring",
	"virtio-blk-vhost-user", "virtio-blk-vdpa", "virtio-blk-vfio-pci",
};

static bool is_protocol(const char *driver)
{
	for (size_t i = 0; driver && i < ARRAY_SIZE(protocols); i++)
		if (!strcmp(driver, protocols[i]))
			return true;
	return false;
}

bool qemu_backend_is_local(const char *backend)
{
	return !strcmp(backend, "file") || !strcmp(backend, "host_device");
}

/* The protocol of a -drive file= string: rbd:, iscsi://, nbd:, nbd+unix://, gluster://... */
static void url_backend(const char *file, char *backend, size_t size)
{
	static const char *const prefixes[][2] = {
		{ "rbd:", "rbd" }, { "iscsi://", "iscsi" }, { "nbd:", "nbd" }, { "nbd+", "nbd" },
		{ "gluster", "gluster" }, { "ssh://", "ssh" }, { "https://", "https" },
		{ "http://", "http" }, { "ftps://", "ftps" }, { "ftp://", "ftp" }, { "nfs://", "nfs" },
		{ "nvme://", "nvme" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (!strncmp(file, prefixes[i][0], strlen(prefixes[i][0]))) {
			copy(backend, size, prefixes[i][1]);
			return;
		}
	copy(backend, size, "file");
}

/* rbd:POOL/IMAGE[@SNAP][:opts] or POOL/NS/IMAGE: the image's name without snap and options. */
static void rbd_remote(const char *spec, char *out, size_t size)
{
	size_t n = strcspn(spec, "@:");

	snprintf(out, size, "%.*s", (int)n, spec);
}

/* iscsi://[USER[%PASS]@]HOST[:PORT]/TARGET/LUN: "TARGET/LUN". */
static void iscsi_remote(const char *url, char *out, size_t size)
{
	const char *p = strchr(url + strlen("iscsi://"), '/');

	snprintf(out, size, "%.*s", p ? (int)strcspn(p + 1, "?") : 0, p ? p + 1 : "");
}

/* The value of `name`, under "file." for a -drive (its protocol's options). */
static const char *opt_at(const struct qopts *o, bool is_drive, const char *name)
{
	char key[64];

	snprintf(key, sizeof(key), "%s%s", is_drive ? "file." : "", name);
	return qopts_get(o, key);
}

/* file becomes "PREFIX" + remote when the node gave no file name. */
static void file_from_remote(struct bnode *n, const char *prefix)
{
	char url[VM_PATH_MAX * 2];

	if (n->file[0] || !n->remote[0])
		return;
	snprintf(url, sizeof(url), "%s%s", prefix, n->remote);
	copy(n->file, sizeof(n->file), url);
}

/* rbd: "POOL/IMAGE" or "POOL/NAMESPACE/IMAGE", from the keys or the rbd: string. */
static void rbd_node(struct bnode *n, const struct qopts *o, bool is_drive)
{
	const char *pool = opt_at(o, is_drive, "pool"), *image = opt_at(o, is_drive, "image");
	const char *ns = opt_at(o, is_drive, "namespace");

	if (pool && image)
		snprintf(n->remote, sizeof(n->remote), "%s/%s%s%s", pool, ns ? ns : "",
			 ns ? "/" : "", image);
	else if (!strncmp(n->file, "rbd:", 4))
		rbd_remote(n->file + 4, n->remote, sizeof(n->remote));
	file_from_remote(n, "rbd:");
}

/* iSCSI: "TARGET/LUN", from the keys or the iscsi:// URL. */
static void iscsi_node(struct bnode *n, const struct qopts *o, bool is_drive)
{
	const char *target = opt_at(o, is_drive, "target"), *lun = opt_at(o, is_drive, "lun");
	const char *portal = opt_at(o, is_drive, "portal");
	char prefix[VM_ID_MAX];

	if (target)
		snprintf(n->remote, sizeof(n->remote), "%s/%s", target, lun ? lun : "0");
	else if (!strncmp(n->file, "iscsi://", 8))
		iscsi_remote(n->file, n->remote, sizeof(n->remote));
	snprintf(prefix, sizeof(prefix), "iscsi://%s/", portal ? portal : "");
	if (target)
		file_from_remote(n, prefix);
}

/*
 * Where a node's storage is: its protocol and, for network storage, what
 * it names. A -drive's protocol options are under "file."; so are those
 * of a -blockdev format node whose protocol node is inline
 * (driver=raw,file.driver=rbd,file.pool=...), which has no node of its own.
 */
static void node_backend(struct bnode *n, const struct qopts *o, bool is_drive)
{
	const char *driver = qopts_get(o, is_drive ? "file.driver" : "driver");
	bool under_file = is_drive;

	if (!is_drive && !is_protocol(driver) && is_protocol(qopts_get(o, "file.driver"))) {
		driver = qopts_get(o, "file.driver");
		under_file = true;
	}
	if (is_drive && !driver && n->file[0])
		url_backend(n->file, n->backend, sizeof(n->backend));
	else if (is_protocol(driver))
		copy(n->backend, sizeof(n->backend), driver);
	else if (is_drive)
		copy(n->backend, sizeof(n->backend), "file");
	if (!strcmp(n->backend, "rbd"))
		rbd_node(n, o, under_file);
	else if (!strcmp(n->backend, "iscsi"))
		iscsi_node(n, o, under_file);
}

void vm_files_add(struct vm_files *f, const char *path)
{
	if (!path || !path[0] || f->n >= VM_MAX_OTHER_FILES)
		return;
	for (int i = 0; i < f->n; i++)
		if (!strcmp(f->path[i], path))
			return;
	copy(f->path[f->n++], sizeof(f->path[0]), path);
}

/* The file a -drive or -blockdev names itself, NULL if it refers to another node. */
static const char *node_file(const struct qopts *o, bool is_drive)
{
	const char *file = qopts_get(o, "file.filename");

	if (!file)
		file = qopts_get(o, "filename");
	if (!file && is_drive)
		file = qopts_get(o, "file");
	return file;
}

/* QEMU's names for a -drive without id=: virtio0, ide0-hd0, scsi0-hd0, ... */
static void drive_default_name(struct parse_state *st, const struct qopts *o, struct bnode *n)
{
	static const char *const ifs[] = { "ide", "scsi", "virtio", "none", "sd", "floppy" };
	const char *intf = qopts_get(o, "if");
	size_t i;

	intf = intf ? intf : "ide";
	for (i = 0; i < ARRAY_SIZE(ifs) && strcmp(ifs[i], intf); i++)
		;
	if (i < ARRAY_SIZE(ifs) && !strcmp(intf, "virtio"))
		snprintf(n->node, sizeof(n->node), "virtio%d", st->drives_per_if[i]++);
	else if (i < ARRAY_SIZE(ifs))
		snprintf(n->node, sizeof(n->node), "%s0-hd%d", intf, st->drives_per_if[i]++);
}

static void add_node(struct vm_spec *vm, struct parse_state *st, const struct qopts *o,
		     bool is_drive)
{
	const char *file = node_file(o, is_drive), *aio, *driver;
	struct bnode *n;

	if (is_drive) {
		const char *media = qopts_get(o, "media"), *intf = qopts_get(o, "if");

		/* Firmware and CD-ROMs are not the guest's disks. */
		if ((media && !strcmp(media, "cdrom")) || (intf && !strcmp(intf, "pflash"))) {
			vm_files_add(&vm->others, file);
			return;
		}
	}
	if (st->nr_nodes >= (int)ARRAY_SIZE(st->nodes))
		return;
	n = &st->nodes[st->nr_nodes++];
	memset(n, 0, sizeof(*n));
	n->is_drive = is_drive;
	copy(n->node, sizeof(n->node), qopts_get(o, is_drive ? "id" : "node-name"));
	if (is_drive && !n->node[0])
		drive_default_name(st, o, n);
	if (file)
		copy(n->file, sizeof(n->file), file);
	else
		copy(n->child, sizeof(n->child), qopts_get(o, "file"));
	aio = qopts_get(o, "file.aio");
	copy(n->aio, sizeof(n->aio), aio ? aio : qopts_get(o, "aio"));
	driver = qopts_get(o, is_drive ? "format" : "driver");
	if (!is_protocol(driver))
		copy(n->format, sizeof(n->format), driver);
	node_backend(n, o, is_drive);
}

static struct bnode *find_node(struct parse_state *st, const char *name)
{
	for (int i = 0; i < st->nr_nodes; i++)
		if (st->nodes[i].node[0] && strcmp(st->nodes[i].node, name) == 0)
			return &st->nodes[i];
	return NULL;
}

static void add_drive(struct vm_spec *vm, struct parse_state *st, const char *node_name,
		      const char *dev_id)
{
	struct bnode *n = find_node(st, node_name);
	struct vm_drive *d;

	if (!n || vm->nr_drives >= VM_MAX_DRIVES)
		return;
	d = &vm->drives[vm->nr_drives++];
	memset(d, 0, sizeof(*d));
	n->used = true;
	copy(d->node, sizeof(d->node), node_name);
	if (dev_id && strncmp(dev_id, "ua-", 3) == 0)
		dev_id += 3;
	copy(d->label, sizeof(d->label), dev_id && *dev_id ? dev_id : node_name);
	/* Follow `file` references down to the node that opens the image. */
	for (int depth = 0; n && depth < 8; depth++) {
		if (n->aio[0] && !d->aio[0])
			copy(d->aio, sizeof(d->aio), n->aio);
		if (n->format[0] && !d->format[0])
			copy(d->format, sizeof(d->format), n->format);
		if (n->backend[0]) {
			copy(d->backend, sizeof(d->backend), n->backend);
			copy(d->remote, sizeof(d->remote), n->remote);
		}
		if (n->file[0]) {
			copy(d->file, sizeof(d->file), n->file);
			break;
		}
		n = n->child[0] ? find_node(st, n->child) : NULL;
	}
	if (!d->backend[0])
		copy(d->backend, sizeof(d->backend), d->file[0] ? "file" : "unknown");
	if (!d->aio[0])
		copy(d->aio, sizeof(d->aio), "threads");
}

static void finish(struct vm_spec *vm, struct parse_state *st)
{
	for (int d = 0; d < st->nr_ndevs; d++)
		for (int i = 0; i < vm->nr_nics; i++) {
			if (strcmp(vm->nics[i].netdev_id, st->ndevs[d].netdev) != 0)
				continue;
			if (st->ndevs[d].mac[0])
				copy(vm->nics[i].mac, sizeof(vm->nics[i].mac), st->ndevs[d].mac);
			copy(vm->nics[i].device_id, sizeof(vm->nics[i].device_id), st->ndevs[d].id);
		}

	for (int i = 0; i < st->nr_devs; i++) {
		struct bnode *n;

		if (!st->devs[i].cdrom)
			add_drive(vm, st, st->devs[i].drive, st->devs[i].id);
		else if ((n = find_node(st, st->devs[i].drive)))
			n->used = true; /* its file goes to the others below */
	}
	/* -drive if=virtio|ide|... makes its own device, with no -device line. */
	for (int i = 0; i < st->nr_nodes; i++)
		if (st->nodes[i].is_drive && !st->nodes[i].used && st->nodes[i].node[0])
			add_drive(vm, st, st->nodes[i].node, NULL);
	/* Backing images, firmware, CD-ROM media: nodes whose file is no drive's. */
	for (int i = 0; i < st->nr_nodes; i++) {
		bool drive = false;

		for (int k = 0; k < vm->nr_drives && !drive; k++)
			drive = !strcmp(vm->drives[k].file, st->nodes[i].file);
		if (!drive)
			vm_files_add(&vm->others, st->nodes[i].file);
	}
}

/* -add-fd fd=FD,set=SET[,opaque=...] */
static void add_fdset(struct vm_spec *vm, const struct qopts *o)
{
	const char *fd = qopts_get(o, "fd"), *set = qopts_get(o, "set");

	if (fd && set && vm->nr_fdsets < VM_MAX_FDS)
		vm->fdsets[vm->nr_fdsets++] = (struct vm_fdset){ .set = atoi(set), .fd = atoi(fd) };
}

static void add_device(struct vm_spec *vm, struct parse_state *st, const struct qopts *o)
{
	const char *netdev = qopts_get(o, "netdev"), *drive = qopts_get(o, "drive");
	const char *mac = qopts_get(o, "mac");

	if (netdev && st->nr_ndevs < VM_MAX_NICS) {
		struct ndevice *n = &st->ndevs[st->nr_ndevs++];

		copy(n->netdev, sizeof(n->netdev), netdev);
		copy(n->id, sizeof(n->id), qopts_get(o, "id"));
		copy(n->mac, sizeof(n->mac), mac);
	}
	if (drive && st->nr_devs < VM_MAX_DRIVES) {
		struct bdevice *d = &st->devs[st->nr_devs++];
		const char *driver = qopts_get(o, "driver");

		copy(d->drive, sizeof(d->drive), drive);
		copy(d->id, sizeof(d->id), qopts_get(o, "id"));
		d->cdrom = driver && (!strcmp(driver, "ide-cd") || !strcmp(driver, "scsi-cd"));
	}
}

int qemu_parse_argv(int argc, char *const argv[], struct vm_spec *vm)
{
	struct parse_state *st;
	struct qopts o;
	int err = 0;

	memset(vm, 0, sizeof(*vm));
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	for (int i = 1; i + 1 < argc && !err; i++) {
		const char *opt = argv[i];
		const char *implied;

		if (opt[0] != '-')
			continue;
		opt += opt[1] == '-' ? 2 : 1;
		if (strcmp(opt, "uuid") == 0) {
			copy(vm->uuid, sizeof(vm->uuid), argv[++i]);
			continue;
		}
		if (strcmp(opt, "pidfile") == 0) {
			copy(vm->pidfile, sizeof(vm->pidfile), argv[++i]);
			continue;
		}
		if (strcmp(opt, "name") == 0)
			implied = "guest";
		else if (strcmp(opt, "netdev") == 0 || strcmp(opt, "nic") == 0 ||
			 strcmp(opt, "net") == 0)
			implied = "type";
		else if (strcmp(opt, "device") == 0 || strcmp(opt, "blockdev") == 0)
			implied = "driver";
		else if (strcmp(opt, "drive") == 0)
			implied = "file";
		else if (strcmp(opt, "add-fd") == 0)
			implied = "fd";
		else
			continue;
		err = qopts_parse(argv[++i], implied, &o);
		if (err == -EINVAL) {
			/* One malformed option must not hide the rest of the VM. */
			err = 0;
			continue;
		}
		if (err)
			break;
		if (strcmp(opt, "name") == 0)
			copy(vm->name, sizeof(vm->name), qopts_get(&o, "guest"));
		else if (strcmp(implied, "type") == 0)
			add_netdev(vm, &o);
		else if (strcmp(opt, "device") == 0)
			add_device(vm, st, &o);
		else if (strcmp(opt, "add-fd") == 0)
			add_fdset(vm, &o);
		else
			add_node(vm, st, &o, strcmp(opt, "drive") == 0);
		qopts_free(&o);
	}
	if (!err)
		finish(vm, st);
	free(st);
	return err;
}

int qemu_parse_cmdline(const char *buf, size_t len, struct vm_spec *vm)
{
	char **argv;
	int argc = 0, err;
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] == '\0')
			argc++;
	if (argc == 0 || buf[len - 1] != '\0')
		return -EINVAL;
	argv = calloc(argc + 1, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	argc = 0;
	for (i = 0; i < len; i += strlen(buf + i) + 1)
		argv[argc++] = (char *)buf + i;
	err = qemu_is_emulator(argv[0]) ? qemu_parse_argv(argc, argv, vm) : -ENOENT;
	free(argv);
	return err;
}

int fdinfo_tap_name(const char *text, char *ifname, size_t size)
{
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, "iff:", 4) == 0) {
			size_t n;

			p += 4;
			p += strspn(p, " \t");
			n = strcspn(p, "\n");
			if (n == 0 || n >= size)
				return -ENOENT;
			memcpy(ifname, p, n);
			ifname[n] = '\0';
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -ENOENT;
}

/*
 * QEMU's file-posix driver locks one byte per permission of the image,
 * from RAW_LOCK_PERM_BASE (100) and RAW_LOCK_SHARED_BASE (200), as OFD
 * locks ("lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:1234 100 101").
 */
bool fdinfo_qemu_image_lock(const char *text)
{
	for (const char *p = strstr(text, "lock:"); p; p = strstr(p + 1, "lock:")) {
		unsigned long long start, end;
		const char *line_end = strchr(p, '\n');
		char line[256];
		int n;

		n = (int)(line_end ? (size_t)(line_end - p) : strlen(p));
		snprintf(line, sizeof(line), "%.*s", n, p);
		if (!strstr(line, "OFDLCK"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %llu %llu", &start, &end) == 2 &&
		    start >= 100 && start < 300)
			return true;
	}
	return false;
}

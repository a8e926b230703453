// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libvirt's live domain state (core/libvirt.h), read with expat: the few
 * elements vmprobe needs, by their place in <domstatus><domain><devices>.
 */
#include "core/libvirt.h"

#include <errno.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"

#define MAX_DEPTH 16

/* The parse: where we are, and the disk or NIC being read. */
struct parse {
	struct libvirt_domain *dom;
	const char *path[MAX_DEPTH]; /* element names from the root, as far as kept */
	int depth;
	bool bad;
	bool domain; /* the root is <domain>, or <domstatus> with one */
	char disk_type[16], device[16], host[128], port[16], name[VM_PATH_MAX];
	struct vm_drive disk;
	char alias[VM_ID_MAX], target[VM_ID_MAX];
	char if_type[32];
	struct libvirt_iface iface;
	char text[VM_PATH_MAX]; /* the text of <loader> or <nvram> */
	bool in_text;
};

static const char *get(const char **attrs, const char *name)
{
	for (int i = 0; attrs[i]; i += 2)
		if (!strcmp(attrs[i], name))
			return attrs[i + 1];
	return NULL;
}

/* Whether the element being opened is at domstatus/domain/devices/PARENT/NAME (or without domstatus). */
static bool at(const struct parse *ps, const char *parent, const char *name)
{
	int base = ps->depth > 0 && !strcmp(ps->path[0], "domstatus") ? 1 : 0;
	int want = base + 2 + (parent ? 1 : 0);

	if (ps->depth != want || strcmp(ps->path[base], "domain") ||
	    strcmp(ps->path[base + 1], "devices"))
		return false;
	return (!parent || !strcmp(ps->path[want - 1], parent)) && !strcmp(ps->path[want], name);
}

static void disk_child(struct parse *ps, const char *el, const char **attrs)
{
	const char *v;

	if (!strcmp(el, "source")) {
		str_copy(ps->disk.file, sizeof(ps->disk.file),
			 get(attrs, !strcmp(ps->disk_type, "block") ? "dev" : "file"));
		str_copy(ps->disk.backend, sizeof(ps->disk.backend), get(attrs, "protocol"));
		str_copy(ps->name, sizeof(ps->name), get(attrs, "name"));
	} else if (!strcmp(el, "driver")) {
		if ((v = get(attrs, "io")))
			str_copy(ps->disk.aio, sizeof(ps->disk.aio), v);
		str_copy(ps->disk.format, sizeof(ps->disk.format), get(attrs, "type"));
	} else if (!strcmp(el, "target")) {
		str_copy(ps->target, sizeof(ps->target), get(attrs, "dev"));
	} else if (!strcmp(el, "alias")) {
		str_copy(ps->alias, sizeof(ps->alias), get(attrs, "name"));
	}
}

static void iface_child(struct parse *ps, const char *el, const char **attrs)
{
	if (!strcmp(el, "target"))
		str_copy(ps->iface.tap, sizeof(ps->iface.tap), get(attrs, "dev"));
	else if (!strcmp(el, "alias"))
		str_copy(ps->iface.alias, sizeof(ps->iface.alias), get(attrs, "name"));
	else if (!strcmp(el, "mac"))
		str_copy(ps->iface.mac, sizeof(ps->iface.mac), get(attrs, "address"));
}

/* Whether the element being opened is domain/os/NAME (or under domstatus). */
static bool at_os(const struct parse *ps, const char *name)
{
	int base = !strcmp(ps->path[0], "domstatus") ? 1 : 0;

	return ps->depth == base + 2 && !strcmp(ps->path[base], "domain") &&
	       !strcmp(ps->path[base + 1], "os") && !strcmp(ps->path[base + 2], name);
}

static void XMLCALL on_start(void *arg, const char *el, const char **attrs)
{
	struct parse *ps = arg;

	/* Deeper elements (custom <metadata>) are none of vmprobe's: only counted. */
	if (ps->depth >= MAX_DEPTH) {
		ps->depth++;
		return;
	}
	ps->path[ps->depth] = el;
	if (ps->depth == 0 && !strcmp(el, "domstatus"))
		ps->dom->pid = (pid_t)atoi(get(attrs, "pid") ? get(attrs, "pid") : "0");
	if (!strcmp(el, "domain") &&
	    (ps->depth == 0 || (ps->depth == 1 && !strcmp(ps->path[0], "domstatus"))))
		ps->domain = true;
	if (at(ps, NULL, "disk")) {
		memset(&ps->disk, 0, sizeof(ps->disk));
		ps->alias[0] = ps->target[0] = ps->host[0] = ps->port[0] = ps->name[0] = '\0';
		str_copy(ps->disk_type, sizeof(ps->disk_type), get(attrs, "type"));
		str_copy(ps->device, sizeof(ps->device), get(attrs, "device"));
	} else if (at(ps, NULL, "interface")) {
		memset(&ps->iface, 0, sizeof(ps->iface));
		str_copy(ps->if_type, sizeof(ps->if_type), get(attrs, "type"));
	} else if (at(ps, "disk", el)) {
		disk_child(ps, el, attrs);
	} else if (at(ps, "interface", el)) {
		iface_child(ps, el, attrs);
	} else if (ps->depth >= 4 && !strcmp(el, "host") && !strcmp(ps->path[ps->depth - 1], "source") &&
		   !strcmp(ps->path[ps->depth - 2], "disk") && !ps->host[0]) {
		str_copy(ps->host, sizeof(ps->host), get(attrs, "name"));
		str_copy(ps->port, sizeof(ps->port), get(attrs, "port"));
	} else if (ps->depth >= 1 && !strcmp(el, "source") &&
		   !strcmp(ps->path[ps->depth - 1], "backingStore")) {
		vm_files_add(&ps->dom->others, get(attrs, "file") ? get(attrs, "file") : get(attrs, "dev"));
	} else if (at_os(ps, "loader") || at_os(ps, "nvram")) {
		ps->text[0] = '\0';
		ps->in_text = true;
	}
	/* Names are expat's until the element ends: kept only while it is open. */
	ps->depth++;
}

static void XMLCALL on_text(void *arg, const char *s, int len)
{
	struct parse *ps = arg;
	size_t have = strlen(ps->text);

	if (!ps->in_text || len <= 0 || have + (size_t)len >= sizeof(ps->text))
		return;
	memcpy(ps->text + have, s, (size_t)len);
	ps->text[have + (size_t)len] = '\0';
}

/* A finished <disk>: the drive it is, if it is one the guest uses as a disk. */
static void disk_done(struct parse *ps)
{
	struct libvirt_domain *dom = ps->dom;
	struct vm_drive *d = &ps->disk;
	char url[VM_PATH_MAX * 2];

	if (!strcmp(ps->device, "cdrom") || !strcmp(ps->device, "floppy")) {
		vm_files_add(&dom->others, d->file);
		return;
	}
	if (dom->nr_disks >= VM_MAX_DRIVES)
		return;
	if (!strcmp(ps->disk_type, "file") || !strcmp(ps->disk_type, "block")) {
		/* A drive with no medium is not a disk the guest can use. */
		if (!d->file[0])
			return;
		str_copy(d->backend, sizeof(d->backend),
			 !strcmp(ps->disk_type, "file") ? "file" : "host_device");
	} else if (!strcmp(ps->disk_type, "network")) {
		/* No protocol= (not libvirt's own writing): a backend no probe takes, named. */
		if (!d->backend[0])
			str_copy(d->backend, sizeof(d->backend), "unknown");
		if (!strcmp(d->backend, "rbd"))
			snprintf(url, sizeof(url), "rbd:%s", ps->name);
		else
			snprintf(url, sizeof(url), "%s://%s%s%s/%s", d->backend, ps->host,
				 ps->port[0] ? ":" : "", ps->port, ps->name);
		str_copy(d->file, sizeof(d->file), url);
		if (!strcmp(d->backend, "rbd") || !strcmp(d->backend, "iscsi"))
			str_copy(d->remote, sizeof(d->remote), ps->name);
		/* iSCSI "TARGET[/LUN]": LUN 0 when the name has none (libvirt's default). */
		if (!strcmp(d->backend, "iscsi") && !strchr(ps->name, '/'))
			snprintf(d->remote, sizeof(d->remote), "%.*s/0",
				 (int)sizeof(d->remote) - 3, ps->name);
	} else {
		str_copy(d->backend, sizeof(d->backend), ps->disk_type[0] ? ps->disk_type : "unknown");
	}
	str_copy(d->label, sizeof(d->label), ps->alias[0] ? ps->alias : ps->target);
	if (!strncmp(d->label, "ua-", 3))
		memmove(d->label, d->label + 3, strlen(d->label + 3) + 1);
	if (!d->aio[0])
		str_copy(d->aio, sizeof(d->aio), "threads");
	dom->disks[dom->nr_disks++] = *d;
}

/* A finished <interface>: what QEMU's side of it is, a tap or something no TC program sees. */
static void iface_done(struct parse *ps)
{
	struct libvirt_iface *ifc = &ps->iface;
	const char *t = ps->if_type;

	if (ps->dom->nr_ifaces >= VM_MAX_NICS)
		return;
	if (!strcmp(t, "ethernet") || !strcmp(t, "bridge") || !strcmp(t, "network"))
		str_copy(ifc->type, sizeof(ifc->type),
			 strncmp(ifc->tap, "macvtap", 7) ? "tap" : "macvtap");
	else if (!strcmp(t, "vhostuser"))
		str_copy(ifc->type, sizeof(ifc->type), "vhost-user");
	else if (!strcmp(t, "direct"))
		str_copy(ifc->type, sizeof(ifc->type), "macvtap");
	else
		str_copy(ifc->type, sizeof(ifc->type), t);
	if (strcmp(ifc->type, "tap"))
		ifc->tap[0] = '\0';
	ps->dom->ifaces[ps->dom->nr_ifaces++] = *ifc;
}

static void XMLCALL on_end(void *arg, const char *el)
{
	struct parse *ps = arg;

	if (ps->depth == 0)
		return;
	ps->depth--;
	if (ps->depth >= MAX_DEPTH)
		return;
	if (ps->in_text && (at_os(ps, "loader") || at_os(ps, "nvram"))) {
		ps->in_text = false;
		vm_files_add(&ps->dom->others, ps->text);
	}
	if (at(ps, NULL, "disk"))
		disk_done(ps);
	else if (at(ps, NULL, "interface"))
		iface_done(ps);
}

int libvirt_parse(const char *xml, size_t len, struct libvirt_domain *dom)
{
	XML_Parser parser = XML_ParserCreate(NULL);
	struct parse *ps = calloc(1, sizeof(*ps));
	int ok;

	memset(dom, 0, sizeof(*dom));
	if (!parser || !ps) {
		if (parser)
			XML_ParserFree(parser);
		free(ps);
		return -ENOMEM;
	}
	ps->dom = dom;
	XML_SetUserData(parser, ps);
	XML_SetElementHandler(parser, on_start, on_end);
	XML_SetCharacterDataHandler(parser, on_text);
	ok = XML_Parse(parser, xml, (int)len, 1) == XML_STATUS_OK && !ps->bad && ps->domain;
	XML_ParserFree(parser);
	free(ps);
	if (!ok)
		memset(dom, 0, sizeof(*dom));
	return ok ? 0 : -EINVAL;
}

/* Where libvirt keeps a domain's status file: beside its pid file, or its usual run dirs. */
static const char *const run_dirs[] = {
	"/run/libvirt/qemu", "/var/run/libvirt/qemu", "/run/libvirt/qemu/run",
};

/* Reads the file at st->path into st->dom; false if it is not this VM's. */
static bool read_status(struct libvirt_state *st, pid_t pid, pid_t nspid)
{
	char *buf = malloc(1 << 20);
	long n;
	bool ok;

	if (!buf)
		return false;
	n = read_file(st->path, buf, 1 << 20);
	ok = n > 0 && libvirt_parse(buf, (size_t)n, &st->dom) == 0 &&
	     (st->dom.pid == pid || (nspid > 0 && st->dom.pid == nspid));
	free(buf);
	return ok;
}

/* The first of the places libvirt may keep the status file that has it; false if none. */
static bool find_status(struct libvirt_state *st, const char *root, const char *name,
			const char *pidfile)
{
	const char *slash = strrchr(pidfile, '/');
	struct stat sb;

	if (slash) {
		snprintf(st->path, sizeof(st->path), "%s%.*s/%s.xml", root, (int)(slash - pidfile),
			 pidfile, name);
		if (!stat(st->path, &sb))
			return true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(run_dirs); i++) {
		snprintf(st->path, sizeof(st->path), "%s%s/%s.xml", root, run_dirs[i], name);
		if (!stat(st->path, &sb))
			return true;
	}
	st->path[0] = '\0';
	return false;
}

static bool same_stamp(const struct libvirt_state *st, const struct stat *sb)
{
	return st->read && st->ino == sb->st_ino && st->size == sb->st_size &&
	       st->mtime.tv_sec == sb->st_mtim.tv_sec && st->mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

int libvirt_refresh(struct libvirt_state *st, const char *root, const char *name,
		    const char *pidfile, pid_t pid, pid_t nspid, bool force)
{
	bool was = st->valid;
	struct stat sb;

	if ((!st->path[0] || stat(st->path, &sb)) &&
	    (!find_status(st, root, name, pidfile) || stat(st->path, &sb))) {
		st->valid = st->read = false;
		return was;
	}
	if (!force && same_stamp(st, &sb))
		return 0;
	st->read = true;
	st->mtime = sb.st_mtim;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->valid = read_status(st, pid, nspid);
	return st->valid || was;
}

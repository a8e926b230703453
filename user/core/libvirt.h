/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libvirt's live state of a domain: the <domstatus> XML libvirt keeps in
 * its run-state directory (…/libvirt/qemu/NAME.xml), read through the QEMU
 * process's root, so that it is found inside a KubeVirt virt-launcher pod
 * too. It names the drives and NICs hot-plugged since QEMU started.
 */
#ifndef VMPROBE_LIBVIRT_H
#define VMPROBE_LIBVIRT_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "core/qemu.h"

struct libvirt_iface {
	char tap[IFNAMSIZ]; /* <target dev=…/>, "" if none */
	char alias[VM_ID_MAX]; /* <alias name=…/>: QEMU's device id */
	char type[16];      /* the netdev type it is in QEMU: tap, vhost-user, user */
	char mac[18];
};

struct libvirt_domain {
	pid_t pid; /* <domstatus pid=…> */
	/* Disks (no CD-ROM or floppy): label = alias sans "ua-", file, backend, remote. */
	struct vm_drive disks[VM_MAX_DRIVES];
	int nr_disks;
	struct libvirt_iface ifaces[VM_MAX_NICS];
	int nr_ifaces;
	/* CD-ROM and floppy media, backing images, firmware (<loader>) and its <nvram>. */
	struct vm_files others;
};

/* Parses <domstatus> (or a bare <domain>) XML of `len` bytes; 0 or -EINVAL. */
int libvirt_parse(const char *xml, size_t len, struct libvirt_domain *dom);

/* What vmprobe knows of a VM's libvirt state, re-read when the file changes. */
struct libvirt_state {
	char path[512];     /* the status file, through /proc/PID/root */
	bool read;          /* the file as the stamp below says was read (valid or not) */
	struct timespec mtime;
	ino_t ino;          /* libvirt replaces the file: a new inode, maybe the same mtime */
	off_t size;
	bool valid;         /* dom was read from the file as it is now, and is this VM's */
	struct libvirt_domain dom;
};

/*
 * Looks for the VM's status file under its root (`root` is /proc/PID/root)
 * by its domain name, beside the pid file QEMU was given (-pidfile) or in
 * libvirt's run directories, and reads it if it changed since *st was
 * filled (or `force`): 1 if what it says changed (or it appeared, or
 * went), 0 if not. A file whose pid is neither `pid` nor `nspid` (the
 * pid in QEMU's own pid namespace: libvirt in a KubeVirt pod sees that
 * one) is another domain's or an older run's: ignored, and not read again
 * until it changes.
 */
int libvirt_refresh(struct libvirt_state *st, const char *root, const char *name,
		    const char *pidfile, pid_t pid, pid_t nspid, bool force);

#endif

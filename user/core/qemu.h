/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What a QEMU command line says about a VM: name, UUID, NICs, drives. */
#ifndef VMPROBE_QEMU_H
#define VMPROBE_QEMU_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

#define VM_NAME_MAX 256
#define VM_ID_MAX 128
#define VM_MAX_NICS 32
#define VM_MAX_FDS 16
#define VM_MAX_DRIVES 32
#define VM_PATH_MAX 512
#define VM_MAX_OTHER_FILES 16

/* One option value split into keys: `a=1,b=x,,y` or JSON (nested keys dotted). */
struct qopt {
	char *key;
	char *val;
};

struct qopts {
	struct qopt *items;
	size_t n;
};

int qopts_parse(const char *s, const char *implied_key, struct qopts *o);
const char *qopts_get(const struct qopts *o, const char *key);
void qopts_free(struct qopts *o);

struct vm_nic {
	char type[16];         /* the netdev's type: tap, bridge, vhost-user, user, ... */
	char netdev_id[VM_ID_MAX];
	char device_id[VM_ID_MAX]; /* id= of the NIC device on this netdev, "" if none */
	char ifname[IFNAMSIZ]; /* from ifname=, else resolved from fds */
	int fds[VM_MAX_FDS];   /* tap fds passed by the management layer */
	int nr_fds;
	char mac[18];
};

struct vm_drive {
	char node[VM_ID_MAX];  /* -drive id= or -blockdev node-name= */
	char label[VM_ID_MAX]; /* the `drive` label: device id sans "ua-", else node */
	char file[VM_PATH_MAX]; /* the image; for network storage, the URL QEMU was given */
	char aio[16];
	/*
	 * The protocol driver that reaches the storage: "file" and
	 * "host_device" for local images, "rbd", "iscsi", "nbd", ...
	 */
	char backend[16];
	/* Network storage: rbd "POOL/IMAGE" (or POOL/NAMESPACE/IMAGE), iscsi "TARGET/LUN". */
	char remote[VM_PATH_MAX];
	char format[16];       /* the image's format (qcow2, raw, ...), "" if QEMU probes it */
};

/*
 * Files QEMU opens that are not the guest's disks, though QEMU locks them
 * as it locks disk images: CD-ROM media, firmware and its variables,
 * backing images of a disk, block nodes no device uses.
 */
struct vm_files {
	char path[VM_MAX_OTHER_FILES][VM_PATH_MAX];
	int n;
};

void vm_files_add(struct vm_files *f, const char *path);

/* -add-fd fd=FD,set=SET: what QEMU opens as /dev/fdset/SET. */
struct vm_fdset {
	int set;
	int fd;
};

struct vm_spec {
	char name[VM_NAME_MAX];
	char uuid[40];
	char pidfile[VM_PATH_MAX]; /* -pidfile: libvirt keeps its status file beside it */
	struct vm_nic nics[VM_MAX_NICS];
	int nr_nics;
	struct vm_drive drives[VM_MAX_DRIVES];
	int nr_drives;
	struct vm_files others;
	struct vm_fdset fdsets[VM_MAX_FDS];
	int nr_fdsets;
};

/* True if argv[0]'s basename is a QEMU system emulator. */
bool qemu_is_emulator(const char *argv0);

/* Parses a QEMU argv; returns 0 or -errno. Unknown options are ignored. */
int qemu_parse_argv(int argc, char *const argv[], struct vm_spec *vm);

/* Parses NUL-separated /proc/PID/cmdline text of `len` bytes. */
int qemu_parse_cmdline(const char *buf, size_t len, struct vm_spec *vm);

/*
 * Whether /proc/PID/fdinfo text shows the image locks QEMU's file driver
 * takes on a drive's image (OFD locks on bytes 100+ and 200+).
 */
bool fdinfo_qemu_image_lock(const char *text);

/* Whether a drive's backend is a local image (a file or block device on this host). */
bool qemu_backend_is_local(const char *backend);

/* The tap name in /proc/PID/fdinfo/N text (`iff:` line); 0 or -ENOENT. */
int fdinfo_tap_name(const char *text, char *ifname, size_t size);

#endif

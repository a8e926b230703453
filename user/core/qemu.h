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
	char netdev_id[VM_ID_MAX];
	char ifname[IFNAMSIZ]; /* from ifname=, else resolved from fds */
	int fds[VM_MAX_FDS];   /* tap fds passed by the management layer */
	int nr_fds;
	char mac[18];
};

struct vm_drive {
	char node[VM_ID_MAX];  /* -drive id= or -blockdev node-name= */
	char label[VM_ID_MAX]; /* the `drive` label: device id sans "ua-", else node */
	char file[VM_PATH_MAX];
	char aio[16];
};

struct vm_spec {
	char name[VM_NAME_MAX];
	char uuid[40];
	struct vm_nic nics[VM_MAX_NICS];
	int nr_nics;
	struct vm_drive drives[VM_MAX_DRIVES];
	int nr_drives;
};

/* True if argv[0]'s basename is a QEMU system emulator. */
bool qemu_is_emulator(const char *argv0);

/* Parses a QEMU argv; returns 0 or -errno. Unknown options are ignored. */
int qemu_parse_argv(int argc, char *const argv[], struct vm_spec *vm);

/* Parses NUL-separated /proc/PID/cmdline text of `len` bytes. */
int qemu_parse_cmdline(const char *buf, size_t len, struct vm_spec *vm);

/* The tap name in /proc/PID/fdinfo/N text (`iff:` line); 0 or -ENOENT. */
int fdinfo_tap_name(const char *text, char *ifname, size_t size);

#endif

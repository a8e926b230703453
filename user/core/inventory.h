/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What a VM uses now: its drives and NICs, learned from its command line,
 * libvirt's live domain state and the files it holds open, and for each
 * whether a probe measures it, or why not. Nothing is silently left out.
 */
#ifndef VMPROBE_INVENTORY_H
#define VMPROBE_INVENTORY_H

#include <net/if.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core/image.h"
#include "core/probe.h"
#include "core/qemu.h"

struct discovery;
struct libvirt_domain;
struct vm;

/* Where an entry was learned, most authoritative last. */
enum vm_source {
	VM_SRC_CMDLINE, /* QEMU's command line */
	VM_SRC_FD,      /* an image QEMU holds open that nothing else names */
	VM_SRC_LIBVIRT, /* libvirt's live domain state */
};

extern const char *const vm_source_names[];

/* Whether a probe measures an entry; set by the probe at each sync. */
struct coverage {
	const struct probe *probe; /* NULL: no probe took it */
	bool measured;
	char reason[96];           /* why not, when not measured */
	bool warned;               /* its not being measured was logged */
};

struct vm_disk {
	struct vm_drive spec;   /* label, image, AIO mode, backend */
	enum vm_source source;
	bool present;           /* false: it went; the probes let go of it, then it is dropped */
	/* A local image, found in QEMU's mount namespace (or from its fd). */
	bool resolved;
	dev_t dev;
	ino_t ino;
	__u64 btime_ns;         /* an fd-learned image's birth (vm_file): 0 if not known */
	dev_t rdev;             /* the device, when the image is a block device */
	/* The files below it (a qcow2 image's backing chain): its reads fall through to them. */
	struct file_id backing[IMAGE_MAX_BACKING];
	int nr_backing;
	bool open;              /* an fd was on its image at the last walk of the fd table */
	bool open_known;        /* `open` is from a walk of the fd table (it could be read) */
	double closed_at;       /* its image closed with nothing opened in its place: when */
	bool seen_open;         /* `open` at some walk */
	bool settled;           /* seen open, or judged at a full walk of a QEMU long exec'd */
	bool move_warned;       /* a move to an image that could not be told was logged */
	struct coverage cov;
	void *priv[PROBE_MAX];  /* each probe's state of this drive */
};

struct vm_iface {
	char tap[IFNAMSIZ];     /* "" for a NIC without a tap (vhost-user, user, ...) */
	char label[VM_ID_MAX];  /* the `interface` label */
	char type[16];          /* the netdev type */
	char mac[18];
	enum vm_source source;
	bool present;
	struct coverage cov;
	void *priv[PROBE_MAX];
};

/*
 * Rebuilds vm's drives and NICs from its spec, libvirt's domain (NULL when
 * libvirt does not manage it) and a snapshot of its fds (its fds_read
 * false: fd-learned entries stay as they were). New entries are added,
 * entries that went are marked !present for the probes to let go of.
 */
void inventory_update(struct discovery *d, struct vm *vm, const struct vm_snapshot *snap,
		      const struct libvirt_domain *dom);
/*
 * After every probe synced: drops what went (the probes must have freed
 * their state) and, when probes run or are down (ps, NULL for a plain
 * listing), says (and logs once) why the entries no probe took are not
 * measured.
 */
void inventory_settle(struct vm *vm, const struct probe_set *ps);

/* For probes: takes the entry, measured or not (then `why`, printf-style). */
void coverage_set(struct coverage *c, const struct probe *p, bool measured, const char *why, ...)
	__attribute__((format(printf, 4, 5)));

/* Whether the file (dev, ino) is the drive's image or one of its backing files. */
bool vm_disk_has_file(const struct vm_disk *disk, dev_t dev, ino_t ino);

/* The interface label of a NIC: its device id without KubeVirt's "ua-", else the tap's name. */
void iface_label(const char *device_id, const char *tap, char *out, size_t size);

#endif

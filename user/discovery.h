/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The VM table: QEMU processes found in /proc, their taps and slots. */
#ifndef VMPROBE_DISCOVERY_H
#define VMPROBE_DISCOVERY_H

#include <linux/types.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "disk.h"
#include "net.h"
#include "qemu.h"

struct tap_state {
	char ifname[IFNAMSIZ];
	int ifindex;
	__u64 netns_cookie;
	int slot; /* -1 while not counted */
	struct tc_attachment att;
	int last_error; /* of the last attach try, to log each failure once */
};

#define DRIVE_MAX_FDS 8

struct drive_state {
	int slot;         /* -1 while not counted */
	bool resolved;    /* the image was found */
	dev_t st_dev;     /* identity of the image, to match the process's fds */
	ino_t st_ino;
	__u32 kdev;       /* kernel dev_t when the image is a block device, else 0 */
	int fds[DRIVE_MAX_FDS];
	int nr_fds;
	bool had_fds;     /* fds were found once: no need to look at every rescan */
};
/* drive_fds_prune() keeps a bit per fd in an unsigned. */
_Static_assert(DRIVE_MAX_FDS <= 32, "DRIVE_MAX_FDS fits a bitmask");

struct vm {
	pid_t pid;
	unsigned long long start_time; /* tells a reused PID apart */
	char name[VM_NAME_MAX];
	char ns[VM_NAME_MAX]; /* KubeVirt namespace, "" outside Kubernetes */
	char pid_str[16];
	struct vm_spec spec;
	struct tap_state taps[VM_MAX_NICS];
	int nr_taps;
	struct drive_state drives[VM_MAX_DRIVES]; /* as spec.drives */
	unsigned seen_gen;
	struct vm *next;
};

struct discovery {
	const struct config *cfg;
	struct net_probe *np; /* NULL when the network probe is off */
	struct disk_probe *dp; /* NULL when the disk probe is off */
	pthread_mutex_t lock; /* guards the table against /metrics */
	struct vm *vms;
	int home_netns; /* the namespace to come back to */
	unsigned gen;
	/* self-metrics */
	unsigned long long scans;
	unsigned long long attach_errors;
	double last_scan_seconds;
};

int discovery_init(struct discovery *d, const struct config *cfg, struct net_probe *np,
		   struct disk_probe *dp);
/* Rescans /proc, attaches new taps, forgets what is gone. */
void discovery_scan(struct discovery *d);
/* Detaches every tap and frees the table. */
void discovery_fini(struct discovery *d);

/* Fills name and ns from the QEMU name and the cgroup text (pure). */
void vm_identity(const char *qemu_name, const char *cgroup_text, pid_t pid, const char *uuid,
		 char *name, size_t name_size, char *ns, size_t ns_size);

#endif

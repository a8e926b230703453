/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The VM table: QEMU processes found in /proc, their identity, taps and drives. */
#ifndef VMPROBE_DISCOVERY_H
#define VMPROBE_DISCOVERY_H

#include <linux/types.h>
#include <net/if.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/inventory.h"
#include "core/probe.h"
#include "core/qemu.h"

struct vm {
	pid_t pid;
	pid_t nspid;                  /* its pid in its own pid namespace (a pod's), 0 if not known */
	unsigned long long start_time; /* tells a reused PID apart */
	unsigned long long found_ns;  /* monotonic_ns() when discovery first read it */
	char name[VM_NAME_MAX];
	char ns[VM_NAME_MAX]; /* KubeVirt namespace, "" outside Kubernetes */
	char pid_str[16];
	struct vm_spec spec;          /* its command line */
	struct vm_disk disks[VM_MAX_DRIVES]; /* what it uses now (core/inventory.h) */
	int nr_disks;
	unsigned drives_gone; /* command-line drives unplugged since (bits of spec.drives) */
	bool libvirt_seen;    /* libvirt's state of it was read once: libvirt says what goes */
	struct vm_iface ifaces[VM_MAX_NICS];
	int nr_ifaces;
	unsigned nics_tun_seen; /* command-line NICs whose tun was seen open (bits of spec.nics) */
	unsigned nics_gone;     /* ... whose tun was closed since: unplugged */
	char nic_taps[VM_MAX_NICS][IFNAMSIZ]; /* the tap each NIC QEMU opened it for is tied to */
	int nic_fds[VM_MAX_NICS]; /* 1 + the tun fd each such NIC's tap was last seen on, 0: none */
	int netns_fd;     /* the VM's network namespace, where its taps are */
	bool needs_sync;  /* sync at the next scan, whatever the probes say */
	bool fd_warned;   /* an unreadable fd table was logged */
	bool netns_warned; /* a network namespace that cannot be entered was logged */
	bool full_warned; /* more drives or NICs than kept was logged */
	int *fds;         /* the fd numbers of the last sync, sorted: a change means a new sync */
	size_t nr_fds;
	struct libvirt_state *libvirt; /* libvirt's view of the domain, NULL if unmanaged */
	void *priv[PROBE_MAX]; /* each probe's state of this VM, by probe id */
	unsigned seen_gen;
	struct vm *next;
};

struct discovery {
	const struct config *cfg;
	struct probe_set *probes; /* empty for a plain listing */
	pthread_mutex_t lock; /* guards the table against /metrics */
	struct vm *vms;
	int home_netns; /* the namespace to come back to */
	unsigned gen;
	unsigned table_gen; /* grows whenever a VM is added or dropped */
	/* self-metrics */
	unsigned long long scans;
	unsigned long long attach_errors;
	double last_scan_seconds;
	unsigned long long exec_events, exit_events; /* read by core/proc_events.c */
	unsigned long long events_map_bytes; /* BPF maps of core/proc_events.c; 0: none */
};

/* probes: NULL to find VMs and count nothing (vmprobe list). */
int discovery_init(struct discovery *d, const struct config *cfg, struct probe_set *probes);
/* Rescans /proc: new VMs and resources go to the probes, what is gone is forgotten. */
void discovery_scan(struct discovery *d);
/*
 * Looks at one process now, as a scan would: a new QEMU process becomes a
 * VM, a known VM is synced. Whether pid is a VM.
 */
bool discovery_scan_pid(struct discovery *d, pid_t pid);
/*
 * The process `pid` exited or runs another program: its VM, if discovery
 * found it before before_ns (monotonic_ns()), is dropped now.
 */
void discovery_forget(struct discovery *d, pid_t pid, __u64 before_ns);
/*
 * serve: tries again the probes that could not load, when due; each that
 * loads now takes every VM, synced at the next scan. Whether one did.
 */
bool discovery_probes_retry(struct discovery *d);
/* The VM of `pid`, if known, is synced at the next scan whatever else changed. */
void discovery_poke(struct discovery *d, pid_t pid);
/* Forgets every VM (the probes undo what they did for it) and frees the table. */
void discovery_fini(struct discovery *d);

/* Fills name and ns from the QEMU name and the cgroup text (pure). */
void vm_identity(const char *qemu_name, const char *cgroup_text, pid_t pid, const char *uuid,
		 char *name, size_t name_size, char *ns, size_t ns_size);

/* The pid in its own pid namespace (the last of NSpid:) in /proc/PID/status text, 0 if none. */
pid_t proc_status_nspid(const char *text);

/* Enters the VM's network namespace (vm->netns_fd); 0 or -errno, logged once per VM. */
int discovery_enter_netns(struct discovery *d, struct vm *vm);
/* Back to vmprobe's own, after discovery_enter_netns(). */
void discovery_leave_netns(struct discovery *d);

#endif

/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Network namespaces: entering a VM's, and telling them apart. */
#ifndef VMPROBE_NETNS_H
#define VMPROBE_NETNS_H

#include <linux/types.h>

/*
 * Switches the calling thread into the network namespace of the open
 * nsfs file `fd` (setns affects only this thread), unless it is there
 * already: entering its own namespace needs no CAP_SYS_ADMIN; 0 or -errno.
 */
int netns_enter(int fd);

/* An fd on the calling thread's own network namespace, for returning. */
int netns_open_current(void);

/*
 * Calls fn in each network namespace of the host's processes (under
 * `proc_root`, /proc seen from the host) and each one `ip netns` named
 * (the host's /run/netns and ours), once each, then returns the thread to
 * its own. The number of namespaces entered, or -errno if `proc_root`
 * could not be read, a namespace not entered (fn ran in all the others)
 * or the thread could not get back.
 */
int netns_foreach(const char *proc_root, void (*fn)(void *arg), void *arg);

/* The kernel's cookie of the current thread's network namespace (the
 * value bpf_get_netns_cookie() returns for its devices); 0 or -errno. */
int netns_current_cookie(__u64 *cookie);

#endif

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

/* The kernel's cookie of the current thread's network namespace (the
 * value bpf_get_netns_cookie() returns for its devices); 0 or -errno. */
int netns_current_cookie(__u64 *cookie);

#endif

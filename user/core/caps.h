/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The capabilities vmprobe uses, which of them a step lacks, and the
 * words that say so when the kernel answers EPERM: check lists them,
 * a probe that cannot load or attach names the missing ones.
 */
#ifndef VMPROBE_CAPS_H
#define VMPROBE_CAPS_H

#include <linux/capability.h>
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

struct bpf_object;

#define CAP_BIT(cap) (1ULL << (cap))

struct cap_info {
	int cap;
	const char *name, *why;
	bool required; /* serve cannot run without it; the others measure less */
};

/* Every capability serve uses (README, "Security"), in the order check lists them. */
extern const struct cap_info cap_table[];
extern const size_t cap_table_len;

/* The effective set, CAP_BIT()s; 0 or -errno. */
int caps_effective(__u64 *have);

/*
 * Of `need`, those `have` lacks. With `admin`, CAP_SYS_ADMIN stands in
 * for each (the kernel's bpf_token_capable() and perfmon_capable()); a
 * netlink TC request takes CAP_NET_ADMIN alone.
 */
__u64 caps_lacking(__u64 need, __u64 have, bool admin);

/* What else than a capability can refuse a privileged call. */
struct caps_env {
	bool userns;        /* in a user namespace: capabilities count only there */
	bool seccomp;       /* a seccomp filter is on */
	bool lockdown;      /* kernel lockdown in confidentiality mode */
};

void caps_env_read(struct caps_env *env);

/*
 * ": why" for a step that failed with errno `err`, needing `need` (admin as
 * above) while the process had `have`: the missing capabilities by name,
 * or, for EPERM with all there, the likely other cause. "" where
 * capabilities do not explain the error. Written into buf, returned.
 */
const char *caps_explain(char *buf, size_t len, int err, __u64 need, bool admin, __u64 have,
			 const struct caps_env *env);

/* caps_explain with this process's capabilities and environment. */
const char *caps_hint(char *buf, size_t len, int err, __u64 need, bool admin);

/* What loading obj's programs needs: CAP_BPF, with CAP_PERFMON or CAP_NET_ADMIN by type. */
__u64 caps_to_load(const struct bpf_object *obj);

/*
 * A probe about to load obj notes what that takes (caps_to_load), for
 * caps_load_hint() once its open failed and obj is gone; NULL forgets.
 */
void caps_load_note(const struct bpf_object *obj);
/* caps_hint for the load last noted (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN if none was). */
const char *caps_load_hint(char *buf, size_t len, int err);

#define CAPS_HINT_MAX 384

#endif

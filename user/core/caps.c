// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The capabilities vmprobe uses, and what to say when the kernel refuses for want of one. */
#include "core/caps.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/util.h"

/*
 * The systemd unit grants all but CAP_SYS_ADMIN. CAP_SYS_ADMIN stands in
 * for CAP_BPF, CAP_PERFMON and, for loading TC programs and TCX links,
 * CAP_NET_ADMIN.
 */
const struct cap_info cap_table[] = {
	{ CAP_BPF, "CAP_BPF", "BPF maps and programs", true },
	{ CAP_PERFMON, "CAP_PERFMON", "tracepoints, kernel memory reads", true },
	{ CAP_NET_ADMIN, "CAP_NET_ADMIN", "load TC programs, attach them to taps", true },
	{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE", "other users' /proc/PID/fd, ns, root", true },
	{ CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH",
	  "list another user's /proc/PID/fd, read tracefs", true },
	{ CAP_SYSLOG, "CAP_SYSLOG", "kernel addresses: aio=native at block completion, not io_submit",
	  false },
	{ CAP_SYS_ADMIN, "CAP_SYS_ADMIN", "enter pods' network namespaces; mount bpffs, tracefs",
	  false },
};
const size_t cap_table_len = ARRAY_SIZE(cap_table);

int caps_effective(__u64 *have)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	*have = data[0].effective | (__u64)data[1].effective << 32;
	return 0;
}

__u64 caps_lacking(__u64 need, __u64 have, bool admin)
{
	if (admin && (have & CAP_BIT(CAP_SYS_ADMIN)))
		return 0;
	return need & ~have;
}

void caps_env_read(struct caps_env *env)
{
	unsigned inside, outside, count;
	char buf[4096], *p;

	memset(env, 0, sizeof(*env));
	/* The host's namespace maps every uid to itself: "0 0 4294967295". */
	if (read_file("/proc/self/uid_map", buf, sizeof(buf)) > 0)
		env->userns = sscanf(buf, "%u %u %u", &inside, &outside, &count) != 3 || inside ||
			      outside || count != UINT32_MAX;
	if (read_file("/proc/self/status", buf, sizeof(buf)) > 0 && (p = strstr(buf, "\nSeccomp:")))
		env->seccomp = strtol(p + strlen("\nSeccomp:"), NULL, 10) == 2;
	if (read_file("/sys/kernel/security/lockdown", buf, sizeof(buf)) > 0)
		env->lockdown = strstr(buf, "[confidentiality]") != NULL;
}

/* "CAP_A", "CAP_A and CAP_B", "CAP_A, CAP_B and CAP_C" of mask, with each's why when `why`. */
static void cap_names(char *buf, size_t len, __u64 mask, bool why)
{
	size_t n = 0, left = (size_t)__builtin_popcountll(mask);

	buf[0] = '\0';
	for (size_t i = 0; i < cap_table_len && n < len; i++) {
		if (!(mask & CAP_BIT(cap_table[i].cap)))
			continue;
		left--;
		n += (size_t)snprintf(buf + n, len - n, "%s%s%s%s", cap_table[i].name,
				      why ? " (" : "", why ? cap_table[i].why : "", why ? ")" : "");
		if (left && n < len)
			n += (size_t)snprintf(buf + n, len - n, left > 1 ? ", " : " and ");
	}
}

/* EPERM though the capabilities are there: what else refuses. */
static const char *other_cause(const struct caps_env *env)
{
	if (env->seccomp)
		return "a seccomp filter (a container runtime's default profile) forbids the call";
	if (env->lockdown)
		return "kernel lockdown (confidentiality) forbids it";
	return "a security module (AppArmor, SELinux) denies it";
}

const char *caps_explain(char *buf, size_t len, int err, __u64 need, bool admin, __u64 have,
			 const struct caps_env *env)
{
	__u64 lacking = caps_lacking(need, have, admin);
	char names[256];

	buf[0] = '\0';
	if (err != EPERM && err != EACCES)
		return buf;
	if (env->userns) {
		snprintf(buf, len, ": vmprobe runs in a user namespace, whose capabilities the "
			 "kernel does not take for this: run it in the host's; see `vmprobe check`");
	} else if (lacking) {
		cap_names(names, sizeof(names), lacking, true);
		snprintf(buf, len, ": vmprobe lacks %s: grant %s%s, or run as root; see `vmprobe check`",
			 names, __builtin_popcountll(lacking) > 1 ? "them" : "it",
			 admin ? " (or CAP_SYS_ADMIN)" : "");
	} else if (err == EPERM) {
		/* EACCES with every capability there is the verifier's: its log says why. */
		cap_names(names, sizeof(names),
			  admin && (have & CAP_BIT(CAP_SYS_ADMIN)) ? CAP_BIT(CAP_SYS_ADMIN) : need,
			  false);
		snprintf(buf, len, ": vmprobe has %s, all this needs: likely %s; see `vmprobe check`",
			 names, other_cause(env));
	}
	return buf;
}

const char *caps_hint(char *buf, size_t len, int err, __u64 need, bool admin)
{
	struct caps_env env;
	__u64 have;

	if (caps_effective(&have)) {
		buf[0] = '\0';
		return buf;
	}
	caps_env_read(&env);
	return caps_explain(buf, len, err, need, admin, have, &env);
}

/* kernel/bpf/syscall.c, bpf_prog_load(): is_perfmon_prog_type(), is_net_admin_prog_type(). */
__u64 caps_to_load(const struct bpf_object *obj)
{
	__u64 need = CAP_BIT(CAP_BPF);
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__autoload(prog))
			continue;
		switch (bpf_program__type(prog)) {
		case BPF_PROG_TYPE_KPROBE: /* uprobes too */
		case BPF_PROG_TYPE_TRACEPOINT:
		case BPF_PROG_TYPE_RAW_TRACEPOINT:
		case BPF_PROG_TYPE_PERF_EVENT:
		case BPF_PROG_TYPE_TRACING:
			need |= CAP_BIT(CAP_PERFMON);
			break;
		case BPF_PROG_TYPE_SCHED_CLS:
		case BPF_PROG_TYPE_SCHED_ACT:
		case BPF_PROG_TYPE_XDP:
			need |= CAP_BIT(CAP_NET_ADMIN);
			break;
		default:
			break;
		}
	}
	return need;
}

/* Probes open one at a time, in serve's main thread (or the CLI's). */
static __u64 load_need;

void caps_load_note(const struct bpf_object *obj)
{
	load_need = obj ? caps_to_load(obj) : 0;
}

const char *caps_load_hint(char *buf, size_t len, int err)
{
	return caps_hint(buf, len, err,
			 load_need ? load_need
				   : CAP_BIT(CAP_BPF) | CAP_BIT(CAP_PERFMON) | CAP_BIT(CAP_NET_ADMIN),
			 true);
}

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Which capability a failed load or attach names, from the set the process had. */
#include <errno.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "unit.h"

#include "core/caps.h"
#include "core/util.h"
#include "disk.skel.h"
#include "net.skel.h"
#include "proc_events.skel.h"

#define BPF CAP_BIT(CAP_BPF)
#define PERFMON CAP_BIT(CAP_PERFMON)
#define NET_ADMIN CAP_BIT(CAP_NET_ADMIN)
#define SYS_ADMIN CAP_BIT(CAP_SYS_ADMIN)
/* The systemd unit's set (packaging/vmprobe.service.in). */
#define UNIT (BPF | PERFMON | NET_ADMIN | CAP_BIT(CAP_SYS_PTRACE) |                     \
	      CAP_BIT(CAP_DAC_READ_SEARCH) | CAP_BIT(CAP_SYSLOG))

struct explain_case {
	const char *what;
	int err;
	__u64 need;
	bool admin;
	__u64 have;
	struct caps_env env;
	const char *want;
};

static void explain_cases(void **state)
{
	static const struct explain_case cases[] = {
		{ "the disk probe's load without CAP_BPF names it alone", EPERM, BPF | PERFMON,
		  true, UNIT & ~BPF, {},
		  ": vmprobe lacks CAP_BPF (BPF maps and programs): grant it (or CAP_SYS_ADMIN), "
		  "or run as root; see `vmprobe check`" },
		{ "the disk probe's load without CAP_PERFMON names it alone", EPERM,
		  BPF | PERFMON, true, UNIT & ~PERFMON, {},
		  ": vmprobe lacks CAP_PERFMON (tracepoints, kernel memory reads): grant it (or "
		  "CAP_SYS_ADMIN), or run as root; see `vmprobe check`" },
		{ "the network probe's load without any: all three, in the table's order", EPERM,
		  BPF | PERFMON | NET_ADMIN, true, 0, {},
		  ": vmprobe lacks CAP_BPF (BPF maps and programs), CAP_PERFMON (tracepoints, "
		  "kernel memory reads) and CAP_NET_ADMIN (load TC programs, attach them to taps): "
		  "grant them (or CAP_SYS_ADMIN), or run as root; see `vmprobe check`" },
		{ "EACCES (the verifier's answer without privileges) names them too", EACCES,
		  BPF | NET_ADMIN, true, PERFMON,  {},
		  ": vmprobe lacks CAP_BPF (BPF maps and programs) and CAP_NET_ADMIN (load TC "
		  "programs, attach them to taps): grant them (or CAP_SYS_ADMIN), or run as root; "
		  "see `vmprobe check`" },
		{ "CAP_SYS_ADMIN stands in for a load's", EPERM, BPF | PERFMON | NET_ADMIN, true,
		  SYS_ADMIN, {},
		  ": vmprobe has CAP_SYS_ADMIN, all this needs: likely a security module "
		  "(AppArmor, SELinux) denies it; see `vmprobe check`" },
		{ "but not for a clsact filter's CAP_NET_ADMIN", EPERM, NET_ADMIN, false,
		  SYS_ADMIN | BPF | PERFMON, {},
		  ": vmprobe lacks CAP_NET_ADMIN (load TC programs, attach them to taps): grant it, "
		  "or run as root; see `vmprobe check`" },
		{ "every capability there, under a seccomp filter", EPERM, BPF | PERFMON, true,
		  UNIT, { .seccomp = true },
		  ": vmprobe has CAP_BPF and CAP_PERFMON, all this needs: likely a seccomp filter "
		  "(a container runtime's default profile) forbids the call; see `vmprobe check`" },
		{ "every capability there, under lockdown", EPERM, PERFMON, true, UNIT,
		  { .lockdown = true },
		  ": vmprobe has CAP_PERFMON, all this needs: likely kernel lockdown "
		  "(confidentiality) forbids it; see `vmprobe check`" },
		{ "every capability there, EACCES: the verifier's, not a capability's", EACCES,
		  BPF | PERFMON, true, UNIT, {}, "" },
		{ "in a user namespace its capabilities do not count", EPERM, BPF, true,
		  ~0ULL, { .userns = true },
		  ": vmprobe runs in a user namespace, whose capabilities the kernel does not "
		  "take for this: run it in the host's; see `vmprobe check`" },
		{ "another error is not about capabilities", EINVAL, BPF, true, 0, {}, "" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct explain_case *c = &cases[i];
		char buf[CAPS_HINT_MAX];

		expect_str(c->what, c->want,
			   caps_explain(buf, sizeof(buf), c->err, c->need, c->admin, c->have,
					&c->env));
	}
}

static void lacking_cases(void **state)
{
	expect_int("CAP_SYS_ADMIN stands in for all", 0,
		   caps_lacking(BPF | PERFMON | NET_ADMIN, SYS_ADMIN, true));
	expect_int("not where it does not", NET_ADMIN, caps_lacking(NET_ADMIN, SYS_ADMIN, false));
	expect_int("only the missing of the needed", PERFMON,
		   caps_lacking(BPF | PERFMON, BPF | NET_ADMIN, true));
}

/* From the real objects, by their programs' types, before any load. */
static void to_load(void **state)
{
	struct disk_bpf *disk = disk_bpf__open();
	struct net_bpf *net = net_bpf__open();
	struct proc_events_bpf *pe = proc_events_bpf__open();

	assert_non_null(disk);
	assert_non_null(net);
	assert_non_null(pe);
	expect_int("the disk probe: tracepoints", BPF | PERFMON, caps_to_load(disk->obj));
	expect_int("the network probe: TC and tp_btf", BPF | PERFMON | NET_ADMIN,
		   caps_to_load(net->obj));
	bpf_program__set_autoload(net->progs.net_kfree_skb, false);
	bpf_program__set_autoload(net->progs.host_tcp_probe, false);
	bpf_program__set_autoload(net->progs.host_tcp_retransmit, false);
	expect_int("the network probe without its tracepoints: TC alone", BPF | NET_ADMIN,
		   caps_to_load(net->obj));
	expect_int("process events: tp_btf", BPF | PERFMON, caps_to_load(pe->obj));
	disk_bpf__destroy(disk);
	net_bpf__destroy(net);
	proc_events_bpf__destroy(pe);
}

/*
 * What a probe noted before its load is what its failure names, once the
 * object is gone: seen with every capability there but CAP_SYS_ADMIN
 * (out of the effective set for the while), which would stand in.
 */
static void load_noted(void **state)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct saved[2], data[2];
	struct disk_bpf *disk = disk_bpf__open();
	char buf[CAPS_HINT_MAX], noted[CAPS_HINT_MAX], unnoted[CAPS_HINT_MAX];
	struct caps_env env;
	__u64 have = 0;

	assert_non_null(disk);
	assert_int_equal(syscall(SYS_capget, &hdr, saved), 0);
	memcpy(data, saved, sizeof(data));
	data[CAP_SYS_ADMIN / 32].effective &= ~(1U << (CAP_SYS_ADMIN % 32));
	caps_env_read(&env);
	if (syscall(SYS_capset, &hdr, data) || caps_effective(&have) || env.userns ||
	    caps_lacking(BPF | PERFMON | NET_ADMIN, have, true)) {
		disk_bpf__destroy(disk);
		skip(); /* the names below are those of a process holding all three */
	}
	caps_load_note(disk->obj);
	disk_bpf__destroy(disk);
	snprintf(noted, sizeof(noted), "%s", caps_load_hint(buf, sizeof(buf), EPERM));
	caps_load_note(NULL);
	snprintf(unnoted, sizeof(unnoted), "%s", caps_load_hint(buf, sizeof(buf), EPERM));
	assert_int_equal(syscall(SYS_capset, &hdr, saved), 0);
	if (!strstr(noted, ": vmprobe has CAP_BPF and CAP_PERFMON, all this needs: likely "))
		fail_msg("the disk probe's load, noted: %s", noted);
	if (!strstr(unnoted, ": vmprobe has CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, all this "
			     "needs: likely "))
		fail_msg("nothing noted: %s", unnoted);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(explain_cases),
		cmocka_unit_test(lacking_cases),
		cmocka_unit_test(to_load),
		cmocka_unit_test(load_noted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

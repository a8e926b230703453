// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vmprobe check: can vmprobe run here, and what will it measure? */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <json-c/json.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/caps.h"
#include "core/tapdev.h"
#include "cli/cmd.h"
#include "probes/disk/disk_probe.h"
#include "probes/net/net_probe.h"
#include "core/config.h"
#include "core/netns.h"
#include "core/pin.h"
#include "core/proc_events.h"
#include "core/qemu.h"
#include "core/util.h"

enum status {
	ST_OK,       /* works */
	ST_DEGRADED, /* vmprobe runs, measuring less */
	ST_MISSING,  /* vmprobe cannot run */
	ST_ABSENT,   /* not available, and not needed */
};

static const char *const status_names[] = {
	[ST_OK] = "ok", [ST_DEGRADED] = "degraded", [ST_MISSING] = "missing",
	[ST_ABSENT] = "absent",
};

struct report {
	json_object *items;
	bool json;
	enum status worst;
};

static void item(struct report *r, const char *name, enum status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void item(struct report *r, const char *name, enum status st, const char *fmt, ...)
{
	char detail[512];
	json_object *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (st != ST_ABSENT && st > r->worst)
		r->worst = st;
	if (!r->json) {
		printf("%-9s %-34s %s\n", status_names[st], name, detail);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "status", json_object_new_string(status_names[st]));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	json_object_array_add(r->items, o);
}

/* What check tried of the TC hooks: CAP_NET_ADMIN is judged by it. */
struct tc_tries {
	bool tcx;       /* serve hangs taps from TCX links (network.tc_hook, this kernel) */
	int load_err;   /* loading the TC programs */
	int tcx_err;    /* attaching TCX links (when tcx) */
	int clsact_err; /* attaching clsact filters */
	int tap_err;    /* making check's throwaway tap: clsact not tried */
	int netns_err;  /* and its throwaway netns: TCX not tried either */
};

/*
 * Without CAP_NET_ADMIN, as the hook serve will use answered when tried:
 * TCX links attach with CAP_SYS_ADMIN standing in, clsact filters never
 * (rtnetlink asks for CAP_NET_ADMIN itself), and a tap whose TCX attach
 * fails falls back to clsact.
 */
static void net_admin_judge(struct report *r, const char *name, const struct tc_tries *t)
{
	if (t->load_err)
		item(r, name, ST_MISSING, "loading the TC programs: %s", strerror(-t->load_err));
	else if (t->tcx && t->netns_err)
		item(r, name, ST_MISSING, "not tried (check's throwaway tap: %s; network namespace: "
		     "%s): clsact filters need it, TCX links unless CAP_SYS_ADMIN stands in",
		     strerror(-t->tap_err), strerror(-t->netns_err));
	else if (t->tcx && !t->tcx_err)
		item(r, name, ST_ABSENT, "%s",
		     "not needed: TCX links attached without it (tried); only the clsact fallback "
		     "of a tap whose TCX attach fails needs it");
	else if (t->tcx)
		item(r, name, ST_MISSING, "TCX links do not attach here (tried: %s), so taps fall "
		     "back to clsact filters, which need it (tried: %s)", strerror(-t->tcx_err),
		     strerror(-t->clsact_err));
	else
		item(r, name, ST_MISSING, "taps hang from clsact filters here, which need it "
		     "(tried: %s)", t->clsact_err ? strerror(-t->clsact_err) : "they attached");
}

/*
 * The capabilities serve uses (core/caps.c). CAP_SYS_ADMIN stands in for
 * CAP_BPF, CAP_PERFMON and, where TCX links attach, CAP_NET_ADMIN.
 */
static void check_caps(struct report *r, const struct tc_tries *tc)
{
	bool admin;
	__u64 have;
	int err = caps_effective(&have);

	if (err) {
		item(r, "privileges", ST_MISSING, "capget: %s", strerror(-err));
		return;
	}
	admin = have & CAP_BIT(CAP_SYS_ADMIN);
	for (size_t i = 0; i < cap_table_len; i++) {
		int cap = cap_table[i].cap;
		bool has = have & CAP_BIT(cap);
		char name[48];

		snprintf(name, sizeof(name), "privilege %s", cap_table[i].name);
		if (!has && admin && (cap == CAP_BPF || cap == CAP_PERFMON))
			item(r, name, ST_ABSENT, "CAP_SYS_ADMIN stands in for it");
		else if (!has && cap == CAP_NET_ADMIN)
			net_admin_judge(r, name, tc);
		else
			item(r, name, has ? ST_OK : cap_table[i].required ? ST_MISSING : ST_DEGRADED,
			     "%s", cap_table[i].why);
	}
}

static void check_bpf(struct report *r)
{
	const struct bpf_insn ret0[] = {
		{ .code = 0xb7, .dst_reg = 0, .imm = 0 }, /* r0 = 0 */
		{ .code = 0x95 },                          /* exit */
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "vmprobe_check", "GPL", ret0, 2, NULL);

	if (fd < 0)
		item(r, "bpf() syscall", ST_MISSING, "loading a trivial program: %s", strerror(errno));
	else
		item(r, "bpf() syscall", ST_OK, "programs load");
	if (fd >= 0)
		close(fd);
}

/* fentry: needed by nothing; reported because operators ask. */
static void check_fentry(struct report *r, struct btf *vmlinux)
{
	const struct bpf_insn ret0[] = { { .code = 0xb7 }, { .code = 0x95 } };
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY);
	int id = vmlinux ? btf__find_by_name_kind(vmlinux, "vfs_read", BTF_KIND_FUNC) : -1;
	int fd, link;

	if (id <= 0) {
		item(r, "fentry/fexit (optional)", ST_ABSENT, "no BTF for vfs_read");
		return;
	}
	opts.attach_btf_id = id;
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "vmprobe_fentry", "GPL", ret0, 2, &opts);
	if (fd < 0) {
		item(r, "fentry/fexit (optional)", ST_ABSENT, "load: %s; vmprobe does not use it",
		     strerror(errno));
		return;
	}
	link = bpf_raw_tracepoint_open(NULL, fd);
	if (link < 0)
		item(r, "fentry/fexit (optional)", ST_ABSENT, "attach: %s; vmprobe does not use it",
		     strerror(errno));
	else
		item(r, "fentry/fexit (optional)", ST_OK, "available; vmprobe does not use it");
	if (link >= 0)
		close(link);
	close(fd);
}

/*
 * The TC hooks are tried on a throwaway tap of check's own (making one
 * needs CAP_NET_ADMIN), else, for TCX, on the loopback of a throwaway
 * network namespace (making one needs CAP_SYS_ADMIN): no device of the
 * host's is touched.
 */
#define CHECK_TAP "vmprobe-check0"

/* TCX links on `ifindex` (current namespace) attach and detach; 0 or -errno. */
static int tcx_try(struct net_probe *np, int ifindex, int slot)
{
	struct tc_attachment a;
	int err = tcx_attach_pair(ifindex, net_tap_progs_fd(np), (__u32)slot + 1, &a);

	return err ? err : tc_detach_pair(&a);
}

/*
 * The same on the loopback of a new network namespace; 0 or -errno, and
 * *setup_err -errno where the namespace could not be made (not tried).
 */
static int tcx_try_netns(struct net_probe *np, int slot, int *setup_err)
{
	int self = netns_open_current(), err, ret, ifindex;

	if (self < 0)
		return *setup_err = self;
	err = *setup_err = unshare(CLONE_NEWNET) ? -errno : 0;
	if (!err) {
		ifindex = (int)if_nametoindex("lo");
		err = ifindex ? tcx_try(np, ifindex, slot) : -errno;
	}
	/* Back to where check runs; the namespace goes with its last user. */
	ret = netns_enter(self);
	if (ret)
		log_error("returning to the network namespace failed: %s", strerror(-ret));
	close(self);
	return err;
}

static void tc_try(struct net_probe *np, int slot, struct tc_tries *t)
{
	struct tc_attachment a;
	int tap = tapdev_open(CHECK_TAP), ifindex = 0;

	t->tap_err = tap < 0 ? tap : 0;
	if (tap >= 0) {
		ifindex = (int)if_nametoindex(CHECK_TAP);
		t->tap_err = ifindex ? 0 : -errno;
	}
	t->clsact_err = t->tap_err;
	if (ifindex && np->tcx)
		t->tcx_err = tcx_try(np, ifindex, slot);
	else if (np->tcx)
		t->tcx_err = tcx_try_netns(np, slot, &t->netns_err);
	if (ifindex) {
		t->clsact_err = tc_attach_pair(ifindex, net_prog_fd(np, true), net_prog_fd(np, false),
					       (__u32)slot + 1, &a);
		if (!t->clsact_err)
			t->clsact_err = tc_detach_pair(&a);
	}
	if (tap >= 0)
		close(tap);
}

/* What the tries say of each hook, for the hook serve uses. */
static void tc_report(struct report *r, const struct tc_tries *t, const char *why_clsact)
{
	if (!t->tcx)
		item(r, "TC attach (tcx)", ST_ABSENT, "%s: vmprobe uses clsact", why_clsact);
	else if (t->netns_err)
		item(r, "TC attach (tcx)", ST_ABSENT, "not tried: check's throwaway tap (%s) and "
		     "network namespace (%s) could not be made; serve makes neither",
		     strerror(-t->tap_err), strerror(-t->netns_err));
	else if (!t->tcx_err)
		item(r, "TC attach (tcx)", ST_OK, "links attach and detach; the hook vmprobe uses");
	else
		item(r, "TC attach (tcx)", t->clsact_err ? ST_MISSING : ST_DEGRADED,
		     "links do not attach: %s%s", strerror(-t->tcx_err),
		     t->clsact_err ? "" : "; every tap falls back to clsact filters (a costlier hook)");
	if (!t->clsact_err)
		item(r, "TC attach (clsact)", ST_OK, "filters attach and detach; %s",
		     !t->tcx ? "the hook vmprobe uses" : t->tcx_err ? "the hook taps fall back to"
		     : "the fallback of a tap whose TCX attach fails");
	else if (t->tcx && (!t->tcx_err || t->netns_err))
		item(r, "TC attach (clsact)", ST_ABSENT, "%s%s: %s; only the fallback of a tap whose "
		     "TCX attach fails needs it", t->tap_err ? "not tried, " : "",
		     t->tap_err ? "check's throwaway tap" : "attach/detach",
		     strerror(-t->clsact_err));
	else
		item(r, "TC attach (clsact)", ST_MISSING, "%s: %s",
		     t->tap_err ? "check's throwaway tap" : "attach/detach", strerror(-t->clsact_err));
}

static void check_net(struct report *r, const struct config *cfg, struct tc_tries *t)
{
	struct net_probe np;
	int err, slot;

	err = net_probe_open(&np, &(struct net_sizes){ .vms = 4, .ifaces = 4, .flows = 64 },
			     cfg->tc_hook, NULL);
	if (err) {
		t->load_err = err;
		item(r, "network probe (TC)", ST_MISSING, "load: %s", strerror(-err));
		return;
	}
	item(r, "network probe (TC)", ST_OK, "programs load");
	item(r, "TCP flow tracking (LRU table)", ST_OK, "RTT per path, retransmits, connections");
	item(r, "drop reasons (tp_btf/kfree_skb)", np.drops_on ? ST_OK : ST_DEGRADED, "%s",
	     np.drops_on ? "attached" : "missing: vmprobe_network_drops_total is off");
	/* serve attaches these only while it watches a QEMU socket: try them once. */
	err = np.host_tcp_on ? net_host_tcp_hooks(&np, true) : 0;
	if (!err && np.host_tcp_on)
		err = net_host_tcp_hooks(&np, false);
	if (!np.host_tcp_on)
		item(r, "QEMU's host TCP sockets", ST_DEGRADED,
		     "tcp tracepoints missing: vmprobe_host_tcp_* are off");
	else
		item(r, "QEMU's host TCP sockets", err ? ST_DEGRADED : ST_OK, "%s%s",
		     err ? "tcp_probe, tcp_retransmit_skb do not attach: " : "tcp_probe, tcp_retransmit_skb attach",
		     err ? strerror(-err) : "");
	item(r, "bpf_get_netns_cookie in TC", np.have_netns_cookie ? ST_OK : ST_DEGRADED,
	     np.have_netns_cookie ? "fallback lookup keyed by namespace"
				  : "fallback lookup keyed by ifindex only (hot path unaffected)");
	slot = net_slot_alloc(&np);
	t->tcx = np.tcx;
	tc_try(&np, slot, t);
	tc_report(r, t, cfg->tc_hook == TC_HOOK_CLSACT ? "network.tc_hook is clsact"
			: "no TCX in this kernel (Linux 6.6+)");
	net_probe_close(&np);
}

static void check_disk(struct report *r)
{
	struct disk_probe dp;
	int err = disk_probe_open(&dp, 4, true, NULL);

	if (err) {
		item(r, "disk probe", ST_DEGRADED, "load: %s (disk metrics off)", strerror(-err));
		return;
	}
	/* Attached only while VMs run: tried here once, whole, and detached. */
	err = disk_hooks_try(&dp);
	for (unsigned s = 0; s < DISK_SRC_MAX; s++) {
		char name[48];

		snprintf(name, sizeof(name), "disk source aio=%s", disk_src_names[s]);
		if (!dp.source_on[s])
			item(r, name, ST_DEGRADED, "tracepoints missing: these drives are not measured");
		else if (err)
			item(r, name, ST_DEGRADED, "tracepoints do not attach: %s", strerror(-err));
		else
			item(r, name, ST_OK, "tracepoints present and attach");
	}
	item(r, "host block latency", dp.host_block_on ? ST_OK : ST_DEGRADED, "%s",
	     dp.host_block_on ? "block_rq_complete attached" : "block tracepoint or request time stamps missing");
	disk_probe_close(&dp);
}

/* The exec/exit hooks discovery follows; without them it finds VMs by rescans alone. */
static void check_proc_events(struct report *r)
{
	struct proc_events pe;
	int err = proc_events_open(&pe, NULL);

	if (err) {
		item(r, "process exec/exit events", ST_DEGRADED,
		     "sched_process_exec/exit hooks: %s; VMs are found by rescans of /proc only "
		     "(every discovery.rescan_interval_ms)", strerror(-err));
		return;
	}
	item(r, "process exec/exit events", ST_OK,
	     "sched_process_exec/exit attached: VMs are found as they start and exit");
	proc_events_close(&pe);
}

/* One VM's drives or NICs (`what`) from serve's state: each not measured is degraded. */
static int coverage_of(struct report *r, json_object *vm, const char *what, const char *key,
		       const char *noun)
{
	json_object *arr, *e, *f, *m, *why;
	int unmeasured = 0;
	char name[VM_NAME_MAX + VM_ID_MAX + 32];

	if (!json_object_object_get_ex(vm, what, &arr))
		return 0;
	for (size_t k = 0; k < json_object_array_length(arr); k++) {
		e = json_object_array_get_idx(arr, k);
		if (!json_object_object_get_ex(e, "measured", &m) || json_object_get_boolean(m))
			continue;
		json_object_object_get_ex(e, "reason", &why);
		json_object_object_get_ex(e, key, &f);
		snprintf(name, sizeof(name), "VM %s %s %s",
			 json_object_object_get_ex(vm, "name", &m) ? json_object_get_string(m) : "?",
			 noun, json_object_get_string(f));
		item(r, name, ST_DEGRADED, "not measured: %s", json_object_get_string(why));
		unmeasured++;
	}
	return unmeasured;
}

/*
 * What serve measures of the VMs it found: every drive and NIC it does
 * not, with why, and the VMs whose vCPU threads it does not (vcpu.enabled).
 */
static void check_coverage(struct report *r)
{
	json_object *state = serve_running() ? json_object_from_file(STATE_PATH) : NULL, *vms;
	int unmeasured = 0, n;

	if (!state || !json_object_object_get_ex(state, "vms", &vms)) {
		item(r, "coverage", ST_ABSENT, "vmprobe serve is not running: what it measures of "
		     "the VMs is not known");
		json_object_put(state);
		return;
	}
	n = (int)json_object_array_length(vms);
	for (int i = 0; i < n; i++) {
		unmeasured += coverage_of(r, json_object_array_get_idx(vms, i), "drives", "drive",
					  "drive");
		unmeasured += coverage_of(r, json_object_array_get_idx(vms, i), "interfaces",
					  "interface", "interface");
		unmeasured += coverage_of(r, json_object_array_get_idx(vms, i), "vcpus", "vcpu",
					  "vCPU");
	}
	if (!unmeasured)
		item(r, "coverage", ST_OK, "every drive and NIC (and vCPU, with vcpu.enabled) of "
		     "the %d VM%s serve found is measured",
		     n, n == 1 ? "" : "s");
	json_object_put(state);
}

static const struct cmd_opt check_opts[] = {
	{ .name = "config", .key = 'c', .arg = "FILE",
	  .help = "serve's configuration: CAP_NET_ADMIN is judged by the TC hook it uses "
		  "(network.tc_hook)",
	  .complete = CMP_FILE },
	CMD_OPTS_JSON("an object: the verdict and every check"),
	{ NULL },
};

struct check_args {
	bool json;
	const char *cfg_path;
};

static bool check_opt(const struct cmd_opt *o, const char *val, void *ctx)
{
	struct check_args *a = ctx;

	if (o->key != 'c')
		return cmd_json_opt(o, val, &a->json);
	a->cfg_path = val;
	return true;
}

static int do_check(int argc, char **argv)
{
	struct check_args a = {};
	struct report r = {};
	struct tc_tries tc = {};
	struct config cfg;
	const char *tracefs;
	struct btf *vmlinux;
	bool kprobes, mounted_now;
	int ret, first;

	ret = cmd_parse(&cmd_check, argc, argv, check_opt, &a, &first);
	if (ret != CMD_GO)
		return ret;
	if (cmd_load_config(&cfg, a.cfg_path))
		return EXIT_USAGE;
	r.json = a.json;
	log_max_level = LOG_ERROR; /* findings go to the report, not the log */
	r.items = json_object_new_array();

	vmlinux = btf__load_vmlinux_btf();
	item(&r, "kernel BTF", vmlinux ? ST_OK : ST_MISSING, "%s",
	     vmlinux ? "/sys/kernel/btf/vmlinux (CO-RE)" : "no /sys/kernel/btf/vmlinux");
	check_bpf(&r);
	/* serve mounts tracefs if it is not; so does check, and says so. */
	tracefs = tracefs_root(&mounted_now);
	if (tracefs)
		item(&r, "tracefs", ST_OK, "%s%s", tracefs,
		     mounted_now ? " (mounted now, as serve does)" : "");
	else if (errno == EACCES)
		item(&r, "tracefs", ST_DEGRADED,
		     "not readable (root or CAP_DAC_READ_SEARCH): the syscall and io_uring "
		     "tracepoints need it");
	else
		item(&r, "tracefs", ST_DEGRADED,
		     "not mounted and cannot be mounted: the syscall and io_uring tracepoints need it");
	check_net(&r, &cfg, &tc);
	check_caps(&r, &tc);
	check_disk(&r);
	check_proc_events(&r);
	/* The kprobe PMU is there whenever kprobe events are, tracefs or not. */
	kprobes = access("/sys/bus/event_source/devices/kprobe", F_OK) == 0;
	item(&r, "kprobes (optional)", kprobes ? ST_OK : ST_ABSENT, "%s",
	     kprobes ? "available; vmprobe does not use them"
		     : "not in this kernel; vmprobe does not use them");
	check_fentry(&r, vmlinux);
	{
		char v[8] = "";
		bool on = read_file("/proc/sys/kernel/bpf_stats_enabled", v, sizeof(v)) > 0 &&
			  v[0] == '1';

		item(&r, "BPF run-time stats (optional)", on ? ST_OK : ST_ABSENT, "%s",
		     on ? "on: vmprobe_bpf_program_* self-metrics are exported"
			: "kernel.bpf_stats_enabled=0: no vmprobe_bpf_program_* self-metrics");
	}
	btf__free(vmlinux);
	check_coverage(&r);

	ret = r.worst == ST_OK ? EXIT_OK : r.worst == ST_DEGRADED ? EXIT_FAIL : EXIT_CANNOT_RUN;
	if (r.json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "verdict", json_object_new_string(
			r.worst == ST_OK ? "ok" : r.worst == ST_DEGRADED ? "degraded" : "cannot-run"));
		json_object_object_add(o, "checks", r.items);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		printf("\nverdict: %s\n", r.worst == ST_OK ? "vmprobe can run here and measure everything"
				 : r.worst == ST_DEGRADED ? "vmprobe can run here, measuring less (see degraded)"
				 : "vmprobe cannot run here (see missing)");
		json_object_put(r.items);
	}
	return ret;
}

const struct cmd cmd_check = {
	.name = "check",
	.fn = do_check,
	.summary = "can vmprobe run here, and what will it measure?",
	.about = "Tells whether vmprobe can run here and what it can measure (BTF, bpf(), "
		 "privileges, tracefs, the TC hooks, every disk source, the optional kprobes and "
		 "fentry vmprobe does not use), each ok, degraded, missing or absent; while serve "
		 "runs, also every VM drive or NIC it does not measure, and why. CAP_NET_ADMIN is "
		 "judged by the TC hook serve will use (network.tc_hook of -c FILE, and what the "
		 "kernel has), as tried.\n"
		 "Exit: 0 everything works, 1 runs but measures less (degraded), 3 cannot run "
		 "(something required is missing).",
	.opts = check_opts,
};

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Process events for discovery: a process that execs as QEMU, and a watched
 * process (a VM) that exits or execs another program, wake user space
 * through a ring buffer. Every other exec on the host costs a comm compare
 * and a hash lookup, every other process exit a comm compare, every other
 * thread exit two loads.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "maps.bpf.h"
#include "vmprobe/proc_events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* tgid -> 1: the VMs; exec adds QEMU processes, user space those it found by scanning. */
VMPROBE_MAP(watched, BPF_MAP_TYPE_HASH, __u32, __u8, PROC_MAX_WATCHED);
VMPROBE_RINGBUF(proc_events, 64 * 1024);

/* Events lost to a full ring buffer: the next rescan finds what they told. */
__u64 lost = 0;

/* user/core/discovery.c's test, on the comm the kernel gives at exec (the file's basename). */
static __always_inline bool is_qemu(const char *comm)
{
	static const char sys[] = "qemu-system-", kvm[] = "qemu-kvm";
	bool s = true, k = true;

	for (int i = 0; i < sizeof(sys) - 1; i++)
		s = s && comm[i] == sys[i];
	for (int i = 0; i < sizeof(kvm) - 1; i++)
		k = k && comm[i] == kvm[i];
	return s || k;
}

static void emit(__u32 tgid, __u32 kind)
{
	struct vmprobe_proc_event *e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return;
	}
	e->ns = bpf_ktime_get_ns();
	e->tgid = tgid;
	e->kind = kind;
	bpf_ringbuf_submit(e, 0);
}

/*
 * Whether tgid was watched; it is not any more. The lookup takes no lock,
 * a delete takes the bucket's: only what is there is deleted.
 */
static __always_inline bool unwatch(__u32 tgid)
{
	return bpf_map_lookup_elem(&watched, &tgid) && bpf_map_delete_elem(&watched, &tgid) == 0;
}

/* After the new program is loaded: comm and /proc/PID/cmdline are the new ones. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *p)
{
	char comm[TASK_COMM_LEN] = {};
	__u32 tgid = p->tgid;
	__u8 one = 1;

	bpf_get_current_comm(comm, sizeof(comm));
	if (is_qemu(comm)) {
		bpf_map_update_elem(&watched, &tgid, &one, BPF_ANY);
		emit(tgid, PROC_EV_EXEC);
	} else if (unwatch(tgid)) {
		emit(tgid, PROC_EV_EXEC);
	}
	return 0;
}

/*
 * Every thread's exit passes here; only the process's last one matters:
 * do_exit() has dropped signal->live before this tracepoint (the argument
 * group_dead of newer kernels says the same; live is there on every kernel).
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *p)
{
	__u32 tgid;

	/* BTF-typed loads (tp_btf), relocated by CO-RE: no helper call. */
	if (p->signal->live.counter != 0)
		return 0;
	/* Only QEMU processes are watched, and their leader keeps its comm. */
	if (!is_qemu(p->group_leader->comm))
		return 0;
	tgid = p->tgid;
	if (unwatch(tgid))
		emit(tgid, PROC_EV_EXIT);
	return 0;
}

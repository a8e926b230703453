# shellcheck shell=bash
# The vCPU probe's suites (vcpu.sh, vcpu_pins.sh): its programs in the
# kernel, and the kernel's own accounting of a guest's vCPU thread read at
# the moment of a scrape. Needs tests/lib/vmprobe.sh and guest.sh sourced,
# WORK set, and GUEST_PID and TID (vcpu_tid) for the guest's thread.

# Programs of the vCPU probe loaded in the kernel now.
vcpu_progs() { bpftool prog show 2>/dev/null | grep -cE 'name vcpu_(switch|wakeup)'; }

# The guest's vCPU thread, as QEMU names it with debug-threads=on.
vcpu_tid() { grep -l '^CPU 0/TCG$' /proc/"$GUEST_PID"/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5; }

# run_delay (ns) and pcount of the vCPU thread, from its schedstat, and its
# involuntary context switches (nonvoluntary_ctxt_switches: preempted).
schedstat() {
	echo "$(awk '{ print $2, $3 }' "/proc/$GUEST_PID/task/$TID/schedstat")" \
		"$(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "/proc/$GUEST_PID/task/$TID/status")"
}

# A scrape into FILE and the schedstat of the same moment into FILE.sched
# (call it with the guest paused): the thread may still wake now and then
# (a kick of QEMU's main loop), so the scrape is taken again until the
# schedstat before and after it agree.
at_rest() { # FILE
	local i before
	for ((i = 0; i < 50; i++)); do
		before=$(schedstat)
		scrape "$1"
		schedstat >"$1.sched"
		[ "$before" = "$(cat "$1.sched")" ] && return 0
	done
	return 1
}

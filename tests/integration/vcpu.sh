#!/bin/bash
# The vCPU probe (vcpu.enabled): a TCG guest spins, its vCPU thread is
# pinned to one CPU with two CPU hogs, and vmprobe_vcpu_wait_seconds of
# the VM is checked against the kernel's own schedstat of that thread
# (/proc/PID/task/TID/schedstat: run_delay, the time it waited on a run
# queue, and pcount, the times it got a CPU), between two moments the
# guest is paused (its vCPU thread asleep, both at rest):
#  - waits counted = pcount's growth, exactly: every time the vCPU thread
#    got a CPU it had waited for it, and no other thread of QEMU counts;
#  - summed wait = run_delay's growth, exactly: the probe reads the waits
#    from the scheduler's own accounting (the growth of pcount and
#    run_delay) at each switch that takes the thread off its CPU;
#  - preemptions counted, and most waits in buckets above 100 us (the hogs
#    hold the CPU for their slices).
# A QEMU without debug-threads names no vCPU thread: said unmeasured
# (vmprobe_vcpu_info{measured="false",reason="threads_unnamed"} and the
# log), no series of zeros. Off by default: no program on sched_switch then; serve
# removes its programs as it exits.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"
. "$REPO/tests/lib/vcpu.sh"

what="the vCPU probe with a QEMU guest"
tap_require_root "$what"
tap_require_cmds "$what" qemu-system-x86_64 taskset bpftool promtool

WORK=$(mktemp -d /tmp/vmprobe-vcpu.XXXXXX)
PORT=19611 TAP=vmpt-vc0 TAP2=vmpt-vc1 HOGS=()
cleanup() {
	[ ${#HOGS[@]} -gt 0 ] && kill "${HOGS[@]}" 2>/dev/null
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	ip link del "$TAP" 2>/dev/null
	ip link del "$TAP2" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null
ip link del "$TAP2" 2>/dev/null

guest_build_or_fail
guest_tap_add "$TAP" "$TAP2"

check_eq "no vCPU program is loaded before" 0 "$(vcpu_progs)"
vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
scrape "$WORK/off.txt"
check_eq "off by default: no vmprobe_vcpu series, no program on sched_switch" "0 0" \
	"$(grep -c '^vmprobe_vcpu' "$WORK/off.txt") $(vcpu_progs)"
vmprobe_stop

vmprobe_start $PORT "vcpu:
  enabled: true
exposition:
  openmetrics_created: true" || { tap_fail "vmprobe serve starts with vcpu.enabled" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
check_eq "vcpu.enabled loads its program (on sched_switch, none on sched_wakeup)" 1 "$(vcpu_progs)"

guest_make_initrd "$WORK/initrd" - <<'SH'
echo SPINNING
while :; do :; done
SH
NAME=vcpu-guest
STARTED=$(date +%s.%N)
guest_start "$NAME" "$TAP" "$WORK/initrd" || { tap_fail "the guest starts"; tap_done; exit; }
wait_for 60 grep -q SPINNING "$GUEST_LOG" || tap_fail "the guest's workload runs" "$(tail -5 "$GUEST_LOG")"

TID=$(vcpu_tid)
has_threads() { scrape "$WORK/t.txt"; [ "$(metric "$WORK/t.txt" vmprobe_vcpu_threads name="$NAME")" = 1 ]; }
check "vmprobe_vcpu_threads of the VM is 1 (its one vCPU thread, $TID)" wait_for 30 has_threads
# Its vCPU series began when serve found its vCPU thread: after the guest
# started (after serve), before it was seen measured.
scrape_om "$WORK/om.txt"
born=$(metric "$WORK/om.txt" vmprobe_vcpu_preemptions_created name="$NAME")
check_range "the VM's vCPU _created is between the guest's start and its threads' first scrape" \
	"$STARTED" "$(stat -c %.9Y "$WORK/t.txt")" "$born"
check_eq "... the same for its wait histogram" "$born" \
	"$(metric "$WORK/om.txt" vmprobe_vcpu_wait_seconds_created name="$NAME")"
scrape_pb_created "$WORK/pb.txt"
check_near "... and protobuf's created_timestamp" "$born" \
	"$(metric "$WORK/pb.txt" vmprobe_vcpu_wait_seconds name="$NAME")" 0.001
check_eq "vmprobe_vcpu_info says it is measured" 1 \
	"$(metric "$WORK/t.txt" vmprobe_vcpu_info name="$NAME" measured=true reason=)"

guest_paused at_rest "$WORK/s0.txt"
taskset -p -c 0 "$TID" >/dev/null
for i in 1 2; do taskset -c 0 sh -c 'while :; do :; done' & HOGS+=($!); done
sleep 4
guest_paused at_rest "$WORK/s1.txt"
kill "${HOGS[@]}" 2>/dev/null; wait "${HOGS[@]}" 2>/dev/null; HOGS=()

read -r d0 p0 _ <"$WORK/s0.txt.sched"; read -r d1 p1 _ <"$WORK/s1.txt.sched"
lbl=(name="$NAME")
count=$(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_vcpu_wait_seconds_count "${lbl[@]}")
sum0=$(metric "$WORK/s0.txt" vmprobe_vcpu_wait_seconds_sum "${lbl[@]}")
sum1=$(metric "$WORK/s1.txt" vmprobe_vcpu_wait_seconds_sum "${lbl[@]}")
check_eq "waits counted = the thread's schedstat pcount growth ($((p1 - p0)))" "$((p1 - p0))" "$count"
sum_ns=$(python3 -c "print(round((float('$sum1') - float('$sum0')) * 1e9))" 2>/dev/null)
delay_ns=$((d1 - d0))
check_eq "summed wait = the thread's schedstat run_delay growth (ns)" "$delay_ns" "$sum_ns"
check_range "the hogs made the vCPU wait (over 0.5 s of 4 s)" 500000000 4000000000 "$delay_ns"
pre=$(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_vcpu_preemptions_total "${lbl[@]}")
check_range "preemptions counted ($pre of $count waits)" 1 "${count:-0}" "$pre"
long=$(python3 - "$WORK/s0.txt" "$WORK/s1.txt" "$NAME" <<'PY'
import re, sys
def b(path):
    for l in open(path):
        m = re.match(r'vmprobe_vcpu_wait_seconds_bucket\{name="%s",le="([^"]+)"\} (\d+)' % re.escape(sys.argv[3]), l)
        if m and m.group(1) == "0.0001220703125":
            return int(m.group(2))
    return None
a, z = b(sys.argv[1]), b(sys.argv[2])
print(z - a if a is not None and z is not None else "")
PY
)
check_range "most waits were long (over 122 us: $((count - ${long:-0})) of $count)" \
	$(( (count + 1) / 2 )) "$count" "$((count - ${long:-0}))"
check_eq "promtool finds nothing to say of the vCPU families" "" \
	"$(promtool check metrics <"$WORK/s1.txt" 2>&1 | grep vmprobe_vcpu)"

# A QEMU whose threads have no names: unmeasured, said, no zeros.
NAME2=vcpu-unnamed
PID1=$GUEST_PID
guest_start "$NAME2" "$TAP2" "$WORK/initrd" -name "guest=$NAME2,debug-threads=off" ||
	{ tap_fail "the second guest starts"; tap_done; exit; }
unmeasured() {
	scrape "$WORK/u.txt"
	[ "$(metric "$WORK/u.txt" vmprobe_vcpu_info name="$NAME2" measured=false reason=threads_unnamed)" = 1 ]
}
listed() {
	scrape "$WORK/young.txt"
	grep -q "^vmprobe_vcpu_info{name=\"$NAME2\"" "$WORK/young.txt"
}
# Its first vmprobe_vcpu_info, scraped as soon as the VM is listed: within
# the 10 s its vCPU threads are looked for, however slow discovery was.
check "the VM without thread names gets a vmprobe_vcpu_info" wait_for 60 listed
check_eq "... first pending (its vCPU threads are not found yet)" 1 \
	"$(metric "$WORK/young.txt" vmprobe_vcpu_info name="$NAME2" measured=false reason=pending)"
check "after 10 s, vmprobe_vcpu_info{measured=\"false\",reason=\"threads_unnamed\"}" \
	wait_for 40 unmeasured
check_eq "... with no vCPU series of zeros" "" \
	"$(metric "$WORK/u.txt" vmprobe_vcpu_wait_seconds_count name="$NAME2")"
check_eq "... and the log says why, once" 1 \
	"$(grep -c "VM $NAME2: its vCPU waits are not measured: QEMU names no thread" "$WORK/vmprobe.log")"
"$VMPROBE" check >"$WORK/check.txt" 2>&1
check "vmprobe check says the VM's vCPUs are not measured, and why" \
	grep -qE "^degraded +VM $NAME2 vCPU threads +not measured: QEMU names no thread" "$WORK/check.txt"
check_eq "... and nothing of the measured VM's" "" "$(grep "VM $NAME vCPU" "$WORK/check.txt")"
guest_stop "$GUEST_PID" >/dev/null 2>&1
guest_stop "$PID1" >/dev/null 2>&1
gone() { scrape "$WORK/g.txt"; ! grep -q "^vmprobe_vcpu.*name=\"vcpu-" "$WORK/g.txt"; }
check "the VMs' vCPU series go with them" wait_for 30 gone
vmprobe_stop; rc=$?; check_eq "serve exits 0" 0 "$rc"
# The kernel frees a program after its last reference, a moment later (RCU).
no_vcpu_progs() { [ "$(vcpu_progs)" = 0 ]; }
check "serve removed its vCPU programs" wait_for 10 no_vcpu_progs
tap_done

#!/bin/bash
# The vCPU probe (vcpu.enabled) across serve restarts, with a real QEMU
# guest (TCG) whose vCPU thread spins on one host CPU beside two CPU hogs,
# so that it waits for that CPU all along, while no serve runs too:
#  - persist: true pins the probe's maps (its counters, its slots' birth,
#    the task storage that marks the vCPU threads), its tracepoint link
#    and a stamp (PIN_DIR/vcpu/);
#  - after SIGTERM and after SIGKILL the programs go on counting, and the
#    next serve adopts them (vmprobe_pins_info{probe="vcpu",state="adopted"},
#    one link, the VM in its slot, its _created kept); between two
#    moments the guest is paused, around each restart and around both,
#    the preemptions counted equal the thread's nonvoluntary context
#    switches exactly (the gaps' included), the waits its schedstat pcount
#    growth and the summed wait its run_delay's growth, exactly (vcpu.sh's
#    checks); Prometheus,
#    scraping all along, sees no reset;
#  - a VM that exited while no serve ran has its slot freed at the first
#    scan: a VM started meanwhile is counted in it, from zero, with a new
#    _created;
#  - serve --cleanup and vmprobe uninstall remove the programs, links and
#    pins (the threads' marks go with their map); without persist no link
#    is pinned and nothing is left at exit, and a killed serve's pins are
#    removed by the next, said; so are those of another map layout.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"
. "$REPO/tests/lib/vcpu.sh"

what="the vCPU probe across serve restarts"
tap_require_root "$what" tun
tap_require_cmds "$what" qemu-system-x86_64 taskset bpftool prometheus

WORK=$(mktemp -d /tmp/vmprobe-vcpupins.XXXXXX)
PORT=19625 PROM_PORT=19626 TAP=vmpt-vp0 PINS=/sys/fs/bpf/vmprobe HOGS=() PROM_PID=
. "$REPO/tests/lib/pinvm.sh"
cleanup() {
	[ ${#HOGS[@]} -gt 0 ] && kill "${HOGS[@]}" 2>/dev/null
	[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
	guest_stop >/dev/null 2>&1
	pinvm_cleanup
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null
"$VMPROBE" uninstall >/dev/null 2>&1

guest_build_or_fail
guest_tap_add "$TAP"
guest_make_initrd "$WORK/initrd" - <<'SH'
echo SPINNING
while :; do :; done
SH

# Every serve (pinvm.sh's): the vCPU probe on, OpenMetrics with _created.
PINVM_YAML="vcpu:
  enabled: true
$PINVM_CREATED"
# A guest that spins; TID its vCPU thread.
spinning_guest() { # NAME
	guest_start "$1" "$TAP" "$WORK/initrd" && wait_for 60 grep -q SPINNING "$GUEST_LOG" &&
		TID=$(vcpu_tid) && [ -n "$TID" ]
}
measured() { # NAME
	scrape "$WORK/t.txt" && [ "$(metric "$WORK/t.txt" vmprobe_vcpu_threads name="$1")" = 1 ]
}
vcpu_created() { # NAME
	scrape_om "$WORK/om.txt" && metric "$WORK/om.txt" vmprobe_vcpu_preemptions_created name="$1"
}
# The VM's vCPU slot, as serve's state file says.
vcpu_slot() { # NAME
	python3 - "$1" <<'PY'
import json, sys
for vm in json.load(open("/run/vmprobe/state.json"))["vms"]:
    if vm["name"] == sys.argv[1]:
        print(vm["vcpus"][0]["slot"])
PY
}
pins_info() { scrape "$WORK/m.txt" && metric "$WORK/m.txt" vmprobe_pins_info probe=vcpu "$@"; }
vcpu_links() { vmprobe_links | grep '^vcpu_' | sort | xargs; }
no_vcpu_progs() { [ "$(vcpu_progs)" = 0 ]; }

# 1. A persistent serve pins the vCPU probe's maps, links and stamp.
serve "persist: true" || { tap_fail "serve (persist: true, vcpu.enabled) starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
tap_ok "serve (persist: true, vcpu.enabled) starts"
check_eq "vmprobe_pins_info{probe=\"vcpu\"} says new: nothing was left" 1 "$(pins_info state=new reason=)"
NAME=vcpu-pin
spinning_guest $NAME || { tap_fail "a spinning guest starts" "$(tail -5 "$GUEST_LOG")"; tap_done; exit; }
A_PID=$GUEST_PID
check "its vCPU thread ($TID) is measured" wait_for 30 measured $NAME
for f in stamp vcpu_stats vcpu_born vcpu_threads links/vcpu_switch; do
	check "persist pins the vCPU probe's $f" test -e "$PINS/vcpu/$f"
done
BORN=$(vcpu_created $NAME) SLOT=$(vcpu_slot $NAME)
check "the VM's vCPU slot is in the state file" test -n "$SLOT"

prometheus_start_tap $PROM_PORT $PORT
taskset -p -c 0 "$TID" >/dev/null
for i in 1 2; do taskset -c 0 sh -c 'while :; do :; done' & HOGS+=($!); done
sleep 2

# From scrape FILE0 to FILE1 (guest_paused at_rest): the preemptions
# counted = the thread's nonvoluntary context switches, and the waits
# counted = its schedstat pcount growth, both exactly: a gap not counted
# would miss hundreds.
waits_exact() { # WHAT FILE0 FILE1
	local d0 p0 n0 d1 p1 n1
	read -r d0 p0 n0 <"$2.sched"; read -r d1 p1 n1 <"$3.sched"
	check_eq "$1: preemptions counted = the thread's nonvoluntary context switches ($((n1 - n0)))" \
		"$((n1 - n0))" "$(metric_delta "$2" "$3" vmprobe_vcpu_preemptions_total name=$NAME)"
	check_eq "$1: waits counted = the thread's schedstat pcount growth ($((p1 - p0)))" \
		"$((p1 - p0))" "$(metric_delta "$2" "$3" vmprobe_vcpu_wait_seconds_count name=$NAME)"
}

# 2. Restarts by SIGTERM and SIGKILL, the vCPU waiting in each gap.
for sig in TERM KILL; do
	guest_paused at_rest "$WORK/before-$sig.txt" || tap_fail "SIG$sig: a scrape with the guest at rest"
	[ $sig = TERM ] && cp "$WORK/before-$sig.txt" "$WORK/s0.txt" && cp "$WORK/before-$sig.txt.sched" "$WORK/s0.txt.sched"
	stop $sig
	read -r _ g0 _ < <(schedstat)
	check_eq "SIG$sig: with no serve, the vCPU program stays attached" "vcpu_switch" "$(vcpu_links)"
	sleep 2
	read -r _ g1 _ < <(schedstat)
	check "SIG$sig: the vCPU thread waited for its CPU while no serve ran (runs $g0 -> $g1)" \
		test "$g1" -gt "$g0"
	if serve "persist: true"; then tap_ok "SIG$sig: the next serve starts"; else tap_fail "SIG$sig: the next serve starts" "$(cat "$WORK/vmprobe.log")"; fi
	check "SIG$sig: it adopts the vCPU probe's programs and counters" \
		grep -q "vcpu probe: adopting the programs and counters" "$WORK/vmprobe.log"
	check_eq "SIG$sig: vmprobe_pins_info{probe=\"vcpu\"} says adopted" 1 "$(pins_info state=adopted reason=)"
	check "SIG$sig: the VM's vCPU threads are adopted, not marked anew" \
		grep -q "counting the vCPU threads of VM $NAME: adopted, its counters go on" "$WORK/vmprobe.log"
	check "SIG$sig: ... and its slot released by none" grep -q "vcpu probe: adopted 1 VM slots .*released 0" "$WORK/vmprobe.log"
	check_eq "SIG$sig: the vCPU program attached once (its link adopted)" "vcpu_switch" "$(vcpu_links)"
	check_eq "SIG$sig: the VM keeps its slot" "$SLOT" "$(vcpu_slot $NAME)"
	check_eq "SIG$sig: and its _created" "$BORN" "$(vcpu_created $NAME)"
	sleep 1
	guest_paused at_rest "$WORK/after-$sig.txt" || tap_fail "SIG$sig: a scrape with the guest at rest, after"
	waits_exact "SIG$sig, the gap included" "$WORK/before-$sig.txt" "$WORK/after-$sig.txt"
	for m in vmprobe_vcpu_wait_seconds_count vmprobe_vcpu_preemptions_total; do
		b=$(metric "$WORK/before-$sig.txt" $m name=$NAME) a=$(metric "$WORK/after-$sig.txt" $m name=$NAME)
		check "SIG$sig: $m went on from where it was ($b -> $a)" test "${a:-0}" -gt "${b:-0}"
	done
done
sleep 1
guest_paused at_rest "$WORK/s1.txt" || tap_fail "a scrape with the guest at rest (after both restarts)"
kill "${HOGS[@]}" 2>/dev/null; wait "${HOGS[@]}" 2>/dev/null; HOGS=()

read -r d0 p0 n0 <"$WORK/s0.txt.sched"; read -r d1 p1 n1 <"$WORK/s1.txt.sched"
count=$(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_vcpu_wait_seconds_count name=$NAME)
sum_ns=$(python3 -c "print(round((float('$(metric "$WORK/s1.txt" vmprobe_vcpu_wait_seconds_sum name=$NAME)') - \
float('$(metric "$WORK/s0.txt" vmprobe_vcpu_wait_seconds_sum name=$NAME)')) * 1e9))" 2>/dev/null)
check_eq "both gaps included: waits counted = the thread's schedstat pcount growth ($((p1 - p0)))" \
	"$((p1 - p0))" "$count"
check_eq "both gaps included: summed wait = the thread's run_delay growth (ns)" "$((d1 - d0))" "$sum_ns"
check_eq "both gaps included: preemptions counted = the thread's nonvoluntary context switches ($((n1 - n0)))" \
	"$((n1 - n0))" "$(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_vcpu_preemptions_total name=$NAME)"
sleep 2
for q in vmprobe_vcpu_wait_seconds_count vmprobe_vcpu_wait_seconds_sum vmprobe_vcpu_preemptions_total; do
	check_range "Prometheus scraped $q before and after the restarts" 8 100000 \
		"$(promql "max(count_over_time(${q}{name=\"$NAME\"}[10m]))")"
	check_num "Prometheus saw no reset of $q across both restarts" 0 \
		"$(promql "max(resets(${q}{name=\"$NAME\"}[10m]))")"
done

# 3. A VM gone while no serve ran: its slot is freed at the first scan,
# and a VM started meanwhile counts in it, from zero.
stop TERM
guest_stop "$A_PID" >/dev/null 2>&1
NAME2=vcpu-pin-new
spinning_guest $NAME2 || { tap_fail "a second spinning guest starts" "$(tail -5 "$GUEST_LOG")"; tap_done; exit; }
serve "persist: true"
check "the gone VM's slot is released at the first scan" \
	grep -q "vcpu probe: adopted 0 VM slots .*released 1" "$WORK/vmprobe.log"
check "the VM started while no serve ran is measured" wait_for 30 measured $NAME2
check_eq "... in the gone VM's slot" "$SLOT" "$(vcpu_slot $NAME2)"
check "... with a new _created" test "$(vcpu_created $NAME2)" != "$BORN"
read -r _ pn _ < <(schedstat)
check_range "... counting from zero (no more waits than its thread's whole pcount, $pn)" 0 "$pn" \
	"$(metric "$WORK/t.txt" vmprobe_vcpu_wait_seconds_count name=$NAME2)"
check_eq "the gone VM's series are not served" "" "$(grep "name=\"$NAME\"" "$WORK/t.txt")"

# 4. serve --cleanup adopts, then removes everything as it exits.
stop TERM
serve "persist: true" --cleanup
check_eq "serve --cleanup adopts the vCPU pins" 1 "$(pins_info state=adopted reason=)"
stop TERM
check "serve --cleanup removes /sys/fs/bpf/vmprobe as it exits" test ! -e $PINS
check "... and the vCPU programs" wait_for 10 no_vcpu_progs

# 5. Without persist: no link pinned, nothing left at exit; killed, its
# pins are removed by the next serve, which says why.
serve ""
check_eq "without persist: vmprobe_pins_info{probe=\"vcpu\"} says new" 1 "$(pins_info state=new reason=)"
check "without persist: the vCPU counters are pinned for top and hist" test -e $PINS/vcpu/vcpu_stats
check "without persist: no vCPU link is pinned" test ! -e $PINS/vcpu/links
stop TERM
check "without persist: serve leaves nothing pinned" test ! -e $PINS
check "... and no vCPU program" wait_for 10 no_vcpu_progs
serve ""
stop KILL
serve "persist: true"
check_eq "after a killed serve without persist: vmprobe_pins_info{probe=\"vcpu\"} says removed, not_persisted" 1 \
	"$(pins_info state=removed reason=not_persisted)"
check "... and the log says so" grep -q "vcpu probe: removing the pins .*did not persist them" "$WORK/vmprobe.log"

# 6. Another map layout (other sizes): removed, said once, counted from zero.
stop TERM
serve "persist: true
max_vms: 17"
check_eq "another map layout: vmprobe_pins_info{probe=\"vcpu\"} says removed, layout" 1 \
	"$(pins_info state=removed reason=layout)"
check_eq "... and the log says it once" 1 \
	"$(grep -c "vcpu probe: removing the pins .*map layout is not this version's" "$WORK/vmprobe.log")"
check_eq "... with one link" "vcpu_switch" "$(vcpu_links)"

# 7. vmprobe uninstall after a killed persistent serve.
stop KILL
check_eq "SIGKILL leaves the vCPU program attached" "vcpu_switch" "$(vcpu_links)"
"$VMPROBE" uninstall >"$WORK/uninstall.log" 2>&1
check_num "vmprobe uninstall exits 0" 0 "$?"
check "it removes /sys/fs/bpf/vmprobe" test ! -e $PINS
check_eq "and the vCPU links" "" "$(vcpu_links)"
check "and the vCPU programs" wait_for 10 no_vcpu_progs
no_marks() { ! bpftool map show 2>/dev/null | grep -q 'name vcpu_threads'; }
check "and the threads' marks (their task storage map is freed)" wait_for 10 no_marks
tap_done

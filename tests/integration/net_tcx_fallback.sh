#!/bin/bash
# A tap whose TCX attach fails is counted from clsact filters instead. The
# failure is real: another tool holds every place on the tap's TCX ingress
# (`tcx fill`: the kernel refuses the next link with ERANGE). vmprobe
# falls back on that tap alone (the others keep their TCX links), says so
# once in the log, counts the fallbacks in vmprobe_faults_total and the
# taps of each hook in vmprobe_network_tc_hook_interfaces, and counts the
# tap's frames exactly; on exit it removes its filters and leaves the
# other tool's programs alone.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "TCX to clsact fallback" tun
if ! have_tcx; then
	tap_skip "TCX to clsact fallback" "this kernel has no TCX (Linux 6.6+): taps attach from clsact anyway"
	tap_done; exit
fi

WORK=$(mktemp -d /tmp/vmprobe-tcxfb.XXXXXX)
PORT=19586
FULL=vmpt-x0 FULL2=vmpt-x2 FREE=vmpt-x1
PIDS=()
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for t in $FULL $FULL2 $FREE; do ip link del "$t" 2>/dev/null; done
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
for t in $FULL $FULL2 $FREE; do
	ip link del "$t" 2>/dev/null
	ip tuntap add dev "$t" mode tap && sysctl -qw "net.ipv6.conf.$t.disable_ipv6=1" && ip link set "$t" up
done

# Another tool takes every place on the TCX ingress of two taps.
fill() { # TAP
	"$TCX" fill "$1" >"$WORK/fill-$1.log" 2>&1 &
	PIDS+=($!)
	wait_for 10 grep -q '^full' "$WORK/fill-$1.log"
}
fill $FULL && fill $FULL2
check "the TCX hook of $FULL is full: the kernel refuses another link (ERANGE)" \
	grep -qE '^full [0-9]+ ERANGE$' "$WORK/fill-$FULL.log"
NFILL=$(awk '{ print $2 }' "$WORK/fill-$FULL.log")

QEMU=$(tapguest_dir)
export TAPGUEST_BURST="10:60,5:1514"
start_guest() { # NAME TAP
	"$QEMU" -name "guest=$1" -netdev "tap,id=n0,ifname=$2,script=no,downscript=no" >"$WORK/$1.log" 2>&1 &
	PIDS+=($!)
	wait_for 5 grep -q ready "$WORK/$1.log"
}
start_guest full-vm $FULL
start_guest free-vm $FREE
GFULL=${PIDS[-2]}

vmprobe_start $PORT "network: {tc_hook: auto}" || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
tap_ok "vmprobe serve starts"
counted() { # NAME
	scrape && [ -n "$(metric "$WORK/metrics.txt" vmprobe_network_packet_size_bytes_count name="$1" direction=rx)" ]
}
check "the tap with a full TCX hook is counted" wait_for 10 counted full-vm
check "the other tap is counted" wait_for 10 counted free-vm
check_eq "vmprobe's programs on $FULL are clsact filters, none a TCX link" "vmprobe_tap_ing vmprobe_tap_egr" \
	"$(vmprobe_progs "$FULL" | sort -r | tr '\n' ' ' | sed 's/ $//')"
check_eq "the other tap keeps its TCX links" "vmprobe_tap_ing vmprobe_tap_egr" \
	"$("$TCX" list "$FREE" | awk '{ print $2 }' | tr '\n' ' ' | sed 's/ $//')"
check_num "the other tool's $NFILL programs are all still on $FULL" "$NFILL" \
	"$("$TCX" list "$FULL" | grep -c '^ingress tcx_filler$')"
scrape
check_num "vmprobe_network_tc_hook_interfaces: one tap from clsact" 1 \
	"$(metric "$WORK/metrics.txt" vmprobe_network_tc_hook_interfaces hook=clsact)"
check_num "vmprobe_network_tc_hook_interfaces: one tap from TCX" 1 \
	"$(metric "$WORK/metrics.txt" vmprobe_network_tc_hook_interfaces hook=tcx)"
check_num "vmprobe_faults_total{kind=tcx_attach} counts the fallback" 1 \
	"$(metric "$WORK/metrics.txt" vmprobe_faults_total kind=tcx_attach)"
check_num "no attach error: the tap is counted" 0 "$(metric "$WORK/metrics.txt" vmprobe_attach_errors_total)"
check_num "the log says it, once" 1 \
	"$(grep -c "warn: attaching TCX links to tap $FULL failed: Numerical result out of range (the hook holds as many programs as the kernel allows); it is counted from clsact filters instead" "$WORK/vmprobe.log")"
check "and the tap's line says which hook" \
	grep -q "counting tap $FULL .* of VM full-vm, pid $GFULL, from clsact filters (TCX: Numerical result out of range)" "$WORK/vmprobe.log"

# Exact counts through the fallback: 15 frames from the guest, 11 to it.
scrape_with_tap $FULL "$WORK/s0.txt"; declare -A T0; for k in "${!TAPC[@]}"; do T0[$k]=${TAPC[$k]}; done
bursts=$(grep -c '^sent' "$WORK/full-vm.log")
kill -USR1 "$GFULL"
"$TAPGUEST" inject $FULL 7 100 >/dev/null && "$TAPGUEST" inject $FULL 4 1400 >/dev/null
burst_done() { [ "$(grep -c '^sent' "$WORK/full-vm.log")" -gt "$bursts" ]; }
check "the stand-in guest sent its burst" wait_for 5 burst_done
scrape_with_tap $FULL "$WORK/s1.txt"
d() { metric_delta "$WORK/s0.txt" "$WORK/s1.txt" "$@"; }
check_num "frames from the guest = tap rx_packets" "$((TAPC[rx_packets] - T0[rx_packets]))" \
	"$(d vmprobe_network_packet_size_bytes_count name=full-vm direction=tx)"
check_num "bytes from the guest = tap rx_bytes" "$((TAPC[rx_bytes] - T0[rx_bytes]))" \
	"$(d vmprobe_network_packet_size_bytes_sum name=full-vm direction=tx)"
check_num "frames to the guest = tap tx_packets + tx_dropped" \
	"$((TAPC[tx_packets] + TAPC[tx_dropped] - T0[tx_packets] - T0[tx_dropped]))" \
	"$(d vmprobe_network_packet_size_bytes_count name=full-vm direction=rx)"
check_eq "and they are the workload: 15 from, 11 to the guest" "15 11" \
	"$(d vmprobe_network_packet_size_bytes_count name=full-vm direction=tx) $(d vmprobe_network_packet_size_bytes_count name=full-vm direction=rx)"

# A second tap that meets the same failure falls back too, without another warning.
start_guest full2-vm $FULL2
check "a second tap with a full TCX hook is counted" wait_for 10 counted full2-vm
scrape
check_num "vmprobe_faults_total{kind=tcx_attach} counts both fallbacks" 2 \
	"$(metric "$WORK/metrics.txt" vmprobe_faults_total kind=tcx_attach)"
# Seen once in 14 clean runs (3, 2026-12-08), not since: what serve did with the taps, if again.
[ "$(metric "$WORK/metrics.txt" vmprobe_faults_total kind=tcx_attach)" = 2 ] ||
	grep -E "found VM|counting tap|tap .* (went|gone)|NIC .*unplugged|exited|dropped|detach" \
		"$WORK/vmprobe.log" | sed 's/^/# /'
check_num "two taps from clsact now" 2 "$(metric "$WORK/metrics.txt" vmprobe_network_tc_hook_interfaces hook=clsact)"
check_num "the warning is not repeated for the same failure" 1 \
	"$(grep -c "warn: attaching TCX links to tap" "$WORK/vmprobe.log")"
check "its own line says it" grep -q "counting tap $FULL2 .* from clsact filters (TCX: Numerical result out of range)" \
	"$WORK/vmprobe.log"
state_hooks() { # serve's state for top and hist: each tap's hook
	python3 -c 'import json, sys
taps = {t["tap"]: t.get("hook") for v in json.load(open("/run/vmprobe/state.json"))["vms"] for t in v.get("taps", [])}
print(taps.get(sys.argv[1]), taps.get(sys.argv[2]))' $FULL $FREE
}
hooks_in_state() { [ "$(state_hooks)" = "clsact tcx" ]; }
check "serve's state names each tap's hook" wait_for 5 hooks_in_state

vmprobe_stop; rc=$?
check_eq "SIGTERM exits 0" 0 "$rc"
check_eq "no vmprobe program remains on $FULL" "" "$(vmprobe_progs "$FULL")"
check_eq "no clsact qdisc of vmprobe is left on $FULL" "" "$(tc qdisc show dev "$FULL" | grep clsact)"
check_num "the other tool's programs are still there" "$NFILL" "$("$TCX" list "$FULL" | grep -c tcx_filler)"
tap_done

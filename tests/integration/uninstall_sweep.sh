#!/bin/bash
# `vmprobe uninstall` removes the clsact filters of vmprobe that no pin
# leads to any more, in every network namespace, and nothing else. A
# clsact filter holds its program with no fd or pin: a persistent serve
# killed on clsact leaves its filters and their pins, and a serve without
# the network probe then removes those pins (the probe is not wanted), so
# that the filters go on running on every frame with nothing that knows
# of them (on a tap that outlives its VM, as a pod's does). Two stand-in
# VMs, one tap in the host's namespace (which had a
# clsact qdisc and a BPF filter of another tool before vmprobe) and one in
# a namespace of its own, as a pod's.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_cmds "uninstall sweeps filters no pin leads to" tc ip
tap_require_root "uninstall sweeps filters no pin leads to" tun
[ -x "$TAPGUEST" ] || { tap_skip "uninstall sweeps filters no pin leads to" "$TAPGUEST is not built"; tap_done; exit; }

WORK=$(mktemp -d /tmp/vmprobe-sweep.XXXXXX)
PORT=19611 HTAP=vmsw-h0 NTAP=vmsw-n0 NS=vmprobe-sweep PINS=/sys/fs/bpf/vmprobe
VMS=()
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	[ -n "${VMPROBE_PID:-}" ] && kill -KILL "$VMPROBE_PID" 2>/dev/null
	for v in "${VMS[@]}"; do kill "$v" 2>/dev/null && wait "$v" 2>/dev/null; done
	"$VMPROBE" uninstall >/dev/null 2>&1
	ip link del "$HTAP" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$HTAP" 2>/dev/null
ip netns del "$NS" 2>/dev/null
"$VMPROBE" uninstall >/dev/null 2>&1

mktap() { # [NETNS] TAP
	local ns=()
	[ $# -eq 2 ] && ns=(ip netns exec "$1") && shift
	"${ns[@]}" ip tuntap add dev "$1" mode tap && "${ns[@]}" ip link set "$1" up
}
ip netns add "$NS"
mktap "$HTAP" && mktap "$NS" "$NTAP" || { tap_fail "two taps, one in $NS"; tap_done; exit; }
# Another tool's clsact and BPF filter on the host's tap, there before vmprobe.
tc qdisc add dev "$HTAP" clsact &&
	tc filter add dev "$HTAP" ingress pref 10 bpf da obj "$REPO/build/tests/tools/foreign.bpf.o" sec tc ||
	{ tap_fail "a foreign clsact filter on $HTAP"; tap_done; exit; }
foreign() { tc filter show dev "$HTAP" ingress | grep -o ' name foreign .*' | awk '{ print $2 }'; }
check_eq "the other tool's filter is there" foreign "$(foreign)"

start_guest() { # NAME TAP [NETNS]
	local pre=()
	[ $# -eq 3 ] && pre=(ip netns exec "$3")
	"${pre[@]}" "$(tapguest_dir)" -name "guest=$1" -netdev "tap,id=n0,ifname=$2,script=no,downscript=no" \
		>"$WORK/$1.log" 2>&1 &
	VMS+=($!)
}
start_guest sw-host "$HTAP"
start_guest sw-ns "$NTAP" "$NS"
wait_for 5 grep -q ready "$WORK/sw-host.log" && wait_for 5 grep -q ready "$WORK/sw-ns.log" ||
	{ tap_fail "two stand-in VMs start"; tap_done; exit; }

progs() { vmprobe_progs "$@" | sort | xargs; } # [NETNS] TAP
both="vmprobe_tap_egr vmprobe_tap_ing" # the names as the kernel keeps them (15 bytes)

# 1. A persistent serve on clsact counts both taps, then is killed: its filters stay, pinned.
vmprobe_start $PORT "persist: true
network: {tc_hook: clsact}" || { tap_fail "a persistent serve on clsact starts" "$(tail -5 "$WORK/vmprobe.log")"; tap_done; exit; }
wait_for 10 test "$(progs "$HTAP")" = "$both"
check_eq "the serve's filters on the host's tap" "$both" "$(progs "$HTAP")"
wait_for 10 test "$(progs "$NS" "$NTAP")" = "$both"
check_eq "... and on the tap in $NS" "$both" "$(progs "$NS" "$NTAP")"
kill -KILL "$VMPROBE_PID"; wait "$VMPROBE_PID" 2>/dev/null; VMPROBE_PID=
check_eq "killed, it left its filters (host)" "$both" "$(progs "$HTAP")"
check "... and its network pins" test -e "$PINS/net"

# 2. The VMs stop; their taps stay (persistent, as a pod's is until the pod
# goes), and nothing will claim them. A serve without the network probe
# and without persist removes every pin at its exit, the network ones too,
# but not the filters: it never loaded the probe that knows of them.
for v in "${VMS[@]}"; do kill "$v" 2>/dev/null && wait "$v" 2>/dev/null; done
VMS=()
vmprobe_start $PORT "network: {enabled: false}" ||
	{ tap_fail "a serve without the network probe starts" "$(tail -5 "$WORK/vmprobe.log")"; tap_done; exit; }
vmprobe_stop
check "a serve without the network probe and persist removed every pin" test ! -e "$PINS"
check_eq "the filters are still attached, no pin leading to them (host)" "$both" "$(progs "$HTAP")"
check_eq "... and in $NS" "$both" "$(progs "$NS" "$NTAP")"

# 3. uninstall finds them in both namespaces, by name, and removes them alone.
"$VMPROBE" uninstall >"$WORK/uninstall.out" 2>&1
check_eq "vmprobe uninstall succeeds" 0 $?
check "it says it removed the four filters no pin led to" \
	grep -q "the network probe: removed 4 programs left attached that no pin led to" "$WORK/uninstall.out"
[ -n "${VERBOSE:-}" ] && sed 's/^/# /' "$WORK/uninstall.out"
check_eq "no vmprobe filter on the host's tap" "" "$(progs "$HTAP")"
check_eq "none on the tap in $NS" "" "$(progs "$NS" "$NTAP")"
check_eq "the other tool's filter stays" foreign "$(foreign)"
check "... and its clsact qdisc" bash -c "tc qdisc show dev $HTAP | grep -q clsact"
check_eq "the taps are still there" "2" \
	"$( (ip link show "$HTAP"; ip netns exec "$NS" ip link show "$NTAP") 2>/dev/null | grep -c 'state')"

# 4. Nothing left: said so.
"$VMPROBE" uninstall >"$WORK/uninstall2.out" 2>&1
check_eq "uninstall again succeeds" 0 $?
check "and says nothing was left" grep -qx "nothing of vmprobe serve was left on this host" "$WORK/uninstall2.out"
tap_done

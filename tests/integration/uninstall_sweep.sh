#!/bin/bash
# `vmprobe uninstall` removes the clsact filters of vmprobe that no pin
# leads to any more, in every network namespace, and nothing else. A
# clsact filter holds its program with no fd or pin: a persistent serve
# killed on clsact leaves its filters and their pins, and a serve without
# the network probe then removes those pins (the probe is not wanted), so
# that the filters go on running on every frame of a tap that outlives
# its VM (as a pod's does) with nothing that knows of them.
#
# Three persistent taps whose stand-in VMs stop: one in the host's
# namespace (with a clsact qdisc and a BPF filter of another tool, there
# before vmprobe), one in a namespace `ip netns` named (/run/netns), one in
# an unnamed namespace only a process holds (/proc/PID/ns/net). Two
# rounds: the second serve keeps no pin at all (uninstall then loads no
# probe), or keeps the other probes' (uninstall adopts and detaches those
# first).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

WHAT="uninstall sweeps filters no pin leads to"
tap_require_cmds "$WHAT" tc ip unshare nsenter
tap_require_root "$WHAT" tun
[ -x "$TAPGUEST" ] || { tap_skip "$WHAT" "$TAPGUEST is not built"; tap_done; exit; }

WORK=$(mktemp -d /tmp/vmprobe-sweep.XXXXXX)
PORT=19611 HTAP=vmsw-h0 NTAP=vmsw-n0 UTAP=vmsw-u0 NS=vmprobe-sweep PINS=/sys/fs/bpf/vmprobe
VMS=() HOLDER= LOCKER=
cleanup() {
	[ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null && wait "$LOCKER" 2>/dev/null
	vmprobe_stop >/dev/null 2>&1
	[ -n "${VMPROBE_PID:-}" ] && kill -KILL "$VMPROBE_PID" 2>/dev/null
	for v in "${VMS[@]}"; do kill "$v" 2>/dev/null && wait "$v" 2>/dev/null; done
	"$VMPROBE" uninstall >/dev/null 2>&1
	ip link del "$HTAP" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	[ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null # its namespace and tap go with it
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$HTAP" 2>/dev/null
ip netns del "$NS" 2>/dev/null
"$VMPROBE" uninstall >/dev/null 2>&1

# The unnamed namespace: a process of its own holds it.
unshare --net sleep 600 &
HOLDER=$!
own_ns() { [ "$(readlink /proc/$HOLDER/ns/net)" != "$(readlink /proc/self/ns/net)" ]; }
wait_for 5 own_ns
UNS=(nsenter -t "$HOLDER" -n)
mktap() { # TAP [PREFIX...]
	local t=$1; shift
	"$@" ip tuntap add dev "$t" mode tap && "$@" ip link set "$t" up
}
ip netns add "$NS"
mktap "$HTAP" && mktap "$NTAP" ip netns exec "$NS" && mktap "$UTAP" "${UNS[@]}" ||
	{ tap_fail "three taps: the host's, in $NS, in an unnamed namespace"; tap_done; exit; }
# Another tool's clsact and BPF filter on the host's tap, there before vmprobe.
tc qdisc add dev "$HTAP" clsact &&
	tc filter add dev "$HTAP" ingress pref 10 bpf da obj "$REPO/build/tests/tools/foreign.bpf.o" sec tc ||
	{ tap_fail "a foreign clsact filter on $HTAP"; tap_done; exit; }
foreign() { tc filter show dev "$HTAP" ingress | grep -o ' name foreign .*' | awk '{ print $2 }'; }
check_eq "the other tool's filter is there" foreign "$(foreign)"

start_guest() { # NAME TAP [PREFIX...]
	local name=$1 tap=$2; shift 2
	"$@" "$(tapguest_dir)" -name "guest=$name" -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
		>"$WORK/$name.log" 2>&1 &
	VMS+=($!)
}
progs() { vmprobe_progs "$@" | sort | xargs; } # [NETNS] TAP
uprogs() { # the unnamed namespace's tap
	local out
	out=$("${UNS[@]}" tc filter show dev "$UTAP" ingress 2>&1; "${UNS[@]}" tc filter show dev "$UTAP" egress 2>&1)
	grep -oE ' name vmprobe_tap_[a-z]*' <<<"$out" | awk '{ print $2 }' | sort | xargs
}
both="vmprobe_tap_egr vmprobe_tap_ing" # the names as the kernel keeps them (15 bytes)
all_three() { echo "$(progs "$HTAP") | $(progs "$NS" "$NTAP") | $(uprogs)"; }
attached_all() { [ "$(all_three)" = "$both | $both | $both" ]; }

round() { # NAME SECOND_SERVE_YAML
	local r=$1
	rm -f "$WORK"/sw-*.log
	start_guest sw-host "$HTAP"
	start_guest sw-ns "$NTAP" ip netns exec "$NS"
	start_guest sw-uns "$UTAP" "${UNS[@]}"
	for g in sw-host sw-ns sw-uns; do
		wait_for 5 grep -q ready "$WORK/$g.log" || { tap_fail "$r: stand-in VM $g starts"; return; }
	done
	vmprobe_start $PORT "persist: true
network: {tc_hook: clsact}" || { tap_fail "$r: a persistent serve on clsact starts" "$(tail -5 "$WORK/vmprobe.log")"; return; }
	wait_for 10 attached_all
	check_eq "$r: the serve's filters on the three taps" "$both | $both | $both" "$(all_three)"
	kill -KILL "$VMPROBE_PID"; wait "$VMPROBE_PID" 2>/dev/null; VMPROBE_PID=
	# The VMs stop; their taps stay, and nothing will claim them.
	for v in "${VMS[@]}"; do kill "$v" 2>/dev/null && wait "$v" 2>/dev/null; done
	VMS=()
	vmprobe_start $PORT "$2" ||
		{ tap_fail "$r: a serve without the network probe starts" "$(tail -5 "$WORK/vmprobe.log")"; return; }
	vmprobe_stop
	check "$r: a serve without the network probe removed the network pins" test ! -e "$PINS/net"
	check_eq "$r: the filters are still attached, no pin leading to them" \
		"$both | $both | $both" "$(all_three)"
}

# 1. The second serve keeps no pin.
round "no pin left" "network: {enabled: false}"
check "no pin left: no pin at all" test ! -e "$PINS"
# Not while a top or hist has probes of its own attached (their filters
# are named as serve's): it holds the attach lock.
mkdir -p /run/vmprobe
# (The locker becomes the sleep that holds the lock: killing it frees the lock.)
bash -c 'exec 9>>/run/vmprobe/attach.lock && flock 9 && exec sleep 60' &
LOCKER=$!
wait_for 5 bash -c '! flock -n /run/vmprobe/attach.lock true'
"$VMPROBE" uninstall >"$WORK/refused.out" 2>&1
check_eq "uninstall refuses while another vmprobe holds the attach lock" 1 $?
check "... and says why" grep -q "has probes attached; stop it first" "$WORK/refused.out"
check_eq "... removing nothing" "$both | $both | $both" "$(all_three)"
kill "$LOCKER"; wait "$LOCKER" 2>/dev/null; LOCKER=
"$VMPROBE" uninstall >"$WORK/uninstall.out" 2>&1
check_eq "no pin left: vmprobe uninstall succeeds" 0 $?
check "no pin left: it says it removed the six filters no pin led to" \
	grep -qx "the network probe: removed 6 filters left attached that no pin led to" "$WORK/uninstall.out"
check_eq "no pin left: no vmprobe filter on any of the three taps" " |  | " "$(all_three)"

# 2. The second serve keeps its other probes' pins: uninstall adopts and detaches those first.
round "other pins left" "persist: true
network: {enabled: false}"
check "other pins left: the other probes' pins are there" test -e "$PINS"
"$VMPROBE" uninstall >"$WORK/uninstall2.out" 2>&1
check_eq "other pins left: vmprobe uninstall succeeds" 0 $?
check "other pins left: it removed the six filters no pin led to" \
	grep -qx "the network probe: removed 6 filters left attached that no pin led to" "$WORK/uninstall2.out"
check "other pins left: and the pins" test ! -e "$PINS"
check_eq "other pins left: no vmprobe filter on any of the three taps" " |  | " "$(all_three)"

check_eq "the other tool's filter stays" foreign "$(foreign)"
check "... and its clsact qdisc" bash -c "tc qdisc show dev $HTAP | grep -q clsact"
check_eq "the taps are still there" 3 \
	"$( (ip link show "$HTAP"; ip netns exec "$NS" ip link show "$NTAP"; "${UNS[@]}" ip link show "$UTAP") 2>/dev/null | grep -c 'state')"
"$VMPROBE" uninstall >"$WORK/uninstall3.out" 2>&1
check_eq "uninstall again succeeds" 0 $?
check "and says nothing was left" grep -qx "nothing of vmprobe serve was left on this host" "$WORK/uninstall3.out"
[ -n "${VERBOSE:-}" ] && sed 's/^/# /' "$WORK"/uninstall*.out
tap_done

#!/bin/bash
# Tap counting on the real kernel, no QEMU: stand-in guests (tapguest)
# hold taps in the host namespace and in two network namespaces whose taps
# share an ifindex, one of them passed by fd as libvirt does. vmprobe's
# counters must equal the taps' own kernel counters exactly, foreign TC
# programs must keep working during and after vmprobe, VMs that come and
# go are picked up while it runs, and exit removes exactly vmprobe's programs.
# TC_HOOK (tcx, the default where the kernel has it, or clsact) is the
# network.tc_hook vmprobe runs with: net_taps_clsact.sh runs this as clsact.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "tap counting on the real kernel" tun
TC_HOOK=${TC_HOOK:-tcx}
if [ "$TC_HOOK" = tcx ] && ! have_tcx; then
	tap_skip "tap counting from TCX links" "this kernel has no TCX (Linux 6.6+); net_taps_clsact.sh runs the clsact hook"
	tap_done; exit
fi

WORK=$(mktemp -d /tmp/vmprobe-net.XXXXXX)
PORT=19581
NS1=vmpt-ns1 NS2=vmpt-ns2 HTAP=vmpt-h0 PTAP=vmpt-p0 QTAP=vmpt-q0 FTAP=vmpt-f0
# A writable cgroup hierarchy (v2, or v1 hybrid) to play the kubelet.
CG=
for root in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/pids; do
	if [ -f "$root/cgroup.procs" ] && [ -w "$root" ]; then
		CG=$root/kubepods.slice/vmprobe-test
		break
	fi
done
PIDS=() HOLD=

cleanup() {
	vmprobe_stop >/dev/null 2>&1
	for p in "${PIDS[@]}" $HOLD; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip link del "$HTAP" 2>/dev/null
	ip link del "$QTAP" 2>/dev/null
	ip link del "$FTAP" 2>/dev/null
	ip netns del "$NS1" 2>/dev/null
	ip netns del "$NS2" 2>/dev/null
	[ -n "$CG" ] && rmdir "$CG/pod1" "$CG/pod2" "$CG" "${CG%/*}" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
cleanup_pre() { for t in "$HTAP" "$QTAP" "$FTAP"; do ip link del "$t" 2>/dev/null; done; ip netns del "$NS1" 2>/dev/null; ip netns del "$NS2" 2>/dev/null; }
cleanup_pre

mktap() { # [NETNS] TAP
	local ns=()
	[ $# -eq 2 ] && ns=(ip netns exec "$1") && shift
	"${ns[@]}" ip tuntap add dev "$1" mode tap
	"${ns[@]}" sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1"
	"${ns[@]}" ip link set "$1" up
}

QEMU=$(tapguest_dir)
BURST="10:60,5:1514,3:9000"
export TAPGUEST_BURST=$BURST

# Host namespace: a tap with a foreign filter installed before vmprobe.
mktap "$HTAP"
tc qdisc add dev "$HTAP" clsact
tc filter add dev "$HTAP" ingress pref 10 bpf da obj "$REPO/build/tests/tools/foreign.bpf.o" sec tc
FOREIGN_PROG=$(tc filter show dev "$HTAP" ingress | sed -n 's/.* id \([0-9]*\) name foreign .*/\1/p')
FOREIGN_MAP=$(bpftool prog show id "$FOREIGN_PROG" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["map_ids"][0])')
map_count() { # MAP_ID KEY: the u64 at KEY (0 to 255)
	bpftool map lookup id "$1" key "$2" 0 0 0 -j |
		python3 -c 'import json,sys; v=json.load(sys.stdin)["value"]; print(int.from_bytes(bytes(int(b,16) for b in v),"little"))'
}
foreign_hits() { map_count "$FOREIGN_MAP" 0; }
# Under TCX, also another tool's TCX program there before vmprobe, which
# lets the programs after it run (the clsact filter above still sees all).
if [ "$TC_HOOK" = tcx ]; then
	"$TCX" hold "$HTAP" "$REPO/build/tests/tools/foreign.bpf.o" foreign_next >"$WORK/hold.log" 2>&1 &
	HOLD=$!
	wait_for 5 grep -q attached "$WORK/hold.log"
	NEXT_PROG=$(awk '/^attached/ { print $2 }' "$WORK/hold.log")
	NEXT_MAP=$(bpftool prog show id "$NEXT_PROG" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["map_ids"][0])')
	next_hits() { map_count "$NEXT_MAP" 1; }
fi

# Two pods: same tap name, same ifindex, QEMU in a kubepods cgroup.
ip netns add "$NS1"; ip netns add "$NS2"
mktap "$NS1" "$PTAP"; mktap "$NS2" "$PTAP"
i1=$(ip netns exec "$NS1" cat "/sys/class/net/$PTAP/ifindex")
i2=$(ip netns exec "$NS2" cat "/sys/class/net/$PTAP/ifindex")
check_eq "the two pods' taps share an ifindex" "$i1" "$i2"

kube=0
if [ -n "$CG" ] && mkdir -p "$CG/pod1" "$CG/pod2" 2>/dev/null; then
	kube=1
fi

# Starts a stand-in guest and echoes its pid. TAPS is "name" (ifname= on
# its command line) or "fd" (it opens the taps and holds them as fd=N).
start_guest() { # LOGNAME CGROUP NETNS TAPS ARGS...
	local log=$1 cg=$2 ns=$3 taps=$4; shift 4
	local pre=()
	[ -n "$ns" ] && pre=(ip netns exec "$ns")
	(
		[ -n "$cg" ] && echo $BASHPID >"$cg/cgroup.procs"
		[ "$taps" = fd ] && export TAPGUEST_PASS_FD=1
		exec "${pre[@]}" "$QEMU" "$@"
	) >"$WORK/$log.log" 2>&1 &
	echo $!
}

HNAME='web "01" \ prod'  # needs escaping; exposed as web \"01\" \\ prod
HNAME_EXP='web \"01\" \\ prod'
gh=$(start_guest host "" "" name -name "guest=$HNAME" -uuid 00000000-0000-0000-0000-0000000000a1 \
	-netdev "tap,id=n0,ifname=$HTAP,script=no,downscript=no")
PIDS+=("$gh")
cg1="" cg2=""
[ $kube -eq 1 ] && cg1=$CG/pod1 cg2=$CG/pod2
g1=$(start_guest pod1 "$cg1" "$NS1" fd -name guest=ns1_vm-a,debug-threads=on \
	-uuid 00000000-0000-0000-0000-0000000000b1 -netdev "tap,id=hostua-default,ifname=$PTAP")
g2=$(start_guest pod2 "$cg2" "$NS2" name -name guest=ns2_vm-a,debug-threads=on \
	-uuid 00000000-0000-0000-0000-0000000000b2 -netdev "tap,id=hostua-default,ifname=$PTAP")
PIDS+=("$g1" "$g2")
for g in host pod1 pod2; do wait_for 5 grep -q ready "$WORK/$g.log"; done
check "the fd-passing stand-in holds its tap by fd, as under libvirt" \
	bash -c "tr '\\0' ' ' </proc/$g1/cmdline | grep -q 'tap,id=hostua-default,fd='"

vmprobe_start $PORT "network: {tc_hook: $TC_HOOK}" || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
tap_ok "vmprobe serve starts"
check_fails "a second vmprobe serve on the host refuses to start (no double filters)" \
	timeout 5 "$VMPROBE" serve --listen 127.0.0.1:$((PORT + 1))
if [ $kube -eq 1 ]; then
	N1=(name=vm-a namespace=ns1) N2=(name=vm-a namespace=ns2)
else
	tap_skip "KubeVirt namespace/name split" "no writable cgroup hierarchy"
	N1=(name=ns1_vm-a) N2=(name=ns2_vm-a)
fi
attached() {
	scrape &&
	[ -n "$(metric "$WORK/metrics.txt" vmprobe_network_packet_size_bytes_count name="$HNAME_EXP" interface=$HTAP direction=rx)" ] &&
	[ -n "$(metric "$WORK/metrics.txt" vmprobe_network_packet_size_bytes_count "${N1[@]}" interface=$PTAP direction=rx)" ] &&
	[ -n "$(metric "$WORK/metrics.txt" vmprobe_network_packet_size_bytes_count "${N2[@]}" interface=$PTAP direction=rx)" ]
}
check "all three taps are counted, each with its own labels" wait_for 5 attached
check_num "vmprobe_network_tc_hook_info names the hook in use" 1 \
	"$(metric "$WORK/metrics.txt" vmprobe_network_tc_hook_info hook="$TC_HOOK")"
if [ "$TC_HOOK" = tcx ]; then
	check_eq "vmprobe's programs are TCX links, its ingress one ahead of the foreign one" \
		"ingress vmprobe_tap_ing ingress foreign_next egress vmprobe_tap_egr" \
		"$("$TCX" list "$HTAP" | tr '\n' ' ' | sed 's/ $//')"
	check_eq "and no vmprobe filter under clsact" "" \
		"$( (tc filter show dev "$HTAP" ingress; tc filter show dev "$HTAP" egress) | grep vmprobe)"
else
	check "vmprobe's filters carry their slot as classid (flowid)" \
		bash -c "tc filter show dev $HTAP ingress | grep vmprobe_tap_ing | grep -q 'flowid :[0-9]'"
fi
# Drops: a guest that stops draining its ring (SIGSTOP: the stand-in stops
# reading its tap fd, as a paused QEMU does) makes the tap drop frames
# sent to it; vmprobe counts them by reason, equal to the tap's tx_dropped.
# (Before the hash is emptied below: drops are attributed through it.)
drop_total() { # FILE [DIRECTION]: all drop reasons of the host VM, to the guest (rx) by default
	python3 - "$1" "$HNAME_EXP" "${2:-rx}" <<'PY'
import re, sys
tot = 0
for line in open(sys.argv[1]):
    m = re.match(r'vmprobe_network_drops_total\{(.*)\} (\d+)$', line.strip())
    if m and 'name="%s"' % sys.argv[2] in m.group(1) and 'direction="%s"' % sys.argv[3] in m.group(1):
        tot += int(m.group(2))
print(tot)
PY
}
scrape "$WORK/d0.txt"; td0=$(tapstat "$HTAP" tx_dropped)
kill -STOP "$gh"
"$TAPGUEST" inject "$HTAP" 1500 100 >/dev/null
kill -CONT "$gh"
sleep 0.3
scrape "$WORK/d1.txt"; td1=$(tapstat "$HTAP" tx_dropped)
check "the paused guest made the tap drop frames" test $((td1 - td0)) -gt 0
check_num "drops to the guest = the tap's tx_dropped" "$((td1 - td0))" \
	"$(( $(drop_total "$WORK/d1.txt") - $(drop_total "$WORK/d0.txt") ))"
check "the drop reason is the tap's full ring" grep -q \
	"vmprobe_network_drops_total{name=\"$(printf '%s' "$HNAME_EXP" | sed 's/[\\]/\\&/g')\",interface=\"$HTAP\",direction=\"rx\",reason=\"FULL_RING\"}" "$WORK/d1.txt"
# Frames from the guest the tap drops before the host receives them: with
# the tap down, each frame the stand-in writes is built and freed in the
# tap's write path (DEV_READY) and counted in its rx_dropped. They were on
# their way out of the guest: direction tx, not rx.
rd0=$(tapstat "$HTAP" rx_dropped) bursts=$(grep -c '^sent' "$WORK/host.log")
ip link set "$HTAP" down
kill -USR1 "$gh"
burst_done() { [ "$(grep -c '^sent' "$WORK/host.log")" -gt "$bursts" ]; }
check "the stand-in guest wrote its burst to the tap, down" wait_for 5 burst_done
ip link set "$HTAP" up
# The link events make vmprobe rescan at once: let two scans pass before
# the maps are touched below.
scans() { scrape "$WORK/s.txt" && metric "$WORK/s.txt" vmprobe_discovery_scans_total; }
scans0=$(scans)
scanned_twice() { [ "$(scans)" -ge $((scans0 + 2)) ]; }
wait_for 5 scanned_twice
scrape "$WORK/d2.txt"; rd1=$(tapstat "$HTAP" rx_dropped)
check "the tap, down, dropped the guest's frames" test $((rd1 - rd0)) -gt 0
check_num "drops from the guest = the tap's rx_dropped" "$((rd1 - rd0))" \
	"$(( $(drop_total "$WORK/d2.txt" tx) - $(drop_total "$WORK/d1.txt" tx) ))"
check_num "and none of them counted as on their way to the guest" "$(drop_total "$WORK/d1.txt")" \
	"$(drop_total "$WORK/d2.txt")"

# Empty vmprobe's (netns, ifindex) hash: the frame counts below must then
# come from the classid path alone.
clear_fallback() {
	local id
	id=$(grep -h '^map_id:' /proc/"$VMPROBE_PID"/fdinfo/* 2>/dev/null | awk '{print $2}' |
		while read -r m; do
			# The whole listing, then the match: bpftool writes line by line,
			# and `| grep -q` quitting at the first line would kill it with
			# SIGPIPE, which pipefail makes a failed match.
			[[ $(bpftool map show id "$m") == *" name net_ifaces "* ]] && echo "$m"
		done)
	[ -n "$id" ] || return 1
	bpftool map dump id "$id" -j | python3 -c '
import json, struct, subprocess, sys
for e in json.load(sys.stdin):
    k = e["key"]
    raw = bytes(int(b, 16) for b in k) if isinstance(k, list) else \
        struct.pack("<QII", k["netns_cookie"], k["ifindex"], k["pad"])
    subprocess.check_call(["bpftool", "map", "delete", "id", sys.argv[1], "key"] + [str(b) for b in raw])
print("cleared" if not json.loads(subprocess.check_output(["bpftool", "map", "dump", "id", sys.argv[1], "-j"])) else "left")' "$id"
}
check_eq "vmprobe's fallback hash is emptied" cleared "$(clear_fallback)"
# (From TCX, vmprobe runs before every clsact filter by the kernel's order.)
[ "$TC_HOOK" = clsact ] && check "vmprobe's filter runs before the foreign one" \
	bash -c "tc filter show dev $HTAP ingress | grep -m1 'handle' | grep -q vmprobe_tap_ing"

# Counters: (netns, tap, labels...) per VM, before and after the workload.
declare -A before after
snap() { # ARRAY
	local -n out=$1
	scrape "$WORK/m.txt"
	local k ns lbl
	for k in host pod1 pod2; do
		case $k in
		host) ns=() lbl=(name="$HNAME_EXP" interface=$HTAP) ;;
		pod1) ns=("$NS1") lbl=("${N1[@]}" interface=$PTAP) ;;
		pod2) ns=("$NS2") lbl=("${N2[@]}" interface=$PTAP) ;;
		esac
		local t=${ns[0]:-}
		for f in rx_packets rx_bytes tx_packets tx_bytes tx_dropped; do
			out[$k.$f]=$(tapstat ${t:+"$t"} "$([ $k = host ] && echo $HTAP || echo $PTAP)" $f)
		done
		for d in rx tx; do
			out[$k.p.$d]=$(metric "$WORK/m.txt" vmprobe_network_packet_size_bytes_count "${lbl[@]}" direction=$d)
			out[$k.b.$d]=$(metric "$WORK/m.txt" vmprobe_network_packet_size_bytes_sum "${lbl[@]}" direction=$d)
			for le in 64 128 2048 16384 +Inf; do
				out[$k.h.$d.$le]=$(metric "$WORK/m.txt" vmprobe_network_packet_size_bytes_bucket \
					"${lbl[@]}" direction=$d le=$le)
			done
		done
	done
}

hits0=$(foreign_hits) next0=$([ "$TC_HOOK" = tcx ] && next_hits)
snap before
# From each guest: 10x60, 5x1514, 3x9000 bytes. To each guest: 7x100, 4x1400.
for p in "$gh" "$g1" "$g2"; do kill -USR1 "$p"; done
"$TAPGUEST" inject "$HTAP" 7 100 >/dev/null && "$TAPGUEST" inject "$HTAP" 4 1400 >/dev/null
for ns in "$NS1" "$NS2"; do
	ip netns exec "$ns" "$TAPGUEST" inject "$PTAP" 7 100 >/dev/null
	ip netns exec "$ns" "$TAPGUEST" inject "$PTAP" 4 1400 >/dev/null
done
bursts_done() { # LOG COUNT: the stand-in has written COUNT bursts
	[ "$(grep -c '^sent' "$WORK/$1.log")" -ge "$2" ]
}
# The host stand-in wrote one burst already, to its tap while down.
for g in host pod1 pod2; do wait_for 5 bursts_done $g "$([ $g = host ] && echo 2 || echo 1)"; done
sleep 0.3
snap after
hits1=$(foreign_hits) next1=$([ "$TC_HOOK" = tcx ] && next_hits)

d() { echo $(( ${after[$1]:-0} - ${before[$1]:-0} )); }
for k in host pod1 pod2; do
	check_num "$k: frames from the guest = tap rx_packets" "$(d $k.rx_packets)" "$(d $k.p.tx)"
	check_num "$k: bytes from the guest = tap rx_bytes" "$(d $k.rx_bytes)" "$(d $k.b.tx)"
	check_num "$k: frames to the guest = tap tx_packets + tx_dropped" \
		"$(( $(d $k.tx_packets) + $(d $k.tx_dropped) ))" "$(d $k.p.rx)"
	check_num "$k: bytes to the guest = tap tx_bytes (no drops)" "$(d $k.tx_bytes)" "$(d $k.b.rx)"
	check_eq "$k: the workload was 18 frames from and 11 to the guest" "18 11" \
		"$(d $k.p.tx) $(d $k.p.rx)"
	check_eq "$k: size histogram from the guest (le 64, 2048, 16384, +Inf)" "10 15 18 18" \
		"$(d $k.h.tx.64) $(d $k.h.tx.2048) $(d $k.h.tx.16384) $(d $k.h.tx.+Inf)"
	check_eq "$k: size histogram to the guest (le 64, 128, 2048)" "0 7 11" \
		"$(d $k.h.rx.64) $(d $k.h.rx.128) $(d $k.h.rx.2048)"
done
check_num "the foreign filter saw every frame from the guest while vmprobe ran" \
	"$(d host.rx_packets)" "$((hits1 - hits0))"
[ "$TC_HOOK" = tcx ] && check_num "so did the foreign TCX program" \
	"$(d host.rx_packets)" "$((next1 - next0))"
check_num "no frame hit a device without a slot" "0" \
	"$(metric "$WORK/m.txt" vmprobe_network_unknown_interface_frames_total)"
check_num "VM info carries uuid and pid" "1" \
	"$(metric "$WORK/m.txt" vmprobe_vm_info "${N1[@]}" uuid=00000000-0000-0000-0000-0000000000b1 pid="$g1")"

# A VM that starts while vmprobe runs is counted (the delay is measured by
# make bench; the bound here only catches a VM never seen).
mktap "$NS2" vmpt-p1
t0=$(date +%s.%N)
g3=$(start_guest late "$cg2" "$NS2" name -name guest=ns2_late -netdev tap,id=n1,ifname=vmpt-p1)
PIDS+=("$g3")
late() { scrape "$WORK/l.txt" && [ -n "$(metric "$WORK/l.txt" vmprobe_network_packet_size_bytes_count interface=vmpt-p1 direction=rx)" ]; }
wait_for 10 late; t1=$(date +%s.%N)
check_range "a VM started while running is counted (within 10 s)" 0 10.0 "$(echo "$t1 - $t0" | bc -l 2>/dev/null || awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')"

# A VM that stops: its series end and its filters leave the (persistent) tap.
kill "$g2"; wait "$g2" 2>/dev/null
gone() { scrape "$WORK/g.txt" && [ -z "$(metric "$WORK/g.txt" vmprobe_vm_info "${N2[@]}")" ]; }
check "a stopped VM's series are removed (within 10 s)" wait_for 10 gone
check_eq "a stopped VM's tap has no vmprobe program left" "" "$(vmprobe_progs "$NS2" "$PTAP")"

# Exit: exactly vmprobe's filters go; the foreign one and its qdisc stay.
vmprobe_stop; rc=$?
check_eq "SIGTERM exits 0" 0 "$rc"
check_eq "no vmprobe program remains on the host tap" "" "$(vmprobe_progs "$HTAP")"
h2=$(foreign_hits) n2=$([ "$TC_HOOK" = tcx ] && next_hits) r2=$(tapstat "$HTAP" rx_packets)
kill -USR1 "$gh"; sleep 0.5
check_num "the foreign filter still sees every frame after vmprobe exits" \
	"$(( $(tapstat "$HTAP" rx_packets) - r2 ))" "$(( $(foreign_hits) - h2 ))"
check_num "the foreign filter is still there" 1 \
	"$(tc filter show dev "$HTAP" ingress | grep -c 'name foreign')"
if [ "$TC_HOOK" = tcx ]; then
	check_num "the foreign TCX program still sees every frame after vmprobe exits" \
		"$(( $(tapstat "$HTAP" rx_packets) - r2 ))" "$(( $(next_hits) - n2 ))"
	check_eq "and it is still attached, alone" "ingress foreign_next" "$("$TCX" list "$HTAP" | tr '\n' ' ' | sed 's/ $//')"
fi
check_eq "no clsact qdisc of vmprobe is left in a pod" "" \
	"$(ip netns exec "$NS1" tc qdisc show dev "$PTAP" | grep clsact)"
check_eq "the log names no failure" "" "$(grep -E '^vmprobe: (warn|error):' "$WORK/vmprobe.log")"

vmp_filters() { vmprobe_progs "$HTAP" | wc -l; }
host_counted() { [ "$(vmp_filters)" -ge 2 ]; }
vmprobe_start $PORT "network: {tc_hook: $TC_HOOK}" && wait_for 5 host_counted
kill -KILL "$VMPROBE_PID"; wait "$VMPROBE_PID" 2>/dev/null; VMPROBE_PID=
if [ "$TC_HOOK" = tcx ]; then
	# Links last as long as their fds: nothing outlives a vmprobe killed outright.
	check_eq "SIGKILL leaves no vmprobe program behind (the links die with it)" 0 "$(vmp_filters)"
	# Two fds per tap: for the default 256 taps (max_vms), more than a soft limit of 256.
	ulimit -Sn 256
	vmprobe_start $PORT "network: {tc_hook: $TC_HOOK}" && wait_for 5 host_counted
	check_eq "the next vmprobe attaches one program per direction" 2 "$(vmp_filters)"
	check_eq "started with a soft limit of 256 open files, it raises it to the hard limit" \
		"$(ulimit -Hn)" "$(awk '/^Max open files/ { print $4 }' "/proc/$VMPROBE_PID/limits")"
else
	# A vmprobe killed outright leaves its filters; the next one removes
	# them instead of stacking a second set in front.
	check_eq "SIGKILL leaves vmprobe's two filters behind" 2 "$(vmp_filters)"
	vmprobe_start $PORT "network: {tc_hook: $TC_HOOK}" && wait_for 5 host_counted
	check_eq "the next vmprobe replaces them: still one filter per direction" 2 "$(vmp_filters)"
	check "and says so" grep -q "removed a filter left by an earlier vmprobe" "$WORK/vmprobe.log"
fi
# A terminal closing on a serve run by hand: SIGHUP ends it as SIGTERM does.
kill -HUP "$VMPROBE_PID"; wait "$VMPROBE_PID"; rc=$?; VMPROBE_PID=
check_eq "SIGHUP exits 0 and leaves no vmprobe program on the tap" "0 0" "$rc $(vmp_filters)"

# clsact beside what other tools hang on a tap (the hook of kernels
# without TCX, Debian 12's 6.1 among them).
if [ "$TC_HOOK" = clsact ]; then
	# libvirt's outbound bandwidth limit (<bandwidth><outbound>, Nova's
	# quota:vif_outbound_*) is an ingress qdisc with a police filter. It
	# stands where clsact would, and its one block would take vmprobe's
	# egress filter too, to run on frames from the guest: never counted
	# so, and said.
	mktap $QTAP
	tc qdisc add dev $QTAP ingress
	tc filter add dev $QTAP parent ffff: protocol all pref 1 u32 match u32 0 0 \
		police rate 1gbit burst 1m drop flowid :1
	qtc() { tc qdisc show dev $QTAP; tc filter show dev $QTAP parent ffff:; }
	q0=$(qtc)
	PIDS+=("$(start_guest policed "" "" name -name guest=policed \
		-netdev "tap,id=n0,ifname=$QTAP,script=no,downscript=no")")
	# And a tap whose hook another tool flushes under vmprobe (its clsact
	# deleted with vmprobe's filters) to put filters of its own where
	# vmprobe's were.
	mktap $FTAP
	PIDS+=("$(start_guest flushed "" "" name -name guest=flushed \
		-netdev "tap,id=n0,ifname=$FTAP,script=no,downscript=no")")
	wait_for 5 grep -q ready "$WORK/policed.log"
	wait_for 5 grep -q ready "$WORK/flushed.log"
	vmprobe_start $PORT "network: {tc_hook: clsact}"
	unmeasured() { scrape "$WORK/q.txt" &&
		[ "$(metric "$WORK/q.txt" vmprobe_interface_info name=policed measured=false)" = 1 ]; }
	check "a tap with an ingress qdisc (libvirt's outbound limit) is declared not measured" \
		wait_for 10 unmeasured
	check "with the reason" grep -qF 'reason="attaching to tap vmpt-q0 failed: Device or resource busy (the tap has an ingress qdisc' "$WORK/q.txt"
	check "and a warning" grep -qF "cannot count tap vmpt-q0 of VM policed: Device or resource busy (the tap has an ingress qdisc" "$WORK/vmprobe.log"
	check_eq "its qdisc and police filter are as they were" "$q0" "$(qtc)"
	f_counted() { [ "$(vmprobe_progs $FTAP | wc -l)" = 2 ]; }
	check "the other tap is counted" wait_for 10 f_counted
	fpref=$(tc filter show dev $FTAP egress | sed -n 's/.* pref \([0-9]*\) bpf .*/\1/p' | head -1)
	tc qdisc del dev $FTAP clsact
	tc qdisc add dev $FTAP clsact
	for dir in ingress egress; do
		tc filter add dev $FTAP $dir pref "$fpref" handle 1 bpf bytecode '1,6 0 0 0,'
	done
	ftc() { tc qdisc show dev $FTAP; tc filter show dev $FTAP ingress; tc filter show dev $FTAP egress; }
	f0=$(ftc)
	vmprobe_stop
	check_eq "at exit the policed tap's qdisc and filter are as they were" "$q0" "$(qtc)"
	check_eq "and the filters another tool put where vmprobe's were stay, with their clsact" \
		"$f0" "$(ftc)"
	check_num "vmprobe says it left them" 2 \
		"$(grep -c "filter was replaced by another tool's (TC priority $fpref): left as it is" "$WORK/vmprobe.log")"
fi
tap_done

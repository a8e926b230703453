#!/bin/bash
# The chart's privileges are the ones vmprobe needs at run time: vmprobe
# runs as root with exactly the capabilities of the rendered DaemonSet
# (bounding set; nothing else) and no_new_privs when it says
# allowPrivilegeEscalation: false, reading the host's /proc through a
# read-only bind mount as the pod does (/host/proc), with the rendered
# config. Two virt-launcher-like pods: each QEMU stand-in runs as uid 107
# (KubeVirt's qemu user) in a kubepods cgroup, its tap in its own network
# namespace with the same ifindex, domains ns1_vm-a and ns2_vm-a. They
# must give two distinct, correctly labelled, exact sets of series. Then
# each capability is dropped in turn: without SYS_ADMIN, NET_ADMIN (with
# tc_hook: clsact: TCX links need none), SYS_PTRACE or DAC_READ_SEARCH
# vmprobe cannot count them; without SYSLOG it says aio=native takes the
# costlier hooks; BPF and PERFMON, which SYS_ADMIN also grants in the
# kernel's checks, are shown redundant alone and needed without SYS_ADMIN.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/k8s/lib.sh"

what="vmprobe with the chart's capabilities only"
tap_require_root "$what" tun
tap_require_cmds "$what" setpriv unshare python3
if [ ! -x "$VMPROBE" ] || [ ! -x "$TAPGUEST" ]; then
	tap_skip "$what" "build/vmprobe or the tapguest tool is not built (make test builds them)"
	tap_done; exit
fi
if ! k8s_tools; then
	tap_skip "$what" "$K8S_TOOLS_ERR"
	tap_done; exit
fi
CG=$(kubepods_cgroup vmprobe-security)
if [ -z "$CG" ] || ! mkdir -p "$CG/pod1" "$CG/pod2" 2>/dev/null; then
	tap_skip "$what" "no writable cgroup hierarchy to put QEMU under kubepods"
	tap_done; exit
fi

WORK=$(mktemp -d /tmp/vmprobe-sec.XXXXXX)
chmod 755 "$WORK"
PORT=19585 NS1=vmps-ns1 NS2=vmps-ns2 PTAP=vmps-p0 QEMU_UID=107
PIDS=() RUN_PID=
cleanup() {
	[ -n "$RUN_PID" ] && kill -TERM "$RUN_PID" 2>/dev/null && wait "$RUN_PID" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$NS1" 2>/dev/null
	ip netns del "$NS2" 2>/dev/null
	rmdir "$CG/pod1" "$CG/pod2" "$CG" "${CG%/*}" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip netns del "$NS1" 2>/dev/null; ip netns del "$NS2" 2>/dev/null

# What the chart grants, and the config it renders.
render "$WORK/default.yaml"
tojson "$WORK/default.yaml" | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    if d["kind"] == "DaemonSet":
        c = d["spec"]["template"]["spec"]["containers"][0]
        sc = c["securityContext"]
        print(",".join(sc["capabilities"]["add"]), file=open(sys.argv[1] + "/caps", "w"))
        print("no" if sc.get("allowPrivilegeEscalation", True) is False else "yes", file=open(sys.argv[1] + "/escalation", "w"))
    if d["kind"] == "ConfigMap" and "config.yaml" in d["data"]:
        open(sys.argv[1] + "/chart-config.yaml", "w").write(d["data"]["config.yaml"])' "$WORK"
CAPS=$(cat "$WORK/caps")
check "the chart's capabilities are read from the rendered DaemonSet ($CAPS)" test -n "$CAPS"
# allowPrivilegeEscalation: false is the kubelet's no_new_privs.
NNP=()
[ "$(cat "$WORK/escalation")" = no ] && NNP=(--no-new-privs)
# The pod's config, but on loopback, with /host/proc under $WORK, and
# without persist (the chart's default): each run here, with other
# capabilities, must start from nothing rather than adopt the programs
# the run before left counting (pins.sh and upgrade.sh test persist).
python3 - "$WORK" "$PORT" <<'PY'
import re, sys
w, port = sys.argv[1], sys.argv[2]
s = open(w + "/chart-config.yaml").read()
assert "proc: /host/proc" in s and re.search(r"^listen: ", s, re.M), s
assert re.search(r"^persist: true$", s, re.M), s
s = re.sub(r"^persist: true$", "persist: false", s, flags=re.M)
s = s.replace("proc: /host/proc", "proc: %s/host/proc" % w)
s = re.sub(r"^listen: .*$", 'listen: "127.0.0.1:%s"' % port, s, flags=re.M)
s = re.sub(r"^log_level: .*$", "log_level: debug", s, flags=re.M)
s = s.replace("rescan_interval_ms: 500", "rescan_interval_ms: 200")
open(w + "/vmprobe.yaml", "w").write(s)
assert "tc_hook: auto" in s, s
open(w + "/vmprobe-clsact.yaml", "w").write(s.replace("tc_hook: auto", "tc_hook: clsact"))
PY
mkdir -p "$WORK/host/proc"

# Two pods: same tap name and ifindex, QEMU as uid 107 under kubepods.
for ns in "$NS1" "$NS2"; do
	ip netns add "$ns"
	ip netns exec "$ns" ip tuntap add dev "$PTAP" mode tap
	ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$PTAP.disable_ipv6=1"
	ip netns exec "$ns" ip link set "$PTAP" up
done
check_eq "the two pods' taps share an ifindex" \
	"$(ip netns exec "$NS1" cat /sys/class/net/$PTAP/ifindex)" "$(ip netns exec "$NS2" cat /sys/class/net/$PTAP/ifindex)"
QEMU=$(tapguest_dir)
# As libvirt does: the tap is opened with privileges and passed to QEMU,
# which runs unprivileged (here uid 107, as under KubeVirt).
cat >"$WORK/launch.py" <<'PY'
import fcntl, os, struct, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", sys.argv[2].encode(), 0x0002 | 0x1000))  # TUNSETIFF, IFF_TAP|IFF_NO_PI
os.set_inheritable(fd, True)
uid = int(sys.argv[1])
os.setgroups([]); os.setgid(uid); os.setuid(uid)
args = [a.replace("fd=@", "fd=%d" % fd) for a in sys.argv[3:]]
os.execv(args[0], args)
PY
start_pod() { # LOG CGROUP NETNS BURST NAME UUID
	(
		echo $BASHPID >"$1/cgroup.procs" 2>/dev/null || echo $BASHPID >"$2/cgroup.procs"
		export TAPGUEST_BURST=$4
		exec ip netns exec "$3" python3 "$WORK/launch.py" $QEMU_UID $PTAP "$QEMU" \
			-name "guest=$5,debug-threads=on" -uuid "$6" -netdev "tap,id=hostua-default,fd=@"
	) >"$WORK/$7.log" 2>&1 &
	PIDS+=($!)
}
start_pod "$CG/pod1" "$CG/pod1" "$NS1" "10:60,2:1514" ns1_vm-a 00000000-0000-0000-0000-0000000000c1 pod1
start_pod "$CG/pod2" "$CG/pod2" "$NS2" "3:1000" ns2_vm-a 00000000-0000-0000-0000-0000000000c2 pod2
G1=${PIDS[0]} G2=${PIDS[1]}
for g in pod1 pod2; do wait_for 5 grep -q ready "$WORK/$g.log"; done
check_eq "the QEMU stand-ins run as uid $QEMU_UID, not root" "$QEMU_UID $QEMU_UID" \
	"$(stat -c %u /proc/$G1 /proc/$G2 | paste -sd' ')"

# run_vmprobe CAPS: vmprobe as in the pod: root, bounding set = CAPS,
# no_new_privs as the chart says, /proc read-only at /host/proc in its own
# mount namespace.
run_vmprobe() { # CAPS [CONFIG]
	local caps=$1 config=${2:-vmprobe.yaml} bset
	bset=-all$(echo "$caps" | tr 'A-Z' 'a-z' | tr ',' '\n' | sed '/^$/d; s/^/,+/' | tr -d '\n')
	unshare --mount --propagation private sh -c '
		mount --bind /proc "$1/host/proc" && mount -o remount,bind,ro "$1/host/proc" &&
		exec setpriv --bounding-set="$2" --inh-caps=-all $5 "$3" serve -c "$1/$4"' \
		sh "$WORK" "$bset" "$VMPROBE" "$config" "${NNP[*]}" >"$WORK/vmprobe.log" 2>&1 &
	RUN_PID=$!
	VMPROBE_URL="http://127.0.0.1:$PORT/metrics"
	wait_for 10 curl -sf -o /dev/null "$VMPROBE_URL"
}
stop_vmprobe() {
	kill -TERM "$RUN_PID" 2>/dev/null
	local rc=0
	wait "$RUN_PID" || rc=$?
	RUN_PID=
	return $rc
}
N1=(namespace=ns1 name=vm-a interface=$PTAP) N2=(namespace=ns2 name=vm-a interface=$PTAP)
both_counted() {
	scrape "$WORK/m.txt" &&
		[ -n "$(metric "$WORK/m.txt" vmprobe_network_packet_size_bytes_count "${N1[@]}" direction=tx)" ] &&
		[ -n "$(metric "$WORK/m.txt" vmprobe_network_packet_size_bytes_count "${N2[@]}" direction=tx)" ]
}

if ! run_vmprobe "$CAPS"; then
	tap_fail "vmprobe serve starts with the chart's capabilities ($CAPS)" "$(tail -15 "$WORK/vmprobe.log")"
	tap_done; exit
fi
tap_ok "vmprobe serve starts with the chart's capabilities ($CAPS)"
caps_of() { # PID: its effective capabilities, as CAP_A,CAP_B (sorted)
	capsh --decode="$(awk '/^CapEff/ {print $2}' "/proc/$1/status")" | sed 's/.*=//' | tr 'a-z,' 'A-Z\n' |
		sed 's/^CAP_//' | sort | paste -sd,
}
check_eq "vmprobe runs with exactly those capabilities" "$(tr ',' '\n' <<<"$CAPS" | sort | paste -sd,)" \
	"$(caps_of "$RUN_PID")"
check_eq "and no_new_privs as the chart asks (allowPrivilegeEscalation: false)" "${NNP[*]:+1}" \
	"$(awk '/^NoNewPrivs/ {print $2}' "/proc/$RUN_PID/status" | sed 's/^0$//')"
check "both pods' VMs are counted (within 10 s), labelled namespace/name" wait_for 10 both_counted
check_num "ns1/vm-a carries its uuid and QEMU pid" 1 \
	"$(metric "$WORK/m.txt" vmprobe_vm_info namespace=ns1 name=vm-a uuid=00000000-0000-0000-0000-0000000000c1 pid="$G1")"
check_num "ns2/vm-a carries its uuid and QEMU pid" 1 \
	"$(metric "$WORK/m.txt" vmprobe_vm_info namespace=ns2 name=vm-a uuid=00000000-0000-0000-0000-0000000000c2 pid="$G2")"

# Each pod's own workload: its counters, and only its, move, exactly.
declare -A before after
snap() { # ARRAY
	local -n out=$1
	scrape "$WORK/s.txt"
	local k ns
	for k in 1 2; do
		ns=vmps-ns$k
		local -n lbl=N$k
		out[$k.rx_packets]=$(ip netns exec "$ns" cat /sys/class/net/$PTAP/statistics/rx_packets)
		out[$k.rx_bytes]=$(ip netns exec "$ns" cat /sys/class/net/$PTAP/statistics/rx_bytes)
		out[$k.tx_packets]=$(ip netns exec "$ns" cat /sys/class/net/$PTAP/statistics/tx_packets)
		out[$k.tx_dropped]=$(ip netns exec "$ns" cat /sys/class/net/$PTAP/statistics/tx_dropped)
		for d in rx tx; do
			out[$k.p.$d]=$(metric "$WORK/s.txt" vmprobe_network_packet_size_bytes_count "${lbl[@]}" direction=$d)
			out[$k.b.$d]=$(metric "$WORK/s.txt" vmprobe_network_packet_size_bytes_sum "${lbl[@]}" direction=$d)
		done
	done
}
snap before
kill -USR1 "$G1" "$G2"
ip netns exec "$NS2" "$TAPGUEST" inject "$PTAP" 5 200 >/dev/null
for g in pod1 pod2; do wait_for 5 grep -q sent "$WORK/$g.log"; done
sleep 0.3
snap after
d() { echo $(( ${after[$1]:-0} - ${before[$1]:-0} )); }
check_eq "ns1/vm-a: 12 frames from the guest, none to it" "12 0" "$(d 1.p.tx) $(d 1.p.rx)"
check_eq "ns2/vm-a: 3 frames from the guest, 5 to it" "3 5" "$(d 2.p.tx) $(d 2.p.rx)"
for k in 1 2; do
	check_num "ns$k/vm-a: frames from the guest = its tap's rx_packets" "$(d $k.rx_packets)" "$(d $k.p.tx)"
	check_num "ns$k/vm-a: bytes from the guest = its tap's rx_bytes" "$(d $k.rx_bytes)" "$(d $k.b.tx)"
	check_num "ns$k/vm-a: frames to the guest = its tap's tx_packets + tx_dropped" \
		"$(( $(d $k.tx_packets) + $(d $k.tx_dropped) ))" "$(d $k.p.rx)"
done
check_num "no attach error under the chart's capabilities" 0 "$(metric "$WORK/s.txt" vmprobe_attach_errors_total)"
check_eq "the log names no failure" "" "$(grep -E '^vmprobe: (warn|error):' "$WORK/vmprobe.log")"
disk_line=$(grep -o 'disk sources: .*' "$WORK/vmprobe.log")
stop_vmprobe; rc=$?
check_eq "SIGTERM exits 0 (filters detached with the chart's capabilities)" 0 "$rc"
check_eq "no vmprobe program is left on the pods' taps" "" \
	"$(for ns in "$NS1" "$NS2"; do vmprobe_progs "$ns" $PTAP; done)"
if [ -n "$disk_line" ]; then
	run_vmprobe "$(capsh --print 2>/dev/null | sed -n 's/^Bounding set =//p' | tr -d ' ' | sed 's/cap_//g' | tr 'a-z' 'A-Z')"
	full=$(grep -o 'disk sources: .*' "$WORK/vmprobe.log")
	stop_vmprobe
	check_eq "the disk probe attaches the same sources as with every capability" "$full" "$disk_line"
fi

# Without each capability. SYS_ADMIN, NET_ADMIN (clsact), SYS_PTRACE,
# DAC_READ_SEARCH: the pods' VMs are not counted. SYSLOG: they are, and
# the log says aio=native takes the costlier hooks. BPF and PERFMON: the
# kernel's bpf_capable() and perfmon_capable() accept SYS_ADMIN too, so
# each alone changes nothing; without SYS_ADMIN as well vmprobe cannot load.
IFS=, read -ra caplist <<<"$CAPS"
without() { printf '%s\n' "${caplist[@]}" | grep -vxE "$1" | paste -sd,; }
hidden_ksyms() { # /proc/kallsyms hides addresses from those without CAP_SYSLOG
	local kptr paranoid
	kptr=$(sysctl -n kernel.kptr_restrict) paranoid=$(sysctl -n kernel.perf_event_paranoid)
	[ "$kptr" = 1 ] || { [ "$kptr" = 0 ] && [ "$paranoid" -gt 1 ]; }
}
for drop in "${caplist[@]}"; do
	rest=$(without "$drop")
	config=vmprobe.yaml
	case $drop in
	BPF | PERFMON)
		if run_vmprobe "$rest" && wait_for 10 both_counted; then
			tap_ok "without $drop alone, SYS_ADMIN stands in: the pods' VMs are counted"
		else
			tap_fail "without $drop alone, SYS_ADMIN stands in: the pods' VMs are counted" "$(tail -3 "$WORK/vmprobe.log")"
		fi
		stop_vmprobe
		rest=$(without "$drop|SYS_ADMIN")
		if run_vmprobe "$rest"; then
			tap_fail "without $drop and SYS_ADMIN, vmprobe cannot load its probes" "it served"
		else
			check_eq "without $drop and SYS_ADMIN, vmprobe cannot load its probes, and says CAP_$drop is what it lacks" \
				"CAP_$drop" "$(caps_named "$WORK/vmprobe.log")"
		fi
		stop_vmprobe
		continue ;;
	SYSLOG)
		if ! hidden_ksyms; then
			tap_skip "without SYSLOG" "kernel.kptr_restrict and perf_event_paranoid show kernel addresses to all here"
			continue
		fi
		if run_vmprobe "$rest" && wait_for 10 both_counted; then
			check "without SYSLOG the pods' VMs are counted and the log says aio=native takes io_submit + block_getrq" \
				grep -q "aio=native: kernel symbols unreadable or missing, using io_submit + block_getrq" "$WORK/vmprobe.log"
		else
			tap_fail "without SYSLOG the pods' VMs are counted" "$(tail -3 "$WORK/vmprobe.log")"
		fi
		stop_vmprobe
		continue ;;
	NET_ADMIN)
		if have_tcx; then
			# TCX links need no NET_ADMIN; clsact filters, the hook without TCX, do.
			run_vmprobe "$rest"
			check "without NET_ADMIN, from TCX links, vmprobe still counts the pods' VMs" \
				wait_for 2 both_counted
			stop_vmprobe
			config=vmprobe-clsact.yaml
		fi ;;
	esac
	if ! run_vmprobe "$rest" "$config"; then
		tap_ok "without $drop, vmprobe cannot run ($(grep -E '^vmprobe: error' "$WORK/vmprobe.log" | head -1 | cut -c1-100))"
		stop_vmprobe
		continue
	fi
	if wait_for 2 both_counted; then
		tap_fail "without $drop, vmprobe cannot count the pods' VMs ($config)" "they were counted: $drop is not needed"
	else
		why=$(grep -E '^vmprobe: (warn|error):' "$WORK/vmprobe.log" | head -1 | cut -c1-100)
		tap_ok "without $drop, vmprobe cannot count the pods' VMs ($config; ${why:-VMs not discovered})"
		# rtnetlink asks for NET_ADMIN itself: SYS_ADMIN does not stand in.
		[ "$drop" = NET_ADMIN ] &&
			check "without NET_ADMIN the log says its clsact filters lack CAP_NET_ADMIN" \
				grep -q "cannot count tap .*: Operation not permitted: vmprobe lacks CAP_NET_ADMIN (.*): grant it, or run as root" \
				"$WORK/vmprobe.log"
	fi
	stop_vmprobe
done
tap_done

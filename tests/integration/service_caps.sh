#!/bin/bash
# vmprobe serve as its systemd unit runs it: as the unit's User=, not root,
# with exactly the unit's capabilities (read from
# packaging/vmprobe.service.in, so that the two cannot drift), its
# ExecStartPre run as root and /run/vmprobe made as RuntimeDirectory=
# makes it (systemd cannot run services on every test machine; setpriv
# gives the process the same credentials). A stand-in VM owned by another
# user (nobody, as libvirt-qemu), its tap opened by root and passed by fd
# as libvirt does, is discovered, its frames counted exactly (against the
# tap's own counters) and its drive's reads exactly. Then serve runs
# without each capability in turn, and the log or a metric must say what
# is not measured: never a silent zero.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "vmprobe serve with the systemd unit's capabilities" tun
if ! command -v setpriv >/dev/null || ! command -v capsh >/dev/null; then
	tap_skip "vmprobe serve with the systemd unit's capabilities" "needs setpriv (util-linux) and capsh (libcap2-bin)"
	tap_done; exit
fi

UNIT=$REPO/packaging/vmprobe.service.in
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -1; }
SVC_USER=$(unit_value User)
read -ra CAPS <<<"$(unit_value AmbientCapabilities)"
check_eq "the unit's bounding set is its ambient set" "${CAPS[*]}" "$(unit_value CapabilityBoundingSet)"
check "the unit runs as a user of its own, not root" test -n "$SVC_USER" -a "$SVC_USER" != root

# The sets systemd computes from the whole unit: other directives can take
# capabilities out (ProtectKernelLogs=yes takes CAP_SYSLOG).
unit_set() { # TMPDIR FIELD: the unit's FIELD (CapabilityBoundingSet...) as systemd loads it
	sed -e "s|@SBINDIR@/vmprobe|$VMPROBE|" -e 's|@SYSCONFDIR@|/etc|' "$UNIT" >"$1/vmprobe.service"
	SYSTEMD_LOG_LEVEL=debug systemd-analyze verify --man=no "$1/vmprobe.service" 2>/dev/null |
		awk -v f="$2:" '$1 == f { $1 = ""; print; exit }' | tr ' ' '\n' | grep . |
		tr 'a-z' 'A-Z' | sort | paste -sd' '
}
want=$(printf '%s\n' "${CAPS[@]}" | sort | paste -sd' ')
TMPU=$(mktemp -d /tmp/vmprobe-unit.XXXXXX)
for field in CapabilityBoundingSet AmbientCapabilities; do
	got=$(command -v systemd-analyze >/dev/null && unit_set "$TMPU" $field)
	if [ -z "$got" ]; then
		tap_skip "systemd gives the unit exactly its capabilities ($field)" "systemd-analyze shows no $field here"
	else
		check_eq "systemd gives the unit exactly its capabilities ($field)" "$want" "$got"
	fi
done
rm -rf "$TMPU"

WORK=$(mktemp -d /tmp/vmprobe-caps.XXXXXX)
chmod 755 "$WORK" # the config is read by the unit's user
PORT=19651 TAP=vmpc-t0 NS=vmpc-ns PTAP=vmpc-p0 VM= VM2=
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	for p in $VM $VM2; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip link del "$TAP" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	"$VMPROBE" uninstall >/dev/null 2>&1
	rm -rf /run/vmprobe
	[ -z "$MADE_USER" ] || userdel "$SVC_USER" >/dev/null 2>&1
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
MADE_USER=
trap cleanup EXIT

if [ -e /run/vmprobe/serve.lock ] && ! flock -n /run/vmprobe/serve.lock true; then
	tap_skip "vmprobe serve with the systemd unit's capabilities" "another vmprobe serve is running"
	tap_done; exit
fi
# The unit's user, made as the package makes it.
# Made here, it goes at the end: the machine is left as found.
id -u "$SVC_USER" >/dev/null 2>&1 ||
	{ systemd-sysusers "$REPO/packaging/vmprobe.sysusers" && MADE_USER=1; }
check "the unit's user exists" id -u "$SVC_USER"

# Runs COMMAND as the unit's user with capabilities CAP... (CAP_X names)
# in every set, as systemd's User=, CapabilityBoundingSet= and
# AmbientCapabilities= make them. It execs: run it in a subshell, or in
# the background (then $! is COMMAND's pid).
as_unit() { # CAP... -- COMMAND...
	local set=-all
	while [ "$1" != -- ]; do set+=",+$(tr 'A-Z' 'a-z' <<<"${1#CAP_}")"; shift; done
	shift
	exec setpriv --reuid="$SVC_USER" --regid="$SVC_USER" --init-groups --inh-caps="$set" \
		--ambient-caps="$set" --bounding-set="$set" "$@"
}

# Starts serve as the unit does, with capabilities CAP...; fails if it
# does not serve within 10 s (the log says why).
serve_as() {
	local pre
	# RuntimeDirectory=: made for the unit's user at start, removed at stop.
	rm -rf /run/vmprobe
	install -d -o "$SVC_USER" -g "$SVC_USER" -m "$(unit_value RuntimeDirectoryMode)" /run/vmprobe
	# ExecStartPre=, as root ("+"), failure ignored ("-").
	pre=$(unit_value ExecStartPre)
	${pre#-+} 2>/dev/null
	cat >"$WORK/vmprobe.yaml" <<YAML
listen: "127.0.0.1:$PORT"
discovery:
  rescan_interval_ms: 200
vcpu:
  enabled: true
YAML
	# The unit's flags (--persist), with this test's config.
	read -ra flags <<<"$(unit_value ExecStart | sed 's/.* serve //; s/ -c .*//')"
	as_unit "$@" -- "$VMPROBE" serve "${flags[@]}" -c "$WORK/vmprobe.yaml" >"$WORK/vmprobe.log" 2>&1 &
	VMPROBE_PID=$!
	VMPROBE_URL="http://127.0.0.1:$PORT/metrics"
	wait_for 10 curl -sf -o /dev/null "$VMPROBE_URL"
}
# Stops serve, and removes what it persisted (as root), for the next run to start clean.
serve_end() { vmprobe_stop >/dev/null 2>&1; "$VMPROBE" uninstall >/dev/null 2>&1; rm -rf /run/vmprobe; }

# The stand-in VM: a tap and a drive, run as nobody (the tap opened as
# root and passed by fd), its image in a directory only nobody may read.
ip link del "$TAP" 2>/dev/null
ip tuntap add dev "$TAP" mode tap
sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=1"
ip link set "$TAP" up
mkdir -m 700 "$WORK/img"
truncate -s 1M "$WORK/img/d0.img"
chmod 600 "$WORK/img/d0.img"
chown -R nobody: "$WORK/img"
QEMU=$(tapguest_dir)
export TAPGUEST_BURST="10:60,5:1514" TAPGUEST_READS=8
TAPGUEST_PASS_FD=1 TAPGUEST_RUN_AS="$(id -u nobody):$(id -g nobody)" "$QEMU" -name guest=caps-vm,debug-threads=on \
	-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no" \
	-drive "file=$WORK/img/d0.img,format=raw,if=none,id=d0,cache=none,aio=threads" \
	-device virtio-blk-pci,drive=d0,id=disk0 >"$WORK/vm.out" 2>&1 &
VM=$!
check "the stand-in VM runs as nobody" wait_for 5 grep -q "^ready 1 taps" "$WORK/vm.out"
check_eq "the stand-in VM is another user's" "$(id -u nobody)" "$(stat -c %u "/proc/$VM")"

# --- vmprobe check agrees: only CAP_SYS_ADMIN (not granted) is short.
rc=0
(as_unit "${CAPS[@]}" -- "$VMPROBE" check) >"$WORK/check.txt" 2>&1 || rc=$?
check_eq "vmprobe check with the unit's capabilities exits 1 (runs, measuring less)" 1 "$rc"
check_eq "and only CAP_SYS_ADMIN is short" "degraded privilege CAP_SYS_ADMIN" \
	"$(grep -E '^(degraded|missing) ' "$WORK/check.txt" | awk '{ print $1, $2, $3 }')"

# --- With the unit's capabilities: everything measured, exactly.
if ! serve_as "${CAPS[@]}"; then
	tap_fail "serve starts with the unit's capabilities" "$(cat "$WORK/vmprobe.log")"
	tap_done; exit
fi
tap_ok "serve starts with the unit's capabilities"
check_eq "serve runs as the unit's user" "$(id -u "$SVC_USER")" "$(stat -c %u "/proc/$VMPROBE_PID")"
caps_of() { # PID FIELD: capability names, sorted
	capsh --decode="$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status")" |
		sed 's/.*=//' | tr ',' '\n' | tr 'a-z' 'A-Z' | sort | paste -sd' '
}
check_eq "serve's effective capabilities are the unit's" "$want" "$(caps_of "$VMPROBE_PID" CapEff)"
check_eq "serve's bounding set is the unit's" "$want" "$(caps_of "$VMPROBE_PID" CapBnd)"

measured() { # KIND(drive|interface) LABEL=VALUE
	scrape "$WORK/m.txt" &&
		[ "$(metric "$WORK/m.txt" "vmprobe_${1}_info" name=caps-vm "$2" measured=true)" = 1 ]
}
check "the other user's VM is discovered" wait_for 10 grep -q "found VM caps-vm" "$WORK/vmprobe.log"
check "its tap is measured" wait_for 10 measured interface tap="$TAP"
check "its drive is measured" wait_for 10 measured drive drive=disk0
# Its vCPU thread (the stand-in's "CPU 0/TCG", another user's thread) is
# marked through a pidfd: no capability beyond the unit's.
check "its vCPU thread is measured (vcpu.enabled)" wait_for 10 measured vcpu reason=
check_eq "... the one thread" 1 "$(metric "$WORK/m.txt" vmprobe_vcpu_threads name=caps-vm)"
scrape_with_tap "$TAP" "$WORK/s0.txt"
declare -A T0
for k in "${!TAPC[@]}"; do T0[$k]=${TAPC[$k]}; done
kill -USR1 "$VM"
kill -USR2 "$VM"
"$TAPGUEST" inject "$TAP" 7 100 >/dev/null
check "the stand-in VM sent its frames and read its drive" \
	wait_for 5 grep -q "^read 8$" "$WORK/vm.out"
wait_for 5 grep -q "^sent" "$WORK/vm.out"
sleep 0.5
scrape_with_tap "$TAP" "$WORK/s1.txt"
d() { metric_delta "$WORK/s0.txt" "$WORK/s1.txt" "$@" name=caps-vm; }
check_num "frames from the guest = the tap's rx_packets" \
	"$((TAPC[rx_packets] - T0[rx_packets]))" "$(d vmprobe_network_packet_size_bytes_count direction=tx)"
check_num "bytes from the guest = the tap's rx_bytes" \
	"$((TAPC[rx_bytes] - T0[rx_bytes]))" "$(d vmprobe_network_packet_size_bytes_sum direction=tx)"
check_num "frames to the guest = the tap's tx_packets + tx_dropped" \
	"$((TAPC[tx_packets] + TAPC[tx_dropped] - T0[tx_packets] - T0[tx_dropped]))" \
	"$(d vmprobe_network_packet_size_bytes_count direction=rx)"
check_num "bytes to the guest = the tap's tx_bytes" \
	"$((TAPC[tx_bytes] - T0[tx_bytes]))" "$(d vmprobe_network_packet_size_bytes_sum direction=rx)"
check_num "and they are the 15 frames sent" 15 "$(d vmprobe_network_packet_size_bytes_count direction=tx)"
check_num "the drive's reads: the 8 preads" 8 "$(d vmprobe_disk_latency_seconds_count drive=disk0 operation=read)"
check_num "the drive's bytes read" $((8 * 4096)) "$(d vmprobe_disk_request_size_bytes_sum drive=disk0 operation=read)"
check_eq "every disk source is on" "1 1 1" "$(for s in threads io_uring native; do
	metric "$WORK/s1.txt" vmprobe_disk_source_enabled source=$s; done | paste -sd' ')"
check_eq "nothing in the log is a warning or an error" "" "$(grep -E ': (warn|error):' "$WORK/vmprobe.log")"
check "the maps are pinned for top and hist" test -e /sys/fs/bpf/vmprobe/net/net_stats
check "the unit persists: the tap's links are pinned too" test -e /sys/fs/bpf/vmprobe/net/links/tap0_in

# A restart as the unit's user (systemctl restart): the next serve adopts
# the programs and counters, with no capability beyond the unit's, and
# what went on the tap while none ran is counted.
vmprobe_stop >/dev/null 2>&1
kill -USR1 "$VM"
"$TAPGUEST" inject "$TAP" 7 100 >/dev/null
sleep 0.5
if serve_as "${CAPS[@]}"; then
	tap_ok "a restart with the unit's capabilities serves"
	check "it adopts the earlier serve's programs and counters" \
		grep -q "net probe: adopting the programs and counters" "$WORK/vmprobe.log"
	scrape_with_tap "$TAP" "$WORK/s2.txt"
	check_num "frames from the guest, the restart's gap included = the tap's rx_packets" \
		"$((TAPC[rx_packets] - T0[rx_packets]))" \
		"$(metric_delta "$WORK/s0.txt" "$WORK/s2.txt" vmprobe_network_packet_size_bytes_count name=caps-vm direction=tx)"
	check_num "frames to the guest, the gap included = the tap's tx_packets + tx_dropped" \
		"$((TAPC[tx_packets] + TAPC[tx_dropped] - T0[tx_packets] - T0[tx_dropped]))" \
		"$(metric_delta "$WORK/s0.txt" "$WORK/s2.txt" vmprobe_network_packet_size_bytes_count name=caps-vm direction=rx)"
	check_eq "nothing in the restart's log is a warning or an error" "" "$(grep -E ': (warn|error):' "$WORK/vmprobe.log")"
else
	tap_fail "a restart with the unit's capabilities serves" "$(cat "$WORK/vmprobe.log")"
fi

# Without CAP_SYS_ADMIN (not in the unit): a VM in another network
# namespace (a KubeVirt pod's) is listed and its tap declared unmeasured.
ip netns del "$NS" 2>/dev/null
ip netns add "$NS"
ip netns exec "$NS" ip tuntap add dev "$PTAP" mode tap
ip netns exec "$NS" ip link set "$PTAP" up
ip netns exec "$NS" "$QEMU" -name guest=caps-pod-vm -netdev "tap,id=n0,ifname=$PTAP" \
	>"$WORK/vm2.out" 2>&1 &
VM2=$!
unmeasured_ns() {
	scrape "$WORK/m.txt" && metric "$WORK/m.txt" vmprobe_interface_info name=caps-pod-vm \
		measured=false "reason=cannot enter the VM's network namespace: Operation not permitted" |
		grep -qx 1
}
check "no CAP_SYS_ADMIN: a VM in another network namespace has its tap declared unmeasured" \
	wait_for 10 unmeasured_ns
sleep 1 # a few more scans
check_eq "and the log says so, once, naming CAP_SYS_ADMIN" 1 \
	"$(grep -c "cannot enter the network namespace of VM caps-pod-vm .*: Operation not permitted (vmprobe needs CAP_SYS_ADMIN" "$WORK/vmprobe.log")"
kill "$VM2"; wait "$VM2" 2>/dev/null; VM2=
serve_end

# --- Without each capability: what goes unmeasured is said.
without() { # CAP: the unit's capabilities but CAP
	local c out=()
	for c in "${CAPS[@]}"; do [ "$c" != "$1" ] && out+=("$c"); done
	echo "${out[@]}"
}
has_cap() { [[ " ${CAPS[*]} " == *" $1 "* ]]; }
unmeasured() { # KIND(drive|interface) [LABEL=VALUE]: declared unmeasured, with a reason
	scrape "$WORK/m.txt" &&
		[ "$(metric "$WORK/m.txt" "vmprobe_${1}_info" name=caps-vm ${2:+"$2"} measured=false)" = 1 ] &&
		! grep -E "^vmprobe_${1}_info\{name=\"caps-vm\".*measured=\"false\",reason=\"\"" "$WORK/m.txt"
}

for cap in CAP_BPF CAP_PERFMON CAP_NET_ADMIN; do
	has_cap $cap || { tap_skip "without $cap" "not in the unit"; continue; }
	# shellcheck disable=SC2046
	if serve_as $(without $cap); then
		tap_fail "without $cap serve refuses to start" "it served; log: $(cat "$WORK/vmprobe.log")"
	else
		wait "$VMPROBE_PID"; rc=$?; VMPROBE_PID=
		check_eq "without $cap serve exits 1" 1 "$rc"
		check_eq "without $cap the log says a probe cannot load, and that $cap is what it lacks" \
			"$cap" "$(caps_named "$WORK/vmprobe.log")"
	fi
	serve_end
	# With no serve, top loads probes of its own: the same one line, nothing of libbpf's.
	install -d -o "$SVC_USER" -g "$SVC_USER" -m "$(unit_value RuntimeDirectoryMode)" /run/vmprobe
	# shellcheck disable=SC2046
	(as_unit $(without $cap) -- "$VMPROBE" top -b -n 1) >/dev/null 2>"$WORK/top.err"
	check_eq "without $cap top exits 1" 1 "$?"
	check_eq "without $cap top says one line, naming $cap (no libbpf line, no second error)" \
		"1 $cap" "$(grep -c . "$WORK/top.err") $(caps_named "$WORK/top.err")"
	rm -rf /run/vmprobe
done

# /run/vmprobe as the unit leaves it while it runs, or if it is killed:
# its user's. Root without CAP_DAC_OVERRIDE (the chart's pod) cannot
# write in it, and says whose it is.
install -d -o "$SVC_USER" -g "$SVC_USER" -m "$(unit_value RuntimeDirectoryMode)" /run/vmprobe
setpriv --bounding-set=-all,+bpf,+perfmon,+net_admin,+sys_ptrace,+dac_read_search,+syslog,+sys_admin \
	--inh-caps=-all "$VMPROBE" serve -c "$WORK/vmprobe.yaml" >"$WORK/rundir.log" 2>&1
check_eq "root without CAP_DAC_OVERRIDE, /run/vmprobe the unit user's: serve exits 1" 1 "$?"
check "and says whose /run/vmprobe is" grep -qF "error: cannot lock /run/vmprobe/serve.lock: Permission denied (/run/vmprobe is uid $(id -u "$SVC_USER")'s, mode 0755: without CAP_DAC_OVERRIDE, remove it)" "$WORK/rundir.log"
rm -rf /run/vmprobe

# In a user namespace of its own vmprobe holds every capability, of that
# namespace: the kernel takes none of them for BPF. The log says so, and
# names no capability (capget shows them all).
if unshare --user --map-root-user true 2>/dev/null; then
	timeout 30 unshare --user --map-root-user "$VMPROBE" serve -c "$WORK/vmprobe.yaml" \
		>"$WORK/userns.log" 2>&1
	check_eq "in a user namespace serve exits 1" 1 "$?"
	check "in a user namespace the log says so instead of naming a capability" \
		grep -qE "error: loading the [a-z-]+ probe failed \(Operation not permitted\): vmprobe runs in a user namespace" \
		"$WORK/userns.log"
	serve_end
else
	tap_skip "serve in a user namespace" "unshare --user is not allowed here"
fi

cap=CAP_SYS_PTRACE
if has_cap $cap && serve_as $(without $cap); then
	check "without $cap the log says the other user's VM is not measured" \
		wait_for 10 grep -q "VM caps-vm is not measured (vmprobe needs CAP_SYS_PTRACE" "$WORK/vmprobe.log"
	listed() { scrape "$WORK/m.txt" && [ "$(metric "$WORK/m.txt" vmprobe_vm_info name=caps-vm)" = 1 ]; }
	check "without $cap the VM is still listed" wait_for 5 listed
	check "without $cap its drive is declared unmeasured, with a reason" wait_for 10 unmeasured drive drive=disk0
	check "without $cap its NIC is declared unmeasured, with a reason" wait_for 10 unmeasured interface
	check_range "without $cap attach errors are counted" 1 1000000 "$(metric "$WORK/m.txt" vmprobe_attach_errors_total)"
else
	tap_fail "serve starts without $cap" "$(cat "$WORK/vmprobe.log")"
fi
serve_end

cap=CAP_DAC_READ_SEARCH
if has_cap $cap && serve_as $(without $cap); then
	check "without $cap the log says tracefs is not readable" \
		grep -q "tracefs at /sys/kernel/tracing is not readable by vmprobe" "$WORK/vmprobe.log"
	scrape "$WORK/m.txt"
	check_eq "without $cap the aio=threads and io_uring sources say they are off" "0 0" \
		"$(for s in threads io_uring; do metric "$WORK/m.txt" vmprobe_disk_source_enabled source=$s; done | paste -sd' ')"
	check "without $cap the log says the VM's fds are not readable" \
		wait_for 10 grep -q "cannot read /proc/$VM/fd: Permission denied" "$WORK/vmprobe.log"
	check "without $cap its drive is declared unmeasured, with a reason" wait_for 10 unmeasured drive drive=disk0
else
	tap_fail "serve starts without $cap" "$(cat "$WORK/vmprobe.log")"
fi
serve_end

# /proc/kallsyms hides addresses from those without CAP_SYSLOG only when
# kernel.kptr_restrict is 1, or 0 with kernel.perf_event_paranoid > 1.
cap=CAP_SYSLOG
kptr=$(sysctl -n kernel.kptr_restrict) paranoid=$(sysctl -n kernel.perf_event_paranoid)
if ! { [ "$kptr" = 1 ] || { [ "$kptr" = 0 ] && [ "$paranoid" -gt 1 ]; }; }; then
	tap_skip "without $cap" "kernel.kptr_restrict=$kptr, perf_event_paranoid=$paranoid: CAP_SYSLOG changes nothing here"
elif has_cap $cap && serve_as $(without $cap); then
	check "without $cap the log says aio=native falls back to io_submit + block_getrq" \
		grep -q "aio=native: kernel symbols unreadable or missing, using io_submit + block_getrq" \
		"$WORK/vmprobe.log"
	check "without $cap the VM's drive is still measured" wait_for 10 measured drive drive=disk0
else
	tap_fail "serve starts without $cap" "$(cat "$WORK/vmprobe.log")"
fi
serve_end
tap_done

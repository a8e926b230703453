# shellcheck shell=bash
# A stand-in VM for the restart tests (pins.sh, upgrade_builds.sh):
# tests/tools/tapguest named pin-vm, with a tap ($TAP) and an aio=threads
# drive (disk0) it reads with pread(2), so that its frames and reads are
# known exactly; and the persistent serves restarted beside it.
# Needs REPO, WORK, PORT and TAP set, tests/lib/tap.sh and vmprobe.sh
# sourced.

VM=
# The tap, made anew (after what a killed run left is removed).
pinvm_tap() {
	ip link del "$TAP" 2>/dev/null
	"$VMPROBE" uninstall >/dev/null 2>&1
	ip tuntap add dev "$TAP" mode tap && ip link set "$TAP" up &&
		sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=1"
}
# At exit: the serve, the VM, what serve left, the tap and $WORK (unless KEEP is set).
pinvm_cleanup() {
	vmprobe_stop >/dev/null 2>&1
	[ -n "$VM" ] && kill "$VM" 2>/dev/null && wait "$VM" 2>/dev/null
	"$VMPROBE" uninstall >/dev/null 2>&1
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}

export TAPGUEST_BURST=10:300 TAPGUEST_READS=8
start_vm() {
	truncate -s 1M "$WORK/thr.img"
	"$(tapguest_dir)" -name guest=pin-vm -netdev tap,id=n0,ifname="$TAP" \
		-device virtio-net-pci,netdev=n0,id=net0 \
		-drive "file=$WORK/thr.img,format=raw,if=none,id=thr,cache=none,aio=threads" \
		-device virtio-blk-pci,drive=thr,id=disk0 >"$WORK/vm.out" 2>&1 &
	VM=$!
}

# A serve ($VMPROBE: a caller may run another build's) in the background,
# answering once its first scan is done: the VM is counted by then. Host
# block latency is off, as in host_tax.sh: it hooks block completion on
# purpose, VM or not. Each serve's log is kept in $WORK/serves.log; the
# running one's in $WORK/vmprobe.log. PINVM_YAML: more of it, for every serve.
serve() { # EXTRA_YAML [FLAGS...]
	cat "$WORK/vmprobe.log" >>"$WORK/serves.log" 2>/dev/null
	cat >"$WORK/vmprobe.yaml" <<YAML
listen: "127.0.0.1:$PORT"
log_level: debug
discovery:
  rescan_interval_ms: 200
disk:
  host_block_latency: false
${PINVM_YAML:-}
$1
YAML
	shift
	"$VMPROBE" serve -c "$WORK/vmprobe.yaml" "$@" >"$WORK/vmprobe.log" 2>&1 &
	VMPROBE_PID=$!
	VMPROBE_URL="http://127.0.0.1:$PORT/metrics"
	wait_for 10 curl -sf -o /dev/null "$VMPROBE_URL"
}
stop() { # SIGNAL
	kill -"$1" "$VMPROBE_PID"
	wait "$VMPROBE_PID" 2>/dev/null
	VMPROBE_PID=
}
tx() { scrape "$WORK/m.txt" && metric "$WORK/m.txt" vmprobe_network_packet_size_bytes_count name=pin-vm interface=$TAP direction="${1:-tx}"; }
reads() { scrape "$WORK/m.txt" && metric "$WORK/m.txt" vmprobe_disk_latency_seconds_count name=pin-vm drive=disk0 operation=read; }
counted() { [ -n "$(tx)" ] && [ -n "$(reads)" ]; }
# With PINVM_YAML="$PINVM_CREATED", OpenMetrics carries _created:
PINVM_CREATED="exposition:
  openmetrics_created: true"
# When the tap and the drive began to be counted, as OpenMetrics' _created says.
created() { # tap|drive
	scrape_om "$WORK/om.txt" || return
	if [ "$1" = tap ]; then
		metric "$WORK/om.txt" vmprobe_network_packet_size_bytes_created name=pin-vm interface=$TAP direction=tx
	else
		metric "$WORK/om.txt" vmprobe_disk_latency_seconds_created name=pin-vm drive=disk0 operation=read
	fi
}

# Traffic both ways and 8 reads, whether or not a serve runs.
READS=0
stream() {
	local n0
	n0=$(grep -c '^read' "$WORK/vm.out")
	kill -USR1 "$VM"; kill -USR2 "$VM"
	"$TAPGUEST" inject "$TAP" 7 200 >/dev/null
	wait_for 10 eval '[ "$(grep -c "^read" "$WORK/vm.out")" -gt '"$n0"' ]'
	READS=$((READS + 8))
}

# The tap's counters when counting started afresh (tap_base; none: zero)
# and the reads made by then.
declare -A TAP0=()
READS0=0
tap_base() {
	local f
	for f in rx_packets rx_bytes tx_packets tx_bytes tx_dropped; do TAP0[$f]=$(tapstat "$TAP" $f); done
}

# vmprobe's totals against the tap's own counters and the reads made,
# each since its counting started (TAP0, READS0).
exact() { # WHAT
	local f
	sleep 0.3
	if ! scrape_with_tap "$TAP" "$WORK/exact.txt"; then tap_fail "$1: the tap stays quiet for a scrape"; return; fi
	for f in "${!TAP0[@]}"; do TAPC[$f]=$((TAPC[$f] - TAP0[$f])); done
	check_tap_totals "$1: " "$WORK/exact.txt" pin-vm $TAP
	check_num "$1: the drive's reads = the VM's preads" "$((READS - READS0))" \
		"$(metric "$WORK/exact.txt" vmprobe_disk_latency_seconds_count name=pin-vm drive=disk0 operation=read)"
}
progs() { vmprobe_progs "$TAP" | sort | xargs; }
# Links (of any hook) whose program is one of vmprobe's, by name: one a line.
vmprobe_links() {
	local names
	names=$(for o in net disk vcpu; do readelf -Ws "$REPO/build/bpf/$o.bpf.o"; done |
		awk '$4 == "FUNC" && $5 == "GLOBAL" { print $8 }' | xargs)
	python3 - "$names" <<'PY'
import json, subprocess, sys
names = set(sys.argv[1].split())
progs = {p["id"]: p.get("name", "") for p in json.loads(subprocess.check_output(["bpftool", "-j", "prog", "show"]))}
for l in json.loads(subprocess.check_output(["bpftool", "-j", "link", "show"])):
    n = progs.get(l.get("prog_id"), "")
    if n in names or n.startswith("vmprobe_tap_"):
        print(n)
PY
}
adopted() { grep -q "net probe: adopting the programs and counters" "$WORK/vmprobe.log"; }

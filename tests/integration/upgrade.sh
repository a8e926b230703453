#!/bin/bash
# Zero-gap restarts: a real QEMU guest (TCG) streams traffic (pings both
# ways) and disk IO (O_DIRECT reads and writes on three drives, one per AIO
# mode) while `vmprobe serve` (persist: true) is restarted twice mid-stream,
# once by SIGTERM and once by SIGKILL, with a pause before each new start.
# The programs stay attached and counting while no serve runs, and each new
# serve adopts them and their counters: at the end vmprobe's totals equal
# the tap's own counters and the guest's block statistics exactly, the
# gaps included, and Prometheus, scraping all along, sees no counter reset.
# `vmprobe uninstall` then removes everything.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

tap_require_cmds "restarts that lose no count" qemu-system-x86_64 prometheus losetup
tap_require_root "restarts that lose no count" tun

WORK=$(mktemp -d /tmp/vmprobe-upgrade.XXXXXX)
PORT=19596 PROM_PORT=19597 TAP=vmpt-u0
PROM_PID= LOOP=
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
	"$VMPROBE" uninstall >/dev/null 2>&1
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	ip link del "$TAP" 2>/dev/null
	umount "$WORK/img" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null
"$VMPROBE" uninstall >/dev/null 2>&1

guest_build_or_fail

# As e2e_qemu_disk.sh: images on tmpfs, the native drive a loop device on it.
mkdir -p "$WORK/img"
mount -t tmpfs -o size=64m tmpfs "$WORK/img"
truncate -s 8M "$WORK/img/thr.img" "$WORK/img/uring.img" "$WORK/img/native.img"
LOOP=$(losetup -f --show "$WORK/img/native.img")

guest_tap_add "$TAP"
ip addr add 10.77.0.1/24 dev "$TAP"

# Every serve of the test: persistent, its log appended to $WORK/vmprobe.log.
serve() {
	cat "$WORK/vmprobe.log" >>"$WORK/serves.log" 2>/dev/null
	vmprobe_start $PORT "persist: true"
}
serve || { tap_fail "vmprobe serve (persist: true) starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

prometheus_start_tap $PROM_PORT $PORT

# vda = threads, vdb = io_uring, vdc = native. 100 rounds, 0.2 s apart,
# of 8 blocks written and read per drive, while pings of 600 bytes go both
# ways every 50 ms: a stream of some 25 s that runs through both restarts.
guest_make_initrd "$WORK/initrd" - <<'SH'
st() { for d in vda vdb vdc; do echo "STAT $1 $d $(cat /sys/block/$d/stat)"; done; }
ping -c 1 -W 5 10.77.0.1 >/dev/null
st BEFORE
echo PHASE-BEFORE
sleep 3
ping -q -i 0.05 -s 600 10.77.0.1 >/dev/null &
i=0
while [ $i -lt 100 ]; do
	for d in vda vdb vdc; do
		dd if=/dev/zero of=/dev/$d bs=4096 count=8 seek=$((i * 8)) oflag=direct 2>/dev/null ||
			echo "DD-FAILED write $d $i"
		dd if=/dev/$d of=/dev/null bs=4096 count=8 skip=$((i * 8)) iflag=direct 2>/dev/null ||
			echo "DD-FAILED read $d $i"
	done
	echo "ROUND $i"
	i=$((i + 1))
	sleep 0.2
done
kill %1
sleep 1
st AFTER
echo PHASE-AFTER
sleep 300
SH
NAME=upgrade-vm
guest_three_drives "$WORK/img" "$LOOP" thr
guest_start "$NAME" "$TAP" "$WORK/initrd" "${GUEST_DRIVES[@]}" ||
	{ tap_fail "QEMU guest with three drives starts"; tap_done; exit; }
tap_ok "QEMU guest with three drives starts"

check "the guest reaches its workload" wait_for 90 grep -q PHASE-BEFORE "$GUEST_LOG"
# The "before" counters with the guest frozen, as e2e_qemu_disk.sh does.
guest_paused scrape "$WORK/s0.txt"
check "the guest's drives and tap are counted" test -n \
	"$(metric "$WORK/s0.txt" vmprobe_disk_latency_seconds_count name=$NAME drive=native operation=read)"

rounds() { grep -ac '^ROUND' "$GUEST_LOG"; }
past() { [ "$(rounds)" -ge "$1" ]; }
adopted() { grep -q "net probe: adopting the programs and counters" "$WORK/vmprobe.log" &&
	grep -q "disk probe: adopting the programs and counters" "$WORK/vmprobe.log"; }

# One restart: STOP (TERM or KILL) the serve in the middle of round FROM,
# leave the host without one for 2 s, start another.
restart() { # SIGNAL FROM WHAT
	local sig=$1 from=$2 what=$3 r0 t0
	check "$what: the guest streams (round $from reached)" wait_for 120 past "$from"
	scrape "$WORK/before-$sig.txt"
	kill -"$sig" "$VMPROBE_PID"
	wait "$VMPROBE_PID" 2>/dev/null
	VMPROBE_PID=
	r0=$(rounds) t0=$(tapstat "$TAP" rx_packets)
	check_eq "$what: with no serve running, vmprobe's programs stay on the tap" \
		"vmprobe_tap_egr vmprobe_tap_ing" "$(vmprobe_progs "$TAP" | sort | xargs)"
	sleep 2
	check "$what: traffic and IO went on while no serve ran (frames and rounds in the gap)" \
		test "$(tapstat "$TAP" rx_packets)" -gt "$t0" -a "$(rounds)" -gt "$r0"
	if serve; then tap_ok "$what: the next serve starts"; else tap_fail "$what: the next serve starts" "$(cat "$WORK/vmprobe.log")"; fi
	check "$what: it adopts the programs and counters" adopted
	check "$what: the tap and drives are adopted, not counted anew" \
		grep -q "counting tap $TAP .*: adopted, its counters go on" "$WORK/vmprobe.log"
	check_eq "$what: one program each way on the tap, not two" \
		"vmprobe_tap_egr vmprobe_tap_ing" "$(vmprobe_progs "$TAP" | sort | xargs)"
	scrape "$WORK/after-$sig.txt"
	local b a
	b=$(metric "$WORK/before-$sig.txt" vmprobe_network_packet_size_bytes_count name=$NAME interface=$TAP direction=tx)
	a=$(metric "$WORK/after-$sig.txt" vmprobe_network_packet_size_bytes_count name=$NAME interface=$TAP direction=tx)
	check "$what: the counter went on from where it was ($b -> $a)" test "${a:-0}" -gt "${b:-0}"
}
restart TERM 25 "SIGTERM"
restart KILL 60 "SIGKILL"

check "the guest's workload completes" wait_for 240 grep -q PHASE-AFTER "$GUEST_LOG"
sleep 1
if scrape_with_tap "$TAP" "$WORK/final.txt"; then tap_ok "the tap stays quiet for a scrape"; else tap_fail "the tap stays quiet for a scrape"; fi
cp "$WORK/final.txt" "$WORK/s1.txt"

check_tap_totals "the gaps included: " "$WORK/final.txt" $NAME $TAP

# The workload has no fsync: no flush.
for pair in vda:thr:threads vdb:uring:io_uring vdc:native:native; do
	IFS=: read -r dev drive mode <<<"$pair"
	FSYNCS=0 check_drive_io "$drive ($mode), the gaps included" "$dev" name=$NAME drive="$drive"
	check_num "$drive ($mode): the guest read 100 rounds of 8 blocks" 800 "$(guest_delta "$dev" 1)"
	check_eq "$drive ($mode): none of the guest's reads and writes failed" "" \
		"$(grep -a "^DD-FAILED .* $dev " "$GUEST_LOG" | tr -d '\r' | xargs)"
done

sleep 2
for q in "vmprobe_network_packet_size_bytes_count{name=\"$NAME\"}" "vmprobe_network_packet_size_bytes_sum{name=\"$NAME\"}" \
	"vmprobe_disk_latency_seconds_count{name=\"$NAME\"}" "vmprobe_disk_request_size_bytes_sum{name=\"$NAME\"}"; do
	check_num "Prometheus saw no reset of ${q%%\{*} across both restarts" 0 \
		"$(promql "max(resets(${q}[10m]))")"
done

vmprobe_stop
check "vmprobe uninstall removes what the last serve left" "$VMPROBE" uninstall
check_eq "no vmprobe program is left on the tap" "" "$(vmprobe_progs "$TAP")"
check "nor anything under /sys/fs/bpf/vmprobe" test ! -e /sys/fs/bpf/vmprobe
tap_done

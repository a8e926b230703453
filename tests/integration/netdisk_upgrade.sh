#!/bin/bash
# Zero-gap restarts of the netdisk probe: a real QEMU guest (TCG) whose
# drives are an rbd image on a real single-node Ceph cluster (librbd) and
# an iSCSI LUN of a real tgtd (libiscsi) streams O_DIRECT reads and writes
# on both while `vmprobe serve` (persist: true) is restarted three times
# mid-stream, by SIGTERM, by SIGKILL, and by SIGTERM into another build
# (same map layout, other programs), with a pause before each new start.
# The per-process uprobes stay pinned in QEMU and counting while no serve
# runs; each new serve adopts them and the drives' slots (another build
# moves each hook to its own program, none twice): at the
# end vmprobe's operations and bytes equal the guest's block statistics
# exactly, the gaps included, and Prometheus, scraping all along, sees no
# counter reset. A QEMU that exits while no serve runs has its pins
# released by the next serve; `vmprobe uninstall` leaves no netdisk pin,
# and persist: false leaves none at exit.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"
. "$REPO/tests/lib/netstore.sh"

tap_require_cmds "netdisk restarts that lose no count" qemu-system-x86_64 prometheus bpftool
netstore_require "netdisk restarts that lose no count"
tap_require_root "netdisk restarts that lose no count"

WORK=$(mktemp -d /tmp/vmprobe-ndupgrade.XXXXXX)
PORT=19618 PROM_PORT=19619 TAP=vmpt-ndu0 PROM_PID=
PINS=/sys/fs/bpf/vmprobe/netdisk
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
	"$VMPROBE" uninstall >/dev/null 2>&1
	netstore_stop
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null
"$VMPROBE" uninstall >/dev/null 2>&1

guest_build_or_fail
netstore_start img1:32
ip tuntap add dev "$TAP" mode tap
ip link set "$TAP" up

# Every serve of the test: its log appended to $WORK/serves.log.
serve() { # [EXTRA_YAML]
	cat "$WORK/vmprobe.log" >>"$WORK/serves.log" 2>/dev/null
	vmprobe_start $PORT "${1-persist: true}
exposition:
  openmetrics_created: true"
}
serve || { tap_fail "vmprobe serve (persist: true) starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
prometheus_start_tap $PROM_PORT $PORT

# vda = rbd img1, vdb = iSCSI. 100 rounds, 0.2 s apart, of 8 blocks written
# and read per drive: a stream that runs through the three restarts.
guest_make_initrd "$WORK/initrd" - <<'SH'
st() { for d in vda vdb; do echo "STAT $1 $d $(cat /sys/block/$d/stat)"; done; }
st BEFORE
echo PHASE-BEFORE
sleep 3
i=0
while [ $i -lt 100 ]; do
	for d in vda vdb; do
		dd if=/dev/zero of=/dev/$d bs=4096 count=8 seek=$((i * 8)) oflag=direct 2>/dev/null
		dd if=/dev/$d of=/dev/null bs=4096 count=8 skip=$((i * 8)) iflag=direct 2>/dev/null
	done
	echo "ROUND $i"
	i=$((i + 1))
	sleep 0.2
done
st AFTER
echo PHASE-AFTER
sleep 300
SH
NAME=ndupgrade
GUEST_IP= guest_start "$NAME" "$TAP" "$WORK/initrd" \
	-drive "file=rbd:$CEPH_POOL/img1:conf=$CEPH_CONF,format=raw,if=none,id=r0,cache=none" \
	-device virtio-blk-pci,drive=r0,id=rbd-one \
	-drive "file=$ISCSI_URL,format=raw,if=none,id=i0,cache=none" \
	-device virtio-blk-pci,drive=i0,id=lun1 ||
	{ tap_fail "QEMU guest with an rbd and an iSCSI drive starts"; tap_done; exit; }
tap_ok "QEMU guest with an rbd and an iSCSI drive starts"
QPID=$GUEST_PID

check "the guest reaches its workload" wait_for 90 grep -q PHASE-BEFORE "$GUEST_LOG"
measured() { # FILE
	[ "$(metric "$1" vmprobe_drive_info name=$NAME drive=rbd-one measured=true)" = 1 ] &&
		[ "$(metric "$1" vmprobe_drive_info name=$NAME drive=lun1 measured=true)" = 1 ]
}
check "both network drives are measured" wait_for 30 bash -c \
	"curl -sf '$VMPROBE_URL' >'$WORK/m.txt' && grep -q 'drive=\"lun1\".*measured=\"true\"' '$WORK/m.txt' &&
	 grep -q 'drive=\"rbd-one\".*measured=\"true\"' '$WORK/m.txt'"
# The "before" counters with the guest frozen, as netdisk.sh does.
guest_paused scrape "$WORK/s0.txt"
check "the guest's network drives are counted" measured "$WORK/s0.txt"

rounds() { grep -ac '^ROUND' "$GUEST_LOG"; }
past() { [ "$(rounds)" -ge "$1" ]; }
links() { ls "$PINS/links" 2>/dev/null | grep -c "^${1}_"; }
hooks() { bpftool prog show 2>/dev/null | grep -cE "name (rbd|iscsi)_"; }
ops() { metric "$1" vmprobe_disk_latency_seconds_count name=$NAME drive="$2" operation=read; }
# When the drive began to be counted, as OpenMetrics' _created says.
created() { # DRIVE
	scrape_om "$WORK/om.txt" && metric "$WORK/om.txt" vmprobe_disk_latency_seconds_created name=$NAME drive="$1" operation=read
}

progs() { bpftool prog show name "$1" 2>/dev/null | grep -c "^[0-9]*:"; }

# One restart: STOP (TERM or KILL) the serve in the middle of round FROM,
# leave the host without one for 3 s (BUILD: its pins restamped as another
# build's), start another.
restart() { # SIGNAL FROM WHAT [BUILD]
	local sig=$1 from=$2 what=$3 build=${4:-} r0 n
	check "$what: the guest streams (round $from reached)" wait_for 120 past "$from"
	scrape "$WORK/before-$sig.txt"
	local c0=() d
	for d in rbd-one lun1; do c0+=("$(created $d)"); done
	kill -"$sig" "$VMPROBE_PID"
	wait "$VMPROBE_PID" 2>/dev/null
	VMPROBE_PID=
	r0=$(rounds)
	n=$(links "$QPID")
	check "$what: with no serve running, QEMU's uprobe links stay pinned ($n)" test "$n" -ge 9
	check "$what: and their programs stay loaded" test "$(hooks)" -ge 9
	sleep 3
	check "$what: IO went on while no serve ran (rounds $r0 -> $(rounds))" test "$(rounds)" -gt "$r0"
	[ -n "$build" ] && check "$what: the netdisk pins are stamped as another build's" pin_restamp "$PINS/stamp"
	if serve; then tap_ok "$what: the next serve starts"; else tap_fail "$what: the next serve starts" "$(cat "$WORK/vmprobe.log")"; fi
	check "$what: it adopts the netdisk probe's programs and counters" \
		grep -q "netdisk probe: adopting the programs and counters" "$WORK/vmprobe.log"
	check "$what: QEMU's hooks are adopted, not attached anew" \
		wait_for 10 grep -q "hooked in QEMU (pid $QPID) .*: the earlier serve's hooks adopted" "$WORK/vmprobe.log"
	for d in rbd-one lun1; do
		check "$what: drive $d is adopted, its counters go on" \
			grep -q "counting drive $d .*: adopted, its counters go on" "$WORK/vmprobe.log"
	done
	check "$what: the log says how much was adopted" \
		grep -qE "netdisk probe: adopted (9|10) uprobe links and 2 drive slots" "$WORK/vmprobe.log"
	check_eq "$what: as many links pinned as before, none twice" "$n" "$(links "$QPID")"
	if [ -n "$build" ]; then
		check "$what: the log says its programs are replaced" \
			grep -q "netdisk probe: adopting .*its BPF programs differ from ours and are replaced" \
			"$WORK/vmprobe.log"
		for p in rbd_readv rbd_done iscsi_submit iscsi_done; do
			check_eq "$what: $p is loaded once (the old program went with its link)" 1 "$(progs $p)"
		done
	fi
	scrape "$WORK/after-$sig.txt"
	check "$what: the drives' _created are known (${c0[*]})" test -n "${c0[0]}" -a -n "${c0[1]}"
	check_eq "$what: the drives' _created are the ones they had" "${c0[*]}" \
		"$(created rbd-one) $(created lun1)"
	local b a
	for d in rbd-one lun1; do
		b=$(ops "$WORK/before-$sig.txt" $d) a=$(ops "$WORK/after-$sig.txt" $d)
		check "$what: $d's reads went on from where they were ($b -> $a)" test "${a:-0}" -gt "${b:-0}"
	done
}
restart TERM 20 "SIGTERM"
restart KILL 45 "SIGKILL"
restart TERM 70 "another build" build

check "the guest's workload completes" wait_for 240 grep -q PHASE-AFTER "$GUEST_LOG"
sleep 1
scrape "$WORK/s1.txt"
# The workload has no fsync: no flush.
for pair in vda:rbd-one:rbd vdb:lun1:iscsi; do
	IFS=: read -r dev drive kind <<<"$pair"
	FSYNCS=0 check_drive_io "$drive ($kind), the gaps included" "$dev" name=$NAME drive="$drive"
	check_num "$drive ($kind): the guest read 100 rounds of 8 blocks" 800 "$(guest_delta "$dev" 1)"
done
check_eq "no session was left unmatched" 0 "$(metric "$WORK/s1.txt" vmprobe_netdisk_unmatched_sessions)"

sleep 2
for q in "vmprobe_disk_latency_seconds_count{name=\"$NAME\"}" "vmprobe_disk_request_size_bytes_sum{name=\"$NAME\"}"; do
	check_num "Prometheus saw no reset of ${q%%\{*} across the three restarts" 0 \
		"$(promql "max(resets(${q}[10m]))")"
done
check "Prometheus has the network drives' series" test -n \
	"$(promql "vmprobe_disk_latency_seconds_count{name=\"$NAME\",drive=\"lun1\",operation=\"read\"}")"

# A QEMU that exits while no serve runs: the next serve releases its pins.
vmprobe_stop
guest_stop >/dev/null 2>&1
check "QEMU exited while no serve ran" wait_for 30 bash -c "! kill -0 $QPID"
check "its links are still pinned then" test "$(links "$QPID")" -ge 9
serve || tap_fail "a serve starts after QEMU exited" "$(cat "$WORK/vmprobe.log")"
check "the next serve releases the exited QEMU's links and slots" \
	grep -qE "netdisk probe: adopted 0 uprobe links and 0 drive slots .*released (9|10) links and 2 slots" \
	"$WORK/vmprobe.log"
check_eq "no link of the exited QEMU is left pinned" 0 "$(links "$QPID")"

vmprobe_stop
check "vmprobe uninstall removes what the last serve left" "$VMPROBE" uninstall
check "no netdisk pin is left" test ! -e "$PINS"
check_eq "nor any rbd or iSCSI program loaded" 0 "$(hooks)"

# persist: false, as before: serve leaves nothing at its exit.
serve "" || tap_fail "a serve without persist starts" "$(cat "$WORK/vmprobe.log")"
check "without persist, serve pins the netdisk maps while it runs" test -e "$PINS/netdisk_stats"
vmprobe_stop
check "and leaves no netdisk pin at its exit" test ! -e "$PINS"
tap_done

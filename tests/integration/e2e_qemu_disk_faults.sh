#!/bin/bash
# Disk faults end to end: a real QEMU guest (TCG) with one drive per AIO
# mode (threads, io_uring: images on tmpfs; native: a loop device on
# tmpfs), all with werror=report,rerror=report, does O_DIRECT IO of known
# sizes while the host fails some of it:
#  - the tmpfs is full, so a write into a hole of an image fails (ENOSPC),
#    while writes where the image has data succeed;
#  - the native drive's loop device splits every request into 4 KiB block
#    requests (max_sectors_kb=4), so each of the guest's 16 KiB requests
#    reaches the host disk as four;
#  - the loop device's backing file is 2 KiB shorter than the device, so a
#    read of its last 4 KiB completes in two parts, the second failing.
# Per drive and operation, exactly: each request the guest saw succeed is
# one operation with all its bytes; each one it saw fail is one error and
# nothing else.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

tap_require_cmds "disk faults end to end with a QEMU guest" qemu-system-x86_64 losetup
tap_require_root "disk faults end to end with a QEMU guest"

WORK=$(mktemp -d /tmp/vmprobe-diskfault.XXXXXX)
PORT=19614 TAP=vmpt-df0 LOOP=
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	ip link del "$TAP" 2>/dev/null
	umount "$WORK/img" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null

guest_build_or_fail

# 8 MiB images, their first MiB written (tmpfs pages that exist: writes
# there need no space), the rest holes; then the tmpfs filled up.
mkdir -p "$WORK/img"
mount -t tmpfs -o size=32m tmpfs "$WORK/img"
for f in thr uring native; do
	truncate -s 8M "$WORK/img/$f.img"
	dd if=/dev/zero of="$WORK/img/$f.img" bs=1M count=1 conv=notrunc 2>/dev/null
done
LOOP=$(losetup -f --show "$WORK/img/native.img")
LOOPDEV=${LOOP#/dev/}
echo 4 >"/sys/block/$LOOPDEV/queue/max_sectors_kb"
truncate -s $((8 * 1048576 - 2048)) "$WORK/img/native.img"
dd if=/dev/zero of="$WORK/img/filler" bs=1M 2>/dev/null
check "the images' tmpfs is full" test "$(df --output=avail -k "$WORK/img" | tail -1)" -lt 4

guest_tap_add "$TAP"
vmprobe_start $PORT "network:
  enabled: false" || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
check "vmprobe logs every disk source as on" grep -q \
	"disk sources: threads on, io_uring on, native on" "$WORK/vmprobe.log"

# vda = thr, vdb = uring, vdc = native. Each dd of one request: its exit
# status is whether the guest saw that request succeed.
guest_make_initrd "$WORK/initrd" - <<'SH'
echo PHASE-BEFORE
sleep 3
for d in vda vdb vdc; do
	r=$(dd if=/dev/$d of=/dev/null bs=16384 count=8 iflag=direct 2>/dev/null && echo 8)
	w=$(dd if=/dev/zero of=/dev/$d bs=16384 count=4 oflag=direct 2>/dev/null && echo 4)
	i=0; wb=0
	while [ $i -lt 3 ]; do
		dd if=/dev/zero of=/dev/$d bs=4096 count=1 seek=$((1024 + 64 * i)) oflag=direct \
			2>/dev/null || wb=$((wb + 1))
		i=$((i + 1))
	done
	i=0; rb=0
	if [ $d = vdc ]; then while [ $i -lt 2 ]; do
		dd if=/dev/$d of=/dev/null bs=4096 count=1 skip=2047 iflag=direct \
			2>/dev/null || rb=$((rb + 1))
		i=$((i + 1))
	done; fi
	echo "RESULT $d ${r:-0} ${w:-0} $wb $rb"
done
echo PHASE-AFTER
sleep 300
SH

guest_three_drives "$WORK/img" "$LOOP" thr ,werror=report,rerror=report
GUEST_IP= guest_start df-vm "$TAP" "$WORK/initrd" "${GUEST_DRIVES[@]}" ||
	{ tap_fail "QEMU guest with three drives starts"; tap_done; exit; }
tap_ok "QEMU guest with three drives starts"

check "the guest reaches its workload" wait_for 90 grep -q PHASE-BEFORE "$GUEST_LOG"
guest_paused scrape "$WORK/s0.txt"
check "the guest's workload completes" wait_for 120 grep -q PHASE-AFTER "$GUEST_LOG"
sleep 0.5
scrape "$WORK/s1.txt"
d() { metric_delta "$WORK/s0.txt" "$WORK/s1.txt" "$@"; } # NAME LABELS...
result() { tr -d '\r' <"$GUEST_LOG" | awk -v d="$1" '$1 == "RESULT" && $2 == d { print $3, $4, $5, $6 }'; }

for pair in vda:thr:threads:0 vdb:uring:io_uring:0 vdc:native:native:2; do
	IFS=: read -r dev drive mode rbad <<<"$pair"
	l=(name=df-vm drive="$drive")
	check_eq "$drive ($mode): the guest's requests did as planned (8 reads, 4 writes ok; 3 writes, $rbad reads failed)" \
		"8 4 3 $rbad" "$(result "$dev")"
	check_num "$drive ($mode): reads = the guest's 8 that succeeded" 8 \
		"$(d vmprobe_disk_latency_seconds_count "${l[@]}" operation=read)"
	check_num "$drive ($mode): bytes read = 8 x 16 KiB, whole requests" $((8 * 16384)) \
		"$(d vmprobe_disk_request_size_bytes_sum "${l[@]}" operation=read)"
	check_num "$drive ($mode): read latency samples = reads" 8 \
		"$(d vmprobe_disk_latency_seconds_count "${l[@]}" operation=read)"
	check_num "$drive ($mode): read sizes: 8 requests of 16 KiB (le=16384 minus le=8192)" 8 \
		"$(( $(d vmprobe_disk_request_size_bytes_bucket "${l[@]}" operation=read le=16384) - \
		     $(d vmprobe_disk_request_size_bytes_bucket "${l[@]}" operation=read le=8192) ))"
	check_num "$drive ($mode): read errors = the guest's $rbad failed reads" "$rbad" \
		"$(d vmprobe_disk_errors_total "${l[@]}" operation=read)"
	check_num "$drive ($mode): writes = the guest's 4 that succeeded" 4 \
		"$(d vmprobe_disk_latency_seconds_count "${l[@]}" operation=write)"
	check_num "$drive ($mode): bytes written = 4 x 16 KiB" $((4 * 16384)) \
		"$(d vmprobe_disk_request_size_bytes_sum "${l[@]}" operation=write)"
	check_num "$drive ($mode): write errors = the guest's 3 failed writes (ENOSPC)" 3 \
		"$(d vmprobe_disk_errors_total "${l[@]}" operation=write)"
done
check "promtool check metrics is clean" bash -c "promtool check metrics <'$WORK/s1.txt'"
tap_done

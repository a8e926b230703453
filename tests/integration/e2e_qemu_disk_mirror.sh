#!/bin/bash
# A drive QEMU moves to a new image stays the same drive: a real QEMU guest
# (TCG), no libvirt, two drives named on its command line, one aio=threads
# (an image file) and one aio=native (a loop device). Each in turn is
# mirrored to a new image over QMP (blockdev-add, blockdev-mirror, then
# job-complete: QEMU pivots to the target and closes the source), as
# virsh blockcopy --pivot and Nova's volume swap do. Then the guest does
# O_DIRECT reads, writes and a flush of known sizes: per drive and
# operation, vmprobe's counts under the drive's own labels equal the
# guest's block statistics, and the mirror targets are no drives of their
# own.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

tap_require_cmds "a mirrored drive is counted on its new image" qemu-system-x86_64 losetup
tap_require_root "a mirrored drive is counted on its new image"

WORK=$(mktemp -d /tmp/vmprobe-diskmirror.XXXXXX)
PORT=19616 TAP=vmpt-dm0 LOOPS=()
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
	ip link del "$TAP" 2>/dev/null
	umount "$WORK/img" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null

guest_build_or_fail
mkdir -p "$WORK/img"
mount -t tmpfs -o size=96m tmpfs "$WORK/img"
truncate -s 16M "$WORK/img/src.img" "$WORK/img/dst.img" "$WORK/img/nsrc.img" "$WORK/img/ndst.img"
for f in nsrc ndst; do LOOPS+=("$(losetup -f --show "$WORK/img/$f.img")"); done
guest_tap_add "$TAP"
vmprobe_start $PORT "network:
  enabled: false" || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

# vda = file (threads), vdb = loop (native). The guest polls a sector at
# 8 MiB of each disk until the host marks it ("Z"s), its block statistics
# read just before each poll: the poll that sees the mark is the first
# request after the host's "before" scrape, and the statistics before it
# are the guest's "before". Then the workload, as e2e_qemu_disk.sh's.
guest_make_initrd "$WORK/initrd" - <<'SH'
echo PHASE-READY
st=
until dd if=/dev/vdb bs=512 skip=16384 count=1 iflag=direct 2>/dev/null | grep -q Z; do
	st="$(cat /sys/block/vda/stat)|$(cat /sys/block/vdb/stat)"
	sleep 0.3
done
# The mark on vdb ends the wait; vda's is read once, after it.
dd if=/dev/vda of=/dev/null bs=512 skip=16384 count=1 iflag=direct 2>/dev/null
echo "STAT BEFORE vda ${st%%|*}"
echo "STAT BEFORE vdb ${st##*|}"
for d in vda vdb; do
	dd if=/dev/zero of=/dev/$d bs=4096 count=64 oflag=direct 2>/dev/null
	dd if=/dev/$d of=/dev/null bs=16384 count=32 iflag=direct 2>/dev/null
	dd if=/dev/zero of=/dev/$d bs=65536 count=8 seek=16 oflag=direct conv=fsync 2>/dev/null
done
for d in vda vdb; do echo "STAT AFTER $d $(cat /sys/block/$d/stat)"; done
echo PHASE-AFTER
sleep 300
SH

GUEST_IP= guest_start mirror-vm "$TAP" "$WORK/initrd" \
	-drive "file=$WORK/img/src.img,format=raw,if=none,id=d0,cache=none,aio=threads" \
	-device virtio-blk-pci,drive=d0,id=vol \
	-drive "file=${LOOPS[0]},format=raw,if=none,id=d1,cache=none,aio=native" \
	-device virtio-blk-pci,drive=d1,id=nvol ||
	{ tap_fail "QEMU guest with two drives starts"; tap_done; exit; }
tap_ok "QEMU guest with two drives starts"
check "the guest waits for the host" wait_for 90 grep -q PHASE-READY "$GUEST_LOG"
counted() { scrape && [ -n "$(metric "$WORK/metrics.txt" vmprobe_disk_latency_seconds_count name=mirror-vm drive=nvol)" ]; }
check "both drives are counted" wait_for 20 counted

qmp() { guest_qmp "$GUEST_QMP" "$@"; }
job_ready() { qmp query-block-jobs | grep -q '"ready": true'; }
no_jobs() { [ "$(qmp query-block-jobs)" = "[]" ]; }
moved() { grep -q "drive $1 moved to" "$WORK/vmprobe.log"; }
# mirror DRIVE_ID LABEL TARGET_JSON: the drive onto a new node, pivoted.
mirror() {
	qmp blockdev-add "$3" >/dev/null &&
		qmp blockdev-mirror "{\"job-id\": \"m-$1\", \"device\": \"$1\", \"target\": \"t-$1\", \"sync\": \"full\"}" >/dev/null &&
		wait_for 60 job_ready && qmp job-complete "{\"id\": \"m-$1\"}" >/dev/null && wait_for 60 no_jobs
}
check "drive vol is mirrored to dst.img and pivoted" mirror d0 vol \
	"{\"driver\": \"file\", \"node-name\": \"t-d0\", \"filename\": \"$WORK/img/dst.img\", \"aio\": \"threads\", \"cache\": {\"direct\": true}}"
src_closed() { ! ls -l "/proc/$GUEST_PID/fd" | grep -q src.img; }
check "QEMU closed the source image" wait_for 20 src_closed
check "vmprobe follows drive vol to its new image" wait_for 20 moved vol
check "drive nvol is mirrored to another loop device and pivoted" mirror d1 nvol \
	"{\"driver\": \"host_device\", \"node-name\": \"t-d1\", \"filename\": \"${LOOPS[1]}\", \"aio\": \"native\", \"cache\": {\"direct\": true}}"
check "vmprobe follows drive nvol to its new image" wait_for 20 moved nvol

# The marks, written through QEMU (its own IO, before the "before" scrape)
# while the guest is stopped.
qmp stop >/dev/null
for dr in d0 d1; do
	qmp human-monitor-command "{\"command-line\": \"qemu-io $dr \\\"write -P 0x5a 8M 512\\\"\"}" >/dev/null
done
# qemu-io says nothing back over QMP: the marks are looked for where QEMU wrote them.
marked() { dd if="$1" bs=512 skip=16384 count=1 iflag=direct 2>/dev/null | grep -q Z; }
check "QEMU wrote vol's mark to its new image (dst.img)" marked "$WORK/img/dst.img"
check "QEMU wrote nvol's mark to its new image (${LOOPS[1]})" marked "${LOOPS[1]}"
# The "before" scrape once QEMU's own IO (the marks' read, write and flush)
# is all counted: the guest is stopped, so the drives' counts hold still
# over two scrapes 2 s apart (more than a full sync at the tests' rescan).
# One CI run scraped too soon: each native count was 1 over the guest's.
check "QEMU's own IO on the drives is all counted (their counts hold still)" \
	wait_for 30 scrape_settled "$WORK/s0.txt" 2 'vmprobe_disk_latency_seconds_count{'
qmp cont >/dev/null
check "the guest's workload completes" wait_for 120 grep -q PHASE-AFTER "$GUEST_LOG"
sleep 0.5
scrape "$WORK/s1.txt"

check_drive_io "vol (threads), on its mirror target" vda name=mirror-vm drive=vol
check_drive_io "nvol (native), on its mirror target" vdb name=mirror-vm drive=nvol
for dr in vol nvol; do
	check_num "$dr: the guest's 64 writes of 4 KiB are there (le=4096 minus le=2048)" 64 \
		"$(( $(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_disk_request_size_bytes_bucket name=mirror-vm drive=$dr operation=write le=4096) - \
		     $(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_disk_request_size_bytes_bucket name=mirror-vm drive=$dr operation=write le=2048) ))"
done
check_eq "the VM has two drives, the mirror targets none of their own" "nvol vol" \
	"$(grep '^vmprobe_drive_info{' "$WORK/s1.txt" | grep -o 'drive="[^"]*"' | cut -d'"' -f2 | sort | xargs)"
tap_done

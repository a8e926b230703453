#!/bin/bash
# Hot-plug under a real libvirtd (Debian's libvirt 9.0, a private instance,
# tests/lib/libvirt.sh): `virsh attach-disk --live` and `virsh
# attach-device` of a NIC into a running domain (type qemu, TCG). vmprobe
# learns them from libvirt's live state (the status XML, read through the
# QEMU process's root: libvirtd runs in a mount namespace of its own, as in
# a KubeVirt pod) and labels the drive by its libvirt alias, as cold-plugged
# drives are. The guest does IO of known sizes: vmprobe's operations and
# bytes equal the guest's own block statistics from the first request, and
# libvirt's own `virsh domblkstat` (a trusted peer, same run); the NIC's
# frames equal `virsh domifstat` and the tap's counters. `virsh blockcopy
# --pivot` moves the drive to a new image: the same drive, its counters
# going on, the guest's IO on the new image counted exactly. Detach
# removes the series.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"
. "$REPO/tests/lib/libvirt.sh"

if ! why=$(libvirt_require 2>&1); then
	tap_skip "libvirt hot-plug" "$why"
	tap_done; exit
fi
tap_require_root "libvirt hot-plug" tun

WORK=$(mktemp -d /tmp/vmprobe-libvirt.XXXXXX)
PORT=19617 TAP=vmpt-lv0 HTAP=vmpt-lv1 DOM=lv-hotplug
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	libvirt_stop >/dev/null 2>&1
	ip link del "$TAP" 2>/dev/null
	ip link del "$HTAP" 2>/dev/null
	umount "$WORK/img" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null
ip link del "$HTAP" 2>/dev/null

guest_build_or_fail
mkdir -p "$WORK/img"
mount -t tmpfs -o size=64m tmpfs "$WORK/img"
IMG=$WORK/img/volume.raw
truncate -s 16M "$IMG"
guest_tap_add "$TAP" "$HTAP"
ip addr add 10.79.1.1/24 dev "$HTAP"

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
libvirt_start_or_fail "$WORK/lv"

# The guest has no disk: the hot-plugged one is vda. It uses it, then a
# hot-plugged NIC (eth1), then waits for both to go.
guest_make_initrd "$WORK/initrd" - <<'SH'
echo PHASE-READY
i=0; while [ ! -e /sys/block/vda ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1
dd if=/dev/zero of=/dev/vda bs=4096 count=20 oflag=direct 2>/dev/null
dd if=/dev/vda of=/dev/null bs=16384 count=10 iflag=direct 2>/dev/null
dd if=/dev/zero of=/dev/vda bs=65536 count=4 seek=8 oflag=direct conv=fsync 2>/dev/null
echo "STAT $(cat /sys/block/vda/stat)"
echo PHASE-DISK-DONE
i=0; while [ ! -e /sys/class/net/eth1 ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
# The host moved the drive to a new image (blockcopy --pivot) before the NIC came.
dd if=/dev/zero of=/dev/vda bs=4096 count=12 seek=64 oflag=direct 2>/dev/null
dd if=/dev/vda of=/dev/null bs=8192 count=6 iflag=direct 2>/dev/null
echo "STAT2 $(cat /sys/block/vda/stat)"
ip link set eth1 up
ip addr add 10.79.1.2/24 dev eth1
ping -c 6 -W 2 10.79.1.1 >/dev/null 2>&1
echo PHASE-NET-DONE
i=0; while [ -e /sys/block/vda ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
echo PHASE-UNPLUGGED
sleep 300
SH
GUEST_IP='' libvirt_define_guest_or_fail "$DOM" "$TAP" "$GUEST_KERNEL" "$WORK/initrd"
check "the guest reaches its workload" wait_for 90 grep -q PHASE-READY "$LV_LOG"
seen() { scrape "$WORK/v.txt" && [ -n "$(metric "$WORK/v.txt" vmprobe_vm_info name=$DOM pid="$LV_PID")" ]; }
check "vmprobe sees the domain's QEMU" wait_for 10 seen
check_num "the cold-plugged NIC (fd-passed by libvirt) is measured, labelled by its tap" 1 \
	"$(metric "$WORK/v.txt" vmprobe_interface_info name=$DOM interface=$TAP tap=$TAP measured=true)"

# The drive: attached with the guest paused, so that QEMU's own requests
# on the image (alignment probe) settle before the guest's first one.
$VIRSH suspend "$DOM" >/dev/null
$VIRSH attach-disk "$DOM" "$IMG" vdb --live --targetbus virtio --driver qemu --subdriver raw \
	--cache none >"$WORK/attach.log" 2>&1
check "virsh attach-disk --live" test $? -eq 0
ALIAS=$($VIRSH dumpxml "$DOM" | python3 -c '
import sys, xml.etree.ElementTree as E
for d in E.parse(sys.stdin).getroot().iter("disk"):
    if d.find("target").get("dev") == "vdb":
        print(d.find("alias").get("name"))')
check "libvirt names the drive (its alias)" test -n "$ALIAS"
measured() { scrape "$WORK/m.txt" && [ "$(metric "$WORK/m.txt" vmprobe_drive_info name=$DOM drive="$ALIAS" source=libvirt measured=true)" = 1 ]; }
check "vmprobe measures the drive, labelled by libvirt's alias, learned from libvirt's state" \
	wait_for 10 measured
settled() {
	scrape_settled "$WORK/b.txt" 0.5 "drive=\"$ALIAS\"" &&
	[ -n "$(metric "$WORK/b.txt" vmprobe_disk_latency_seconds_count name=$DOM drive="$ALIAS" operation=read)" ]
}
check "QEMU's own requests on the image settle before the guest runs" wait_for 10 settled
$VIRSH resume "$DOM" >/dev/null
check "the guest's IO on the hot-plugged drive completes" wait_for 90 grep -q PHASE-DISK-DONE "$LV_LOG"
sleep 1
scrape "$WORK/s1.txt"
# domblkstat: rd_req rd_bytes wr_req wr_bytes flush_operations, since the attach.
declare -A LVS
while read -r _ k v; do [ -n "$k" ] && LVS[$k]=$v; done < <($VIRSH domblkstat "$DOM" vdb)
read -r -a gs < <(tr -d '\r' <"$LV_LOG" | awk '$1 == "STAT" { $1 = ""; print; exit }')
m() { # FAMILY OPERATION: since the guest got the drive
	metric_delta "$WORK/b.txt" "$WORK/s1.txt" "$1" name=$DOM drive="$ALIAS" operation="$2"
}
check_num "reads from the first one = the guest's" "${gs[0]:-}" "$(m vmprobe_disk_latency_seconds_count read)"
check_num "reads = libvirt's domblkstat rd_req" "${LVS[rd_req]:-}" "$(m vmprobe_disk_latency_seconds_count read)"
check_num "bytes read = the guest's sectors read x 512" "$(( ${gs[2]:-0} * 512 ))" \
	"$(m vmprobe_disk_request_size_bytes_sum read)"
check_num "bytes read = domblkstat rd_bytes" "${LVS[rd_bytes]:-}" "$(m vmprobe_disk_request_size_bytes_sum read)"
check_num "writes = domblkstat wr_req" "${LVS[wr_req]:-}" "$(m vmprobe_disk_latency_seconds_count write)"
check_num "bytes written = domblkstat wr_bytes = the guest's sectors x 512" "${LVS[wr_bytes]:-}" \
	"$(m vmprobe_disk_request_size_bytes_sum write)"
check_num "bytes written = the guest's sectors written x 512" "$(( ${gs[6]:-0} * 512 ))" \
	"$(m vmprobe_disk_request_size_bytes_sum write)"
check_num "flushes = domblkstat flush_operations" "${LVS[flush_operations]:-}" \
	"$(m vmprobe_disk_latency_seconds_count flush)"
w=$(m vmprobe_disk_latency_seconds_count write) f=$(m vmprobe_disk_latency_seconds_count flush)
check_num "writes + flushes = the guest's completed writes" "${gs[4]:-}" "$(( ${w:-0} + ${f:-0} ))"

# The drive moves to a new image (virsh blockcopy --pivot: a mirror, then
# libvirt's state names the copy under the same alias). The guest is
# paused meanwhile: its next request is on the new image.
COPY=$WORK/img/copy.raw
$VIRSH suspend "$DOM" >/dev/null
$VIRSH blockcopy "$DOM" vdb "$COPY" --format raw --wait --pivot >"$WORK/blockcopy.log" 2>&1
check "virsh blockcopy --pivot onto a new image" test $? -eq 0
check "libvirt's state names the copy" bash -c "$VIRSH dumpxml '$DOM' | grep -q \"source file='$COPY'\""
pivoted() {
	scrape "$WORK/p0.txt"; sleep 0.5; scrape "$WORK/p.txt"
	[ "$(metric "$WORK/p.txt" vmprobe_drive_info name=$DOM drive="$ALIAS" source=libvirt measured=true)" = 1 ] &&
	[ -z "$(grep -F "drive=\"$COPY\"" "$WORK/p.txt")" ] &&
	[ "$(grep -F "drive=\"$ALIAS\"" "$WORK/p0.txt")" = "$(grep -F "drive=\"$ALIAS\"" "$WORK/p.txt")" ]
}
check "after the pivot, one drive: the same alias, measured, the copy no drive of its own" \
	wait_for 30 pivoted
check_num "its counters went on: the guest's writes so far, no more (the copy's are not the guest's)" \
	"$(m vmprobe_disk_latency_seconds_count write)" \
	"$(metric_delta "$WORK/b.txt" "$WORK/p.txt" vmprobe_disk_latency_seconds_count name=$DOM drive="$ALIAS" operation=write)"
$VIRSH resume "$DOM" >/dev/null

# The NIC: libvirt opens the tap and hands QEMU its fd.
cat >"$WORK/nic.xml" <<XML
<interface type='ethernet'>
  <mac address='52:54:00:79:01:02'/>
  <target dev='$HTAP' managed='no'/>
  <model type='virtio'/>
</interface>
XML
$VIRSH attach-device "$DOM" "$WORK/nic.xml" --live >"$WORK/attach-nic.log" 2>&1
check "virsh attach-device --live of a NIC" test $? -eq 0
nic() { scrape "$WORK/n.txt" && [ "$(metric "$WORK/n.txt" vmprobe_interface_info name=$DOM interface=$HTAP tap=$HTAP measured=true)" = 1 ]; }
check "the hot-plugged NIC is measured" wait_for 10 nic
check "the guest's pings on it complete" wait_for 90 grep -q PHASE-NET-DONE "$LV_LOG"
sleep 1
scrape_with_tap "$HTAP" "$WORK/s2.txt"
declare -A IFS_
while read -r _ k v; do [ -n "$k" ] && IFS_[$k]=$v; done < <($VIRSH domifstat "$DOM" "$HTAP")
pk() { metric "$WORK/s2.txt" vmprobe_network_packet_size_bytes_count name=$DOM interface=$HTAP direction="$1"; }
check_num "frames from the guest = the tap's rx_packets" "${TAPC[rx_packets]}" "$(pk tx)"
check_num "frames from the guest = domifstat tx_packets" "${IFS_[tx_packets]:-}" "$(pk tx)"
check_num "frames to the guest = domifstat rx_packets + rx_drop" \
	"$(( ${IFS_[rx_packets]:-0} + ${IFS_[rx_drop]:-0} ))" "$(pk rx)"
check_num "bytes from the guest = domifstat tx_bytes" "${IFS_[tx_bytes]:-}" \
	"$(metric "$WORK/s2.txt" vmprobe_network_packet_size_bytes_sum name=$DOM interface=$HTAP direction=tx)"
# The guest's IO on the new image, between the pivot and its NIC's pings.
read -r -a gs2 < <(tr -d '\r' <"$LV_LOG" | awk '$1 == "STAT2" { $1 = ""; print; exit }')
m2() { # FAMILY OPERATION: since the pivot
	metric_delta "$WORK/p.txt" "$WORK/s2.txt" "$1" name=$DOM drive="$ALIAS" operation="$2"
}
check_num "after the pivot, reads = the guest's" "$(( ${gs2[0]:-0} - ${gs[0]:-0} ))" \
	"$(m2 vmprobe_disk_latency_seconds_count read)"
check_num "after the pivot, bytes read = the guest's sectors x 512" \
	"$(( (${gs2[2]:-0} - ${gs[2]:-0}) * 512 ))" "$(m2 vmprobe_disk_request_size_bytes_sum read)"
check_num "after the pivot, bytes written = the guest's sectors x 512" \
	"$(( (${gs2[6]:-0} - ${gs[6]:-0}) * 512 ))" "$(m2 vmprobe_disk_request_size_bytes_sum write)"
check_num "since the attach, across the pivot, bytes written = the guest's" "$(( ${gs2[6]:-0} * 512 ))" \
	"$(metric_delta "$WORK/b.txt" "$WORK/s2.txt" vmprobe_disk_request_size_bytes_sum name=$DOM drive="$ALIAS" operation=write)"

# Detach: both go from libvirt's state, then from vmprobe's series.
$VIRSH detach-disk "$DOM" vdb --live >"$WORK/detach.log" 2>&1
check "virsh detach-disk --live" test $? -eq 0
$VIRSH detach-device "$DOM" "$WORK/nic.xml" --live >>"$WORK/detach.log" 2>&1
check "virsh detach-device --live of the NIC" test $? -eq 0
disk_gone() { scrape "$WORK/g.txt" && [ -z "$(metric "$WORK/g.txt" vmprobe_drive_info name=$DOM drive="$ALIAS")" ] &&
	[ -z "$(metric "$WORK/g.txt" vmprobe_disk_latency_seconds_count name=$DOM drive="$ALIAS" operation=read)" ]; }
check "the detached drive's series are gone" wait_for 30 disk_gone
nic_gone() { scrape "$WORK/g.txt" && [ -z "$(metric "$WORK/g.txt" vmprobe_interface_info name=$DOM interface=$HTAP)" ] &&
	[ -z "$(metric "$WORK/g.txt" vmprobe_network_packet_size_bytes_count name=$DOM interface=$HTAP direction=rx)" ]; }
check "the detached NIC's series are gone" wait_for 30 nic_gone
check_eq "the detached NIC's tap has no vmprobe program left" "" "$(vmprobe_progs "$HTAP")"
check "the cold NIC is still counted" test -n \
	"$(metric "$WORK/g.txt" vmprobe_network_packet_size_bytes_count name=$DOM interface=$TAP direction=rx)"
tap_done

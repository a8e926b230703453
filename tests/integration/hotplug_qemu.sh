#!/bin/bash
# Hot-plug on a QEMU no libvirt manages: a drive added over QMP
# (blockdev-add + device_add, what Nova and KubeVirt hotplug volumes do
# underneath) and a NIC (netdev_add + device_add) while vmprobe serves.
# The drive is counted from its first request: vmprobe's operations and
# bytes equal the guest's own block statistics since the disk appeared
# (its partition scan included). It is labelled by its image (no device id
# can be learned without libvirt) and listed by `vmprobe list`. The NIC's
# frames equal its tap's counters. A qcow2 overlay hot-plugged the same
# way is one drive: its backing file, which QEMU opens and locks too, is
# not a drive of its own, and the guest's reads that fall through to it
# count on the overlay; the CD-ROM's medium is no drive either. Unplug
# removes the series.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

if ! command -v qemu-system-x86_64 >/dev/null; then
	tap_skip "QMP hot-plug with a QEMU guest" "qemu-system-x86_64 is not installed"
	tap_done; exit
fi
tap_require_root "QMP hot-plug with a QEMU guest"

WORK=$(mktemp -d /tmp/vmprobe-hotplug.XXXXXX)
PORT=19603 TAP=vmpt-hp0 HTAP=vmpt-hp1
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
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
IMG="$WORK/img/hot disk.raw"
truncate -s 16M "$IMG"
COW="$WORK/img/cow.qcow2" BASE="$WORK/img/base.raw" ISO="$WORK/img/cd.iso"
truncate -s 4M "$BASE" "$ISO"
# The backing file named relative to the overlay, as Nova's _base images are not (both work).
(cd "$WORK/img" && qemu-img create -q -f qcow2 -b base.raw -F raw cow.qcow2 4M) ||
	{ tap_fail "qemu-img makes the overlay"; tap_done; exit; }
guest_tap_add "$TAP" "$HTAP"
ip addr add 10.79.0.1/24 dev "$HTAP"

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

# The guest waits for the hot-plugged disk (vda: it has no other) and
# NIC (eth1), uses them, then waits for the disk to go.
guest_make_initrd "$WORK/initrd" - <<'SH'
echo PHASE-READY
i=0; while [ ! -e /sys/block/vda ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1
dd if=/dev/zero of=/dev/vda bs=4096 count=24 oflag=direct 2>/dev/null
dd if=/dev/vda of=/dev/null bs=16384 count=12 iflag=direct 2>/dev/null
dd if=/dev/zero of=/dev/vda bs=65536 count=4 seek=8 oflag=direct conv=fsync 2>/dev/null
echo "STAT $(cat /sys/block/vda/stat)"
echo PHASE-DISK-DONE
i=0; while [ ! -e /sys/class/net/eth1 ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
ip link set eth1 up
ip addr add 10.79.0.2/24 dev eth1
ping -c 5 -W 2 10.79.0.1 >/dev/null 2>&1
echo PHASE-NET-DONE
i=0; while [ ! -e /sys/block/vdb ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1
dd if=/dev/vdb of=/dev/null bs=16384 count=8 iflag=direct 2>/dev/null
echo "STAT2 $(cat /sys/block/vdb/stat)"
echo PHASE-COW-DONE
i=0; while [ -e /sys/block/vda ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
echo PHASE-UNPLUGGED
sleep 300
SH
NAME=plain-hotplug
GUEST_IP= guest_start "$NAME" "$TAP" "$WORK/initrd" \
	-drive "file=$ISO,media=cdrom,if=ide,format=raw,readonly=on" ||
	{ tap_fail "QEMU guest starts"; tap_done; exit; }
tap_ok "QEMU guest starts"
check "the guest reaches its workload" wait_for 90 grep -q PHASE-READY "$GUEST_LOG"
in_list() { scrape "$WORK/l.txt" && [ -n "$(metric "$WORK/l.txt" vmprobe_vm_info name=$NAME)" ]; }
check "vmprobe sees the VM" wait_for 10 in_list

# The drive: its image opened by blockdev-add (QEMU reads it, probing its
# alignment), then the guest's device by device_add, as libvirt does;
# QEMU's image locks, which tell an image from QEMU's other files, are
# taken when the device attaches. The guest is paused meanwhile, so that
# QEMU's own reads can be told apart from the guest's, which start the
# moment the guest sees the device.
LABEL=$(printf '%s' "$IMG" | sed 's/\\/\\\\/g; s/"/\\"/g')
plug() { # FORMAT NODE DEVICE-ID IMAGE: blockdev-add, then device_add, the guest paused
	guest_qmp "$GUEST_QMP" stop >/dev/null
	guest_qmp "$GUEST_QMP" blockdev-add "$(python3 -c 'import json,sys; print(json.dumps(
		{"driver": sys.argv[1], "node-name": sys.argv[2], "file": {"driver": "file",
		 "filename": sys.argv[3], "aio": "threads", "cache": {"direct": True}}}))' "$1" "$2" "$4")" >/dev/null &&
		guest_qmp "$GUEST_QMP" device_add "{\"driver\": \"virtio-blk-pci\", \"drive\": \"$2\", \"id\": \"$3\"}" >/dev/null
}
plug raw hotfmt hotdisk "$IMG"
check "QMP hot-plugs the drive" test $? -eq 0
measured() { # LABEL
	scrape "$WORK/m.txt" && [ "$(metric "$WORK/m.txt" vmprobe_drive_info name=$NAME drive="$1" measured=true source=fd)" = 1 ]
}
check "the image is a measured drive, labelled by its path, learned from QEMU's fds" \
	wait_for 10 measured "$LABEL"
# QEMU's own reads, counted from the first (they preceded the drive being
# known): settled once two scrapes half a second apart agree.
settled() { # [LABEL]
	local l=${1:-$LABEL}
	scrape_settled "$WORK/b.txt" 0.5 "drive=\"$l\"" &&
	[ -n "$(metric "$WORK/b.txt" vmprobe_disk_latency_seconds_count name=$NAME drive="$l" operation=read)" ]
}
check "QEMU's own requests on the new image are counted and settle" wait_for 10 settled
check_num "QEMU's requests before the guest has the disk are counted (alignment probe reads)" 1 \
	"$(awk -v v="$(metric "$WORK/b.txt" vmprobe_disk_latency_seconds_count name=$NAME drive="$LABEL" operation=read)" 'BEGIN { print (v > 0) }')"
guest_qmp "$GUEST_QMP" cont >/dev/null
check "the guest's IO on it completes" wait_for 90 grep -q PHASE-DISK-DONE "$GUEST_LOG"
sleep 1
scrape "$WORK/s1.txt"
# Guest's /sys/block/vda/stat: 1 reads, 3 sectors read, 5 writes, 7 sectors written.
read -r -a gs < <(tr -d '\r' <"$GUEST_LOG" | awk '$1 == "STAT" { $1 = ""; print; exit }')
m() { # FAMILY OPERATION: since the guest got the disk
	metric_delta "$WORK/b.txt" "$WORK/s1.txt" "$1" name=$NAME drive="$LABEL" operation="$2"
}
check_num "reads from the first one (the guest's partition scan included) = the guest's" \
	"${gs[0]:-}" "$(m vmprobe_disk_latency_seconds_count read)"
check_num "bytes read = the guest's sectors read x 512" "$(( ${gs[2]:-0} * 512 ))" \
	"$(m vmprobe_disk_request_size_bytes_sum read)"
w=$(m vmprobe_disk_latency_seconds_count write) f=$(m vmprobe_disk_latency_seconds_count flush)
# The guest kernel counts its flush as a write of no sectors (see e2e_qemu_disk.sh).
check_num "writes + flushes = the guest's completed writes" "${gs[4]:-}" "$(( ${w:-0} + ${f:-0} ))"
check_num "bytes written = the guest's sectors written x 512" "$(( ${gs[6]:-0} * 512 ))" \
	"$(m vmprobe_disk_request_size_bytes_sum write)"
check_num "the latency buckets hold every read (+Inf = count)" "$(m vmprobe_disk_latency_seconds_count read)" \
	"$(metric_delta "$WORK/b.txt" "$WORK/s1.txt" vmprobe_disk_latency_seconds_bucket name=$NAME drive="$LABEL" operation=read le=+Inf)"
"$VMPROBE" list --json >"$WORK/list.json" 2>/dev/null
check_eq "vmprobe list shows the drive, from the fds, measured" "file fd True" \
	"$(python3 -c 'import json,sys
vm = [v for v in json.load(open(sys.argv[1])) if v["name"] == sys.argv[2]][0]
d = [d for d in vm["drives"] if d["drive"] == sys.argv[3]][0]
print(d["backend"], d["source"], d["measured"])' "$WORK/list.json" "$NAME" "$IMG" 2>&1)"

# The NIC: QEMU opens the tap itself (ifname=), the tun fd says which.
guest_qmp "$GUEST_QMP" netdev_add "{\"type\": \"tap\", \"id\": \"hn1\", \"ifname\": \"$HTAP\", \"script\": \"no\", \"downscript\": \"no\"}" >/dev/null &&
	guest_qmp "$GUEST_QMP" device_add '{"driver": "virtio-net-pci", "netdev": "hn1", "id": "hotnic", "mac": "52:54:00:79:00:02"}' >/dev/null
check "QMP hot-plugs the NIC" test $? -eq 0
nic() { scrape "$WORK/n.txt" && [ -n "$(metric "$WORK/n.txt" vmprobe_network_packet_size_bytes_count name=$NAME interface=$HTAP direction=rx)" ]; }
check "the hot-plugged NIC's tap is counted" wait_for 10 nic
check "the guest's pings on it complete" wait_for 90 grep -q PHASE-NET-DONE "$GUEST_LOG"
sleep 1
scrape_with_tap "$HTAP" "$WORK/s2.txt"
check_num "frames from the guest on the hot-plugged NIC = its tap's rx_packets" "${TAPC[rx_packets]}" \
	"$(metric "$WORK/s2.txt" vmprobe_network_packet_size_bytes_count name=$NAME interface=$HTAP direction=tx)"
check_num "frames to the guest = its tap's tx_packets + tx_dropped" \
	"$(( TAPC[tx_packets] + TAPC[tx_dropped] ))" \
	"$(metric "$WORK/s2.txt" vmprobe_network_packet_size_bytes_count name=$NAME interface=$HTAP direction=rx)"

# The overlay: QEMU opens its backing file with it (named in its header).
COWLABEL=$COW
plug qcow2 cowfmt cowdisk "$COW"
check "QMP hot-plugs the qcow2 overlay" test $? -eq 0
check "the overlay is a measured drive" wait_for 10 measured "$COWLABEL"
check "QEMU's own requests on the overlay and its backing file settle" wait_for 10 settled "$COWLABEL"
cp "$WORK/b.txt" "$WORK/b2.txt"
check_eq "its backing file is no drive of its own" "" "$(grep -F "$BASE" "$WORK/b2.txt")"
check_eq "the CD-ROM's medium is no drive" "" "$(grep -F "$ISO" "$WORK/b2.txt")"
check_num "one drive per image the guest has, no more (the hot disk, the overlay)" 2 \
	"$(grep -c "^vmprobe_drive_info{.*name=\"$NAME\"" "$WORK/b2.txt")"
guest_qmp "$GUEST_QMP" cont >/dev/null
check "the guest's reads of the overlay complete" wait_for 90 grep -q PHASE-COW-DONE "$GUEST_LOG"
sleep 1
scrape "$WORK/s3.txt"
# The overlay holds no data: each guest read is one read of the backing
# file (qcow2 hands an unallocated range to the backing file whole).
read -r -a gs2 < <(tr -d '\r' <"$GUEST_LOG" | awk '$1 == "STAT2" { $1 = ""; print; exit }')
m2() { metric_delta "$WORK/b2.txt" "$WORK/s3.txt" "$1" name=$NAME drive="$COWLABEL" operation="$2"; }
check_num "reads on the overlay drive (served by its backing file) = the guest's reads" \
	"${gs2[0]:-}" "$(m2 vmprobe_disk_latency_seconds_count read)"
check_num "bytes read = the guest's sectors read x 512" "$(( ${gs2[2]:-0} * 512 ))" \
	"$(m2 vmprobe_disk_request_size_bytes_sum read)"

# Unplug: the guest lets the disk go, then QEMU closes the image and the tap.
guest_qmp "$GUEST_QMP" device_del '{"id": "hotdisk"}' >/dev/null
check "the guest sees the disk unplugged" wait_for 60 grep -q PHASE-UNPLUGGED "$GUEST_LOG"
guest_qmp "$GUEST_QMP" blockdev-del '{"node-name": "hotfmt"}' >/dev/null
guest_qmp "$GUEST_QMP" device_del '{"id": "cowdisk"}' >/dev/null
cow_gone() { guest_qmp "$GUEST_QMP" blockdev-del '{"node-name": "cowfmt"}' >/dev/null 2>&1; }
check "the overlay is unplugged" wait_for 30 cow_gone
guest_qmp "$GUEST_QMP" device_del '{"id": "hotnic"}' >/dev/null
nic_gone() { guest_qmp "$GUEST_QMP" netdev_del '{"id": "hn1"}' >/dev/null 2>&1; }
wait_for 30 nic_gone
disk_gone() { scrape "$WORK/g.txt" && [ -z "$(metric "$WORK/g.txt" vmprobe_drive_info name=$NAME drive="$LABEL")" ] &&
	[ -z "$(metric "$WORK/g.txt" vmprobe_disk_latency_seconds_count name=$NAME drive="$LABEL" operation=read)" ]; }
check "the unplugged drive's series are gone" wait_for 10 disk_gone
check_eq "the unplugged overlay's series are gone" "" "$(grep -F "$COW" "$WORK/g.txt")"
tap_gone() { scrape "$WORK/g.txt" && [ -z "$(metric "$WORK/g.txt" vmprobe_network_packet_size_bytes_count name=$NAME interface=$HTAP direction=rx)" ]; }
check "the unplugged NIC's series are gone" wait_for 10 tap_gone
check_eq "the unplugged NIC's tap has no vmprobe program left" "" "$(vmprobe_progs "$HTAP")"
check "vmprobe logged the drive going" grep -q "drive .*hot disk.raw of VM $NAME went" "$WORK/vmprobe.log"
tap_done

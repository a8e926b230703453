#!/bin/bash
# KubeVirt hot-plug, as close as this host gets without a cluster: a real
# libvirtd (tests/lib/libvirt.sh) in a mount and a pid namespace of its own,
# as in a virt-launcher pod, runs a domain (type qemu, TCG). vmprobe, in the
# host's namespaces, must match the pod's QEMU pid in libvirt's status XML
# to the host's process (NSpid) and find the volumes at paths only the pod
# has. Like virt-handler, the test puts each hotplug volume into the pod (a
# file, then a device node of a loop device, aio=native) and attaches it
# with the user alias ua-VOLUME; then a NIC aliased ua-net1. Each drive is
# measured as drive VOLUME from the guest's first request, its operations
# and bytes equal to the guest's block statistics and to libvirt's
# domblkstat, and goes on detach; the NIC is interface net1 (as
# kubevirt_vmi_network_* label it) with its tap in the tap label, its
# frames equal to the tap's counters, and goes on detach.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"
. "$REPO/tests/lib/libvirt.sh"

export LIBVIRT_PIDNS=1
if ! why=$(libvirt_require 2>&1); then
	tap_skip "KubeVirt-style hot-plug" "$why"
	tap_done; exit
fi
tap_require_cmds "KubeVirt-style hot-plug" losetup mknod
tap_require_root "KubeVirt-style hot-plug" tun

WORK=$(mktemp -d /tmp/vmprobe-kubevirt.XXXXXX)
PORT=19671 TAP=vmpt-kv0 HTAP=vmpt-kv1 DOM=kv-hotplug LOOP=
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	libvirt_stop >/dev/null 2>&1
	[ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null
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
mount -t tmpfs -o size=32m tmpfs "$WORK/img"
guest_tap_add "$TAP" "$HTAP"
ip addr add 10.79.2.1/24 dev "$HTAP"

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
libvirt_start_or_fail "$WORK/lv"
check "libvirtd's pid namespace is its own, not the host's" \
	test "$(readlink "/proc/$LV_DAEMON_PID/ns/pid")" != "$(readlink /proc/self/ns/pid)"

# The guest has no disk: each hotplug volume is its only one. It uses each,
# waiting for it to go, then the NIC (eth1).
guest_make_initrd "$WORK/initrd" - <<'SH'
echo PHASE-READY
kv_volume() { # TAG
	i=0 b=
	while [ -z "$b" ] && [ $i -lt 900 ]; do
		for f in /sys/block/vd*; do [ -e "$f" ] && b=${f##*/}; done
		[ -n "$b" ] || sleep 0.1
		i=$((i + 1))
	done
	sleep 1
	dd if=/dev/zero of=/dev/$b bs=8192 count=7 oflag=direct 2>/dev/null
	dd if=/dev/$b of=/dev/null bs=4096 count=9 iflag=direct 2>/dev/null
	dd if=/dev/zero of=/dev/$b bs=65536 count=2 seek=4 oflag=direct conv=fsync 2>/dev/null
	echo "$1 $(cat /sys/block/$b/stat)"
	echo "PHASE-$1-DONE"
	i=0; while [ -e /sys/block/$b ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
}
kv_volume KVFILE
kv_volume KVBLOCK
i=0; while [ ! -e /sys/class/net/eth1 ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
ip link set eth1 up
ip addr add 10.79.2.2/24 dev eth1
ping -c 6 -W 2 10.79.2.1 >/dev/null 2>&1
echo PHASE-NET-DONE
sleep 300
SH
GUEST_IP='' libvirt_define_guest_or_fail "$DOM" "$TAP" "$GUEST_KERNEL" "$WORK/initrd"
check "the guest reaches its workload" wait_for 90 grep -q PHASE-READY "$LV_LOG"
NSPID=$(grep -o -m1 "^<domstatus [^>]* pid='[0-9]*'" "$LV_XML")
NSPID=${NSPID##*pid=\'} NSPID=${NSPID%\'}
check "libvirt's state names QEMU by its pid in the pod ($NSPID), not the host's ($LV_PID)" \
	test -n "$NSPID" -a "$NSPID" != "$LV_PID"
seen() { scrape "$WORK/v.txt" && [ -n "$(metric "$WORK/v.txt" vmprobe_vm_info name=$DOM pid="$LV_PID")" ]; }
check "vmprobe sees the domain's QEMU, by its host pid" wait_for 10 seen

settled() { # DRIVE: its series read the same in two scrapes 0.5 s apart, into $WORK/b.txt
	scrape_settled "$WORK/b.txt" 0.5 "drive=\"$1\"" &&
	[ -n "$(metric "$WORK/b.txt" vmprobe_disk_latency_seconds_count name=$DOM drive="$1" operation=write)" ]
}
measured() { # DRIVE
	scrape "$WORK/k.txt" &&
	[ "$(metric "$WORK/k.txt" vmprobe_drive_info name=$DOM drive="$1" source=libvirt measured=true)" = 1 ]
}
drive_gone() { scrape "$WORK/g.txt" && ! grep -qF "drive=\"$1\"" "$WORK/g.txt"; }

# A hotplug volume: attached with the guest paused (QEMU's own requests on
# it settle before the guest's first), used by the guest, detached.
kv_volume() { # VOLUME TAG TARGET DISK_XML (without <target> and <alias>)
	local vol=$1 tag=$2 target=$3 k v gs w f
	local -A lvs
	printf '%s\n' "${4%</disk>}  <target dev='$target' bus='virtio'/>" \
		"  <alias name='ua-$vol'/>" "</disk>" >"$WORK/$vol.xml"
	$VIRSH suspend "$DOM" >/dev/null
	$VIRSH attach-device "$DOM" "$WORK/$vol.xml" --live >"$WORK/attach-$vol.log" 2>&1
	check "$vol: virsh attach-device --live of a disk aliased ua-$vol" test $? -eq 0
	check "$vol: measured as drive $vol (the alias without ua-), from libvirt's state" \
		wait_for 10 measured "$vol"
	check_eq "$vol: no drive is labelled by its alias or its path" "" \
		"$(grep -E "drive=\"(ua-$vol|[^\"]*hotplug-disks[^\"]*)\"" "$WORK/k.txt")"
	check "$vol: QEMU's own requests on it settle before the guest runs" wait_for 10 settled "$vol"
	$VIRSH resume "$DOM" >/dev/null
	check "$vol: the guest's IO on it completes" wait_for 90 grep -q "PHASE-$tag-DONE" "$LV_LOG"
	sleep 1
	scrape "$WORK/s.txt"
	while read -r _ k v; do [ -n "$k" ] && lvs[$k]=$v; done < <($VIRSH domblkstat "$DOM" "$target")
	read -r -a gs < <(tr -d '\r' <"$LV_LOG" | awk -v t="$tag" '$1 == t { $1 = ""; print; exit }')
	m() { # FAMILY OPERATION: since the volume came
		metric_delta "$WORK/b.txt" "$WORK/s.txt" "$1" name=$DOM drive="$vol" operation="$2"
	}
	check_num "$vol: reads = the guest's" "${gs[0]:-}" "$(m vmprobe_disk_latency_seconds_count read)"
	check_num "$vol: reads = domblkstat rd_req" "${lvs[rd_req]:-}" \
		"$(m vmprobe_disk_latency_seconds_count read)"
	check_num "$vol: bytes read = the guest's sectors x 512" "$(( ${gs[2]:-0} * 512 ))" \
		"$(m vmprobe_disk_request_size_bytes_sum read)"
	check_num "$vol: bytes read = domblkstat rd_bytes" "${lvs[rd_bytes]:-}" \
		"$(m vmprobe_disk_request_size_bytes_sum read)"
	check_num "$vol: writes = domblkstat wr_req" "${lvs[wr_req]:-}" \
		"$(m vmprobe_disk_latency_seconds_count write)"
	check_num "$vol: bytes written = the guest's sectors x 512" "$(( ${gs[6]:-0} * 512 ))" \
		"$(m vmprobe_disk_request_size_bytes_sum write)"
	check_num "$vol: bytes written = domblkstat wr_bytes" "${lvs[wr_bytes]:-}" \
		"$(m vmprobe_disk_request_size_bytes_sum write)"
	check_num "$vol: flushes = domblkstat flush_operations" "${lvs[flush_operations]:-}" \
		"$(m vmprobe_disk_latency_seconds_count flush)"
	w=$(m vmprobe_disk_latency_seconds_count write) f=$(m vmprobe_disk_latency_seconds_count flush)
	check "$vol: the guest's fsync is a flush" test "${f:-0}" -ge 1
	check_num "$vol: writes + flushes = the guest's completed writes" "${gs[4]:-}" \
		"$(( ${w:-0} + ${f:-0} ))"
	$VIRSH detach-device "$DOM" "$WORK/$vol.xml" --live >"$WORK/detach-$vol.log" 2>&1
	check "$vol: virsh detach-device --live" test $? -eq 0
	check "$vol: its series are gone" wait_for 30 drive_gone "$vol"
}

# The pod's hotplug directory: libvirtd's /run/libvirt/hotplug-disks.
KV=$LV_DIR/run/hotplug-disks
mkdir -p "$KV"
truncate -s 8M "$KV/hpvol.img"
check "the volume's path is the pod's: QEMU has it, the host has no such file" \
	test -f "/proc/$LV_PID/root/run/libvirt/hotplug-disks/hpvol.img" \
	-a ! -e /run/libvirt/hotplug-disks/hpvol.img
kv_volume hpvol KVFILE vdb "<disk type='file' device='disk'>
  <driver name='qemu' type='raw' cache='none'/>
  <source file='/run/libvirt/hotplug-disks/hpvol.img'/>
</disk>"

# A block volume: virt-handler makes a device node for it in the pod.
truncate -s 8M "$WORK/img/blkvol.raw"
LOOP=$(losetup -f --show "$WORK/img/blkvol.raw")
if ! [ -b "$LOOP" ] ||
	! mknod "$KV/blkvol" b "$((0x$(stat -c %t "$LOOP")))" "$((0x$(stat -c %T "$LOOP")))"; then
	tap_fail "a loop device's node in the pod for the block volume" "loop: '$LOOP'"
	tap_done; exit
fi
check "the block volume's node is the pod's: QEMU has it, the host has no such file" \
	test -b "/proc/$LV_PID/root/run/libvirt/hotplug-disks/blkvol" \
	-a ! -e /run/libvirt/hotplug-disks/blkvol
kv_volume blkvol KVBLOCK vdc "<disk type='block' device='disk'>
  <driver name='qemu' type='raw' cache='none' io='native'/>
  <source dev='/run/libvirt/hotplug-disks/blkvol'/>
</disk>"

# A NIC aliased ua-net1: libvirt opens the tap and hands QEMU its fd.
cat >"$WORK/nic.xml" <<XML
<interface type='ethernet'>
  <mac address='52:54:00:79:02:02'/>
  <target dev='$HTAP' managed='no'/>
  <model type='virtio'/>
  <alias name='ua-net1'/>
</interface>
XML
$VIRSH attach-device "$DOM" "$WORK/nic.xml" --live >"$WORK/attach-nic.log" 2>&1
check "virsh attach-device --live of a NIC aliased ua-net1" test $? -eq 0
nic() { scrape "$WORK/n.txt" && [ "$(metric "$WORK/n.txt" vmprobe_interface_info name=$DOM interface=net1 tap=$HTAP measured=true)" = 1 ]; }
check "the NIC is measured as interface net1, its tap in the tap label" wait_for 10 nic
check "the guest's pings on it complete" wait_for 90 grep -q PHASE-NET-DONE "$LV_LOG"
sleep 1
if scrape_with_tap "$HTAP" "$WORK/s2.txt"; then
	check_tap_totals "net1: " "$WORK/s2.txt" "$DOM" net1
else
	tap_fail "the NIC's tap stays quiet for a scrape"
fi
$VIRSH detach-device "$DOM" "$WORK/nic.xml" --live >"$WORK/detach-nic.log" 2>&1
check "virsh detach-device --live of the NIC" test $? -eq 0
nic_gone() { scrape "$WORK/g.txt" && ! grep -qF 'interface="net1"' "$WORK/g.txt"; }
check "the NIC's series are gone" wait_for 30 nic_gone
check_eq "its tap has no vmprobe program left" "" "$(vmprobe_progs "$HTAP")"
tap_done

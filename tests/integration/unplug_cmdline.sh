#!/bin/bash
# A drive of QEMU's command line unplugged over QMP (device_del) on a QEMU
# no libvirt manages: QEMU closes its image with the device, and vmprobe
# drops the drive and its series, though the command line still names it.
# The other drive of the command line stays, its counts untouched. So do
# NICs of the command line (device_del, netdev_del): one on a tap named by
# ifname= (a persistent tap, which stays on the host), and one whose tap
# QEMU opened itself (-netdev tap with neither ifname= nor fd=), which is
# one NIC, measured, not a tap learned from its fd beside a NIC "not found".
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

tap_require_cmds "unplug of a command-line drive" qemu-system-x86_64
tap_require_root "unplug of a command-line drive" tun

WORK=$(mktemp -d /tmp/vmprobe-unplug.XXXXXX)
PORT=19611 TAP=vmpt-up0
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null

guest_build_or_fail
truncate -s 8M "$WORK/cold.raw" "$WORK/stays.raw"
guest_tap_add "$TAP"

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

# vda = colddisk (PCI slot 5), vdb = staydisk (slot 6): the guest names
# them in slot order. It writes to both, then waits for vda to go.
guest_make_initrd "$WORK/initrd" - <<'SH'
dd if=/dev/zero of=/dev/vda bs=4096 count=8 oflag=direct 2>/dev/null
dd if=/dev/zero of=/dev/vdb bs=4096 count=4 oflag=direct 2>/dev/null
for d in vda vdb; do echo "STAT $d $(cat /sys/block/$d/stat)"; done
echo PHASE-IO-DONE
i=0; while [ -e /sys/block/vda ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
[ -e /sys/block/vda ] || echo PHASE-UNPLUGGED
sleep 300
SH
NAME=unplug-cmdline
GUEST_IP= GUEST_NIC_ID=net0 guest_start "$NAME" "$TAP" "$WORK/initrd" \
	-netdev tap,id=own,script=no,downscript=no -device virtio-net-pci,netdev=own,id=ownnic,addr=0x7 \
	-drive "file=$WORK/cold.raw,format=raw,if=none,id=cold,cache=none" \
	-device virtio-blk-pci,drive=cold,id=colddisk,addr=0x5 \
	-drive "file=$WORK/stays.raw,format=raw,if=none,id=stays,cache=none" \
	-device virtio-blk-pci,drive=stays,id=staydisk,addr=0x6 ||
	{ tap_fail "QEMU guest with two drives and two NICs starts"; tap_done; exit; }
tap_ok "QEMU guest with two drives and two NICs starts"
# The tap QEMU made: the one of its tun fds that is not $TAP.
OWN=$(grep -h '^iff:' /proc/$GUEST_PID/fdinfo/* 2>/dev/null | awk '{ print $2 }' | grep -vx "$TAP" | sort -u)
check "QEMU opened a tap of its own" test "$(echo "$OWN" | wc -w)" = 1
check "the guest's IO completes" wait_for 90 grep -q PHASE-IO-DONE "$GUEST_LOG"

writes() { metric "$1" vmprobe_disk_latency_seconds_count name=$NAME drive="$2" operation=write; }
guest_writes() { grep -a "^STAT $1 " "$GUEST_LOG" | tr -d '\r' | awk '{ print $7 }'; }
counted() { scrape "$WORK/s1.txt" && [ "$(writes "$WORK/s1.txt" colddisk)" = "$(guest_writes vda)" ] &&
	[ "$(writes "$WORK/s1.txt" staydisk)" = "$(guest_writes vdb)" ]; }
check "both drives are counted: writes = the guest's (8 and 4)" wait_for 10 counted
check_eq "the guest wrote 8 and 4 blocks" "8 4" "$(guest_writes vda) $(guest_writes vdb)"
# vmprobe list (one walk of the fd table): each drive and whether its image is open.
listed() { "$VMPROBE" list --json 2>/dev/null | python3 -c '
import json, sys
print(" ".join(sorted("%s:%s" % (d["drive"], d["image_open"]) for v in json.load(sys.stdin)
                      if v["name"] == sys.argv[1] for d in v["drives"])))' "$NAME" 2>&1; }
check_eq "vmprobe list shows both, their images open" "colddisk:True staydisk:True" "$(listed)"
ifaces() { # FILE: the VM's NICs as interface:tap:measured, sorted, one line
	python3 - "$1" "$NAME" <<'PY'
import re, sys
lab = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')
out = []
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("vmprobe_interface_info{"):
        l = dict(lab.findall(line))
        if l.get("name") == sys.argv[2]:
            out.append("%s:%s:%s" % (l["interface"], l["tap"], l["measured"]))
print(" ".join(sorted(out)))
PY
}
ifaces_are() { scrape "$WORK/n.txt" && [ "$(ifaces "$WORK/n.txt")" = "$1" ]; }
check "two NICs, each measured once: the named tap and the one QEMU made" \
	wait_for 10 ifaces_are "$(printf '%s\n' "$OWN:$OWN:true" "$TAP:$TAP:true" | sort | paste -sd' ')"
check_eq "no NIC said to be without its tap" "" "$(grep -F "name=\"$NAME\"" "$WORK/n.txt" | grep -F 'measured="false"')"

guest_qmp "$GUEST_QMP" device_del '{"id": "colddisk"}' >/dev/null
check "the guest sees the drive unplugged" wait_for 60 grep -q PHASE-UNPLUGGED "$GUEST_LOG"
gone() { scrape "$WORK/s2.txt" && [ -z "$(metric "$WORK/s2.txt" vmprobe_drive_info name=$NAME drive=colddisk)" ] &&
	[ -z "$(writes "$WORK/s2.txt" colddisk)" ]; }
check "the unplugged drive's series are gone" wait_for 10 gone
check_eq "the other drive stays, its count untouched" "$(writes "$WORK/s1.txt" staydisk)" \
	"$(writes "$WORK/s2.txt" staydisk)"
check_num "and so does its info series" 1 "$(metric "$WORK/s2.txt" vmprobe_drive_info name=$NAME drive=staydisk)"
check "vmprobe logged why" grep -q "drive colddisk's image was closed, nothing opened in its place: unplugged" \
	"$WORK/vmprobe.log"
sleep 2
scrape "$WORK/s3.txt"
check_eq "a while later, the command line has not brought it back" "" \
	"$(grep -F 'drive="colddisk"' "$WORK/s3.txt")"
check_eq "nor is its image listed as a drive of its own" "" "$(grep -F "cold.raw" "$WORK/s3.txt")"

nic_unplug() { # DEVICE NETDEV: the guest lets the NIC go, then QEMU closes its tap
	guest_qmp "$GUEST_QMP" device_del "{\"id\": \"$1\"}" >/dev/null
	wait_for 30 guest_qmp "$GUEST_QMP" netdev_del "{\"id\": \"$2\"}" >/dev/null 2>&1
}
check "the NIC on the tap QEMU made is unplugged" nic_unplug ownnic own
check "its series go; the other NIC stays" wait_for 10 ifaces_are "$TAP:$TAP:true"
check "vmprobe logged why" grep -q "NIC ownnic's tap was closed: unplugged" "$WORK/vmprobe.log"
check "the NIC on the named tap is unplugged" nic_unplug net0 n0
check "its series go too, though the tap stays on the host" wait_for 10 ifaces_are ""
check "the tap is still there" ip link show "$TAP"
check_eq "and has no vmprobe program left" "" "$(vmprobe_progs "$TAP")"
sleep 2
scrape "$WORK/s5.txt"
check_eq "a while later, the command line has not brought either back" "" "$(ifaces "$WORK/s5.txt")"
# One walk cannot tell an unplug from a QEMU that has not opened its
# images yet: list shows the drive still named by the command line, its
# image not open.
check_eq "vmprobe list says its image is not open" "colddisk:False staydisk:True" "$(listed)"
check "and the text says so" grep -q "colddisk .*(image not open: unplugged?)" \
	<("$VMPROBE" list 2>&1)

# Unplugged while no vmprobe ran: the next serve never sees its image
# open. In a QEMU that started long ago (QEMU_STARTUP_S, 10 s), that is
# an unplug too.
vmprobe_stop
check_eq "vmprobe serve stops, exit 0" 0 "$?"
guest_qmp "$GUEST_QMP" device_del '{"id": "staydisk"}' >/dev/null
image_closed() { ! ls -l /proc/$GUEST_PID/fd 2>/dev/null | grep -qF "$WORK/stays.raw"; }
check "QEMU closes the second drive's image" wait_for 60 image_closed
# Its age from /proc alone (field 22 of its stat, in clock ticks since boot).
old_qemu() {
	local start
	start=$(sed 's/.*) //' "/proc/$GUEST_PID/stat" | cut -d' ' -f20) || return 1
	awk -v s="$start" -v hz="$(getconf CLK_TCK)" '{ exit !($1 - s / hz >= 12) }' /proc/uptime
}
check "QEMU started more than 12 s ago" wait_for 15 old_qemu
mv "$WORK/vmprobe.log" "$WORK/vmprobe-1.log"
vmprobe_start $PORT || { tap_fail "vmprobe serve starts again" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
tap_ok "vmprobe serve starts again"
no_drives() { scrape "$WORK/s4.txt" && [ -n "$(metric "$WORK/s4.txt" vmprobe_vm_info name=$NAME)" ] &&
	[ -z "$(grep -F "name=\"$NAME\"" "$WORK/s4.txt" | grep -F 'drive="')" ]; }
check "the VM is there, neither drive of its command line is" wait_for 10 no_drives
why() { grep -c "drive $1's image is not open, QEMU started long ago: unplugged before vmprobe looked" "$WORK/vmprobe.log"; }
check_eq "vmprobe logged why, once for each" "1 1" "$(why colddisk) $(why staydisk)"
tap_done

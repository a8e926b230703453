#!/bin/bash
# vmprobe list: a real QEMU guest (TCG) with a tap and two drives, named
# with characters that need escaping (quotes, backslash, a comma QEMU
# doubles). `list --json` must give back exactly what its command line
# says (name, uuid, tap, MAC, drive labels, images, AIO modes) and the
# tap's real ifindex and network namespace; the text form shows the same.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

if ! command -v qemu-system-x86_64 >/dev/null; then
	tap_skip "vmprobe list with a QEMU guest" "qemu-system-x86_64 is not installed"
	tap_done; exit
fi
tap_require_root "vmprobe list with a QEMU guest"

WORK=$(mktemp -d /tmp/vmprobe-list.XXXXXX)
TAP=vmpt-l0
cleanup() {
	guest_stop >/dev/null 2>&1
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null

guest_build_or_fail
guest_make_initrd "$WORK/initrd" - <<<'sleep 300'
truncate -s 8M "$WORK/a.img" "$WORK/b, c.img"
ip tuntap add dev "$TAP" mode tap
ip link set "$TAP" up

NAME='web "01" \ prod, eu'
MAC=52:54:00:12:34:56
GUEST_IP= GUEST_MAC=$MAC guest_start "$NAME" "$TAP" "$WORK/initrd" \
	-drive "file=$WORK/a.img,format=raw,if=none,id=d0,aio=threads" \
	-device virtio-blk-pci,drive=d0,id=ua-root \
	-drive "file=$WORK/b,, c.img,format=raw,if=none,id=d1,cache=none,aio=io_uring" \
	-device virtio-blk-pci,drive=d1,id=data ||
	{ tap_fail "QEMU guest with a tap and two drives starts"; tap_done; exit; }
tap_ok "QEMU guest with a tap and two drives starts"

rc=0; "$VMPROBE" list --json >"$WORK/list.json" 2>"$WORK/list.err" || rc=$?
check_eq "list --json exits 0, nothing on stderr" "0 " "$rc $(cat "$WORK/list.err")"
expected=$(python3 - "$NAME" "$GUEST_PID" "$GUEST_UUID" "$TAP" "$MAC" "$WORK" \
	"$(readlink /proc/$GUEST_PID/ns/net)" "$(cat /sys/class/net/$TAP/ifindex)" <<'PY'
import json, sys
name, pid, uuid, tap, mac, work, netns, ifindex = sys.argv[1:]
off = {"measured": None, "reason": "vmprobe serve is not running"}
print(json.dumps({"pid": int(pid), "name": name, "namespace": "", "uuid": uuid,
    "interfaces": [dict(interface=tap, tap=tap, type="tap", netns=netns, ifindex=int(ifindex),
                        mac=mac, source="cmdline", **off)],
    "drives": [dict(drive="root", node="d0", file=work + "/a.img", aio="threads",
                    backend="file", source="cmdline", image_open=True, **off),
               dict(drive="data", node="d1", file=work + "/b, c.img", aio="io_uring",
                    backend="file", source="cmdline", image_open=True, **off)]},
    sort_keys=True, indent=1))
PY
)
actual=$(python3 - "$WORK/list.json" "$GUEST_PID" <<'PY'
import json, sys
vms = [vm for vm in json.load(open(sys.argv[1])) if vm["pid"] == int(sys.argv[2])]
print(json.dumps(vms[0], sort_keys=True, indent=1) if len(vms) == 1 else "%d entries" % len(vms))
PY
)
check_eq "list --json gives the guest's command line exactly (name, uuid, NIC, MAC, drives)" \
	"$expected" "$actual"

"$VMPROBE" list >"$WORK/list.txt" 2>&1
check "list shows the VM's name, pid and uuid" \
	grep -qF "$NAME  pid $GUEST_PID  uuid $GUEST_UUID" "$WORK/list.txt"
check "list shows the NIC with its tap, ifindex, namespace and MAC" grep -qE \
	"^  iface +$TAP +tap +$TAP +ifindex $(cat /sys/class/net/$TAP/ifindex) +$(readlink /proc/$GUEST_PID/ns/net | sed 's/[][]/\\&/g') +mac $MAC\$" \
	"$WORK/list.txt"
check "list shows drive root (threads) and its image" \
	grep -qE "^  drive +root +file +aio=threads +$WORK/a.img\$" "$WORK/list.txt"
check "list shows drive data (io_uring) and its image" \
	grep -qF "aio=io_uring $WORK/b, c.img" "$WORK/list.txt"
check_eq "list adds no TC program to the tap" "" "$(tap_progs "$TAP")"
rc=0; "$VMPROBE" list --bogus >/dev/null 2>&1 || rc=$?
check_eq "list with an unknown option exits 2" 2 "$rc"
tap_done

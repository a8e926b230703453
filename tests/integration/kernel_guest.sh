#!/bin/bash
# The oldest supported kernel: Debian 12's Linux 6.1 (no TCX: the clsact
# path; io_uring's tracepoints of before 6.4). vmprobe, its libraries and
# the stand-in VM (tests/tools/tapguest) go into the initramfs of the test
# guest, which boots Debian 12's own kernel package under QEMU (TCG); in
# there vmprobe serves and counts a stand-in VM that holds a tap and three
# drives, each read the way its aio= mode says (pread, an io_uring ring,
# Linux AIO on the guest's virtio disk). The guest prints its scrapes and
# the tap's own counters on the serial console; this script compares them
# here, exactly: every frame each way and its bytes, every read per drive,
# the VM's series gone after it exits, vmprobe's filters gone after it.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

what="vmprobe on Debian 12's 6.1 kernel"
tap_require_root "$what" tun
for b in "$VMPROBE" "$TAPGUEST"; do
	[ -x "$b" ] || { tap_skip "$what" "$b is not built (make test builds it)"; tap_done; exit; }
done

WORK=$(mktemp -d /tmp/vmprobe-kguest.XXXXXX)
HTAP=vmkg-t0
cleanup() {
	guest_stop >/dev/null 2>&1
	ip link del "$HTAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

guest_build_or_fail "$what"
guest_tap_add "$HTAP" || { tap_fail "a tap for the outer guest"; tap_done; exit; }

# Runs in the 6.1 guest (busybox sh). "=== FILE NAME" ... "=== END" blocks
# are cut into $WORK/NAME here.
guest_make_initrd "$WORK/workload.cpio" - <<'EOF'
PORT=19472 TAP=vk0 URL=http://127.0.0.1:19472/metrics
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs nodev /sys/kernel/tracing
mkdir -p /tmp/bin /var/run /run
ln -s /usr/bin/tapguest /tmp/bin/qemu-system-x86_64
for i in thr uring; do dd if=/dev/zero of=/tmp/$i.img bs=1M count=1 2>/dev/null; done
until_ok() { # SECS CMD...: CMD until it succeeds, every 0.2 s
	n=$(($1 * 5)); shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1)); [ "$n" -gt 0 ] || return 1; usleep 200000
	done
}
section() { echo "=== FILE $1"; cat; echo "=== END"; }
scrape() { wget -q -O - "$URL" | grep -E '^vmprobe_(network_packet_size_bytes_(count|sum)|disk_latency_seconds_count|disk_request_size_bytes_sum|drive_info|interface_info|vm_info)' ; }
tapstats() {
	for f in rx_packets rx_bytes tx_packets tx_bytes; do
		echo "$f $(cat /sys/class/net/$TAP/statistics/$f)"
	done
}
# The tap's counters read before and after the scrape, to be sure no frame
# crossed it meanwhile (nothing else uses the tap: equal in practice).
snap() {
	tapstats | section $1.tap0
	scrape | section $1.metrics
	tapstats | section $1.tap1
}

uname -r | section uname
vmprobe check | section check
cat >/tmp/vmprobe.yaml <<YAML
listen: "127.0.0.1:$PORT"
log_level: debug
discovery:
  rescan_interval_ms: 200
YAML
vmprobe serve -c /tmp/vmprobe.yaml >/tmp/vmprobe.log 2>&1 &
VMPROBE=$!
until_ok 120 wget -q -O /dev/null "$URL" || echo "vmprobe serve never answered"

# Each drive read the way its aio= says, as QEMU does: pread, an io_uring
# ring, Linux AIO (O_DIRECT, on the guest's own virtio disk: block requests).
export TAPGUEST_BURST=10:60,5:1514,3:9000 TAPGUEST_READS=8 TAPGUEST_AIO=1
/tmp/bin/qemu-system-x86_64 -name guest=k61 -uuid 00000000-0000-0000-0000-0000000061aa \
	-netdev tap,id=n0,ifname=$TAP,script=no,downscript=no -device virtio-net-pci,netdev=n0,id=net0 \
	-drive file=/tmp/thr.img,format=raw,if=none,id=thr,cache=none,aio=threads \
	-device virtio-blk-pci,drive=thr,id=disk0 \
	-drive file=/tmp/uring.img,format=raw,if=none,id=uring,cache=none,aio=io_uring \
	-device virtio-blk-pci,drive=uring,id=disk1 \
	-drive file=/dev/vda,format=raw,if=none,id=nat,cache=none,aio=native \
	-device virtio-blk-pci,drive=nat,id=disk2 >/tmp/vm.log 2>&1 &
VM=$!
until_ok 30 grep -q ready /tmp/vm.log || echo "the stand-in VM never got ready"
ip link set $TAP up
counted() { scrape | grep 'vmprobe_network_packet_size_bytes_count{name="k61"' | grep -q 'direction="tx"' &&
	scrape | grep -q 'vmprobe_disk_latency_seconds_count{name="k61".*drive="disk2"'; }
until_ok 60 counted || echo "the stand-in VM was never counted"
snap before
# From the VM: 10x60, 5x1514, 3x9000 bytes; to it: 7x100, 4x1400.
kill -USR1 $VM
tapguest inject $TAP 7 100 >/dev/null
tapguest inject $TAP 4 1400 >/dev/null
kill -USR2 $VM
until_ok 30 grep -q '^sent' /tmp/vm.log || echo "the stand-in VM never sent its burst"
until_ok 30 grep -q '^read 24$' /tmp/vm.log || echo "the stand-in VM never read its drives"
sleep 1
snap after
cat /tmp/vm.log | section vm.log
tc qdisc show dev $TAP 2>&1 | section qdisc-running
kill $VM; wait $VM
gone() { ! scrape | grep -q 'name="k61"'; }
until_ok 30 gone && echo gone | section vm-gone
kill -TERM $VMPROBE; wait $VMPROBE; echo "rc=$?" | section vmprobe-exit
cat /tmp/vmprobe.log | section vmprobe.log
EOF
guest_pack_binaries "$WORK/bins.cpio" "$VMPROBE" "$TAPGUEST" ||
	{ tap_fail "pack vmprobe and its libraries for the guest"; tap_done; exit; }
cat "$WORK/workload.cpio" "$WORK/bins.cpio" >"$WORK/initrd"

truncate -s 4M "$WORK/vda.img"
GUEST_MEM=1024 GUEST_IP= guest_start kernel-6.1 "$HTAP" "$WORK/initrd" \
	-drive "file=$WORK/vda.img,format=raw,if=none,id=v0" -device virtio-blk-pci,drive=v0 ||
	{ tap_fail "boot the 6.1 guest"; tap_done; exit; }
rc=0; guest_wait_done "$GUEST_LOG" 600 >"$WORK/wait.log" 2>&1 || rc=$?
check_num "the guest ran its workload to the end" 0 "$rc"
out=$WORK/out
mkdir -p "$out"
tr -d '\r' <"$GUEST_LOG" | awk -v dir="$out" '
	/^=== FILE / { f = dir "/" $3; printf "" > f; next }
	/^=== END$/ { close(f); f = ""; next }
	f != "" { print > f }'
[ -n "${KEEP:-}" ] && echo "# guest output in $out" >&2

check "the guest runs Debian 12's kernel 6.1" grep -q '^6\.1\.' "$out/uname"
check "vmprobe check there: clsact is the hook, TCX absent" \
	eval "grep -q '^absent.*TC attach (tcx)' '$out/check' && grep -q '^ok.*TC attach (clsact).*the hook vmprobe uses' '$out/check'"
check "vmprobe check there: every disk source is on (io_uring_submit_sqe before 6.4)" \
	eval "[ \$(grep -c '^ok *disk source aio=' '$out/check') -eq 3 ]"
check "vmprobe serve there attaches clsact filters to the VM's tap" \
	grep -q 'qdisc clsact' "$out/qdisc-running"

tapv() { awk -v f="$2" '$1 == f { print $2 }' "$out/$1"; } # FILE FIELD
check "no frame crossed the tap during either scrape" \
	eval "cmp -s '$out/before.tap0' '$out/before.tap1' && cmp -s '$out/after.tap0' '$out/after.tap1'"
delta() { # FAMILY LABELS...: growth from before to after
	local a b
	b=$(metric "$out/before.metrics" "$@") a=$(metric "$out/after.metrics" "$@")
	[ -n "$a" ] && [ -n "$b" ] && echo $((a - b))
}
tdelta() { echo $(( $(tapv after.tap1 "$1") - $(tapv before.tap1 "$1") )); }
NIC=(name=k61 interface=vk0)
# The VM's rx is the tap's tx (frames to the guest), and the other way.
check_num "tx packets: the tap's rx_packets, exactly (18 frames)" \
	"$(tdelta rx_packets)" "$(delta vmprobe_network_packet_size_bytes_count "${NIC[@]}" direction=tx)"
check_num "tx bytes: the tap's rx_bytes, exactly" \
	"$(tdelta rx_bytes)" "$(delta vmprobe_network_packet_size_bytes_sum "${NIC[@]}" direction=tx)"
check_num "rx packets: the tap's tx_packets, exactly (11 frames)" \
	"$(tdelta tx_packets)" "$(delta vmprobe_network_packet_size_bytes_count "${NIC[@]}" direction=rx)"
check_num "rx bytes: the tap's tx_bytes, exactly" \
	"$(tdelta tx_bytes)" "$(delta vmprobe_network_packet_size_bytes_sum "${NIC[@]}" direction=rx)"
check_num "the burst was what the VM sent (18 frames)" 18 "$(tdelta rx_packets)"

for d in disk0:threads disk1:io_uring disk2:native; do
	check "aio=${d#*:} drive: measured" grep -q \
		"vmprobe_drive_info{name=\"k61\",drive=\"${d%:*}\".*measured=\"true\"" "$out/after.metrics"
	check_num "aio=${d#*:} drive: every read counted, exactly (8)" 8 \
		"$(delta vmprobe_disk_latency_seconds_count name=k61 drive="${d%:*}" operation=read)"
	check_num "aio=${d#*:} drive: its bytes (8 x 4 KiB)" 32768 \
		"$(delta vmprobe_disk_request_size_bytes_sum name=k61 drive="${d%:*}" operation=read)"
done
check "the VM exited: its series went" test -f "$out/vm-gone"
check "vmprobe exited cleanly on SIGTERM" grep -qx 'rc=0' "$out/vmprobe-exit"
check "no error in vmprobe's log" eval "! grep -iE 'level=error|error:' '$out/vmprobe.log'"
tap_done

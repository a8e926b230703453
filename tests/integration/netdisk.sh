#!/bin/bash
# Network storage end to end: a real single-node Ceph cluster (ceph-mon,
# ceph-osd on memstore) and a real iSCSI target (tgtd), and a QEMU guest
# whose drives are two rbd images (the -drive rbd: form and libvirt's JSON
# -blockdev form), an iSCSI LUN (QEMU's libiscsi driver) and an NBD export
# (nbdkit). The guest does reads, writes, a flush and discards of known
# sizes: per drive and operation, vmprobe's operations and bytes equal the
# guest's own block statistics, and the latency histogram counts every
# operation. The NBD drive, which vmprobe cannot measure, says so in
# /metrics, `list` and `check`. Processes that are not VMs using librbd
# and libiscsi on the same images are never counted. A request of 200
# iovs (a stand-in QEMU on the real librbd) counts all of its bytes;
# requests librbd or the iSCSI target fail count as errors alone.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"
. "$REPO/tests/lib/netstore.sh"

tap_require_cmds "network storage with a QEMU guest" qemu-system-x86_64 nbdkit
netstore_require "network storage with a QEMU guest"
tap_require_root "network storage with a QEMU guest"

WORK=$(mktemp -d /tmp/vmprobe-netdisk.XXXXXX)
PORT=19613 TAP=vmpt-nd0 NBD_PID= IOVS_PID= ISC_PID=
cleanup() {
	[ -n "$IOVS_PID" ] && kill "$IOVS_PID" 2>/dev/null && wait "$IOVS_PID" 2>/dev/null
	[ -n "$ISC_PID" ] && kill "$ISC_PID" 2>/dev/null && wait "$ISC_PID" 2>/dev/null
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	[ -n "$NBD_PID" ] && kill "$NBD_PID" 2>/dev/null && wait "$NBD_PID" 2>/dev/null
	netstore_stop
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null

guest_build_or_fail
ISCSI_THIN=1 netstore_start img1:32 img2:32 other:16
NBD_PORT=$((40000 + RANDOM % 10000))
nbdkit -f -i 127.0.0.1 -p "$NBD_PORT" memory 16M >"$WORK/nbdkit.log" 2>&1 &
NBD_PID=$!

ip tuntap add dev "$TAP" mode tap
ip link set "$TAP" up
vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

# vda = img1, vdb = img2, vdc = iSCSI, vdd = NBD, in -device order.
guest_make_initrd "$WORK/initrd" - <<'SH'
st() { for d in vda vdb vdc; do echo "STAT $1 $d $(cat /sys/block/$d/stat)"; done; }
st BEFORE
echo PHASE-BEFORE
sleep 3
for d in vda vdb vdc; do
	dd if=/dev/zero of=/dev/$d bs=4096 count=32 oflag=direct 2>/dev/null
	dd if=/dev/$d of=/dev/null bs=16384 count=16 iflag=direct 2>/dev/null
	dd if=/dev/zero of=/dev/$d bs=65536 count=4 seek=16 oflag=direct conv=fsync 2>/dev/null
done
blkdiscard -o 2097152 -l 1048576 /dev/vdb
blkdiscard -o 2097152 -l 1048576 /dev/vdc
dd if=/dev/vdd of=/dev/null bs=4096 count=8 iflag=direct 2>/dev/null
st AFTER
echo PHASE-AFTER
sleep 300
SH
NAME=netstore
RBD_BLOCKDEV=$(python3 -c 'import json,sys; print(json.dumps({"driver": "rbd", "pool": sys.argv[1],
	"image": "img2", "conf": sys.argv[2], "node-name": "libvirt-2-storage", "discard": "unmap",
	"cache": {"direct": True}}))' "$CEPH_POOL" "$CEPH_CONF")
GUEST_IP= guest_start "$NAME" "$TAP" "$WORK/initrd" \
	-drive "file=rbd:$CEPH_POOL/img1:conf=$CEPH_CONF,format=raw,if=none,id=r0,cache=none" \
	-device virtio-blk-pci,drive=r0,id=ua-rbd-one \
	-blockdev "$RBD_BLOCKDEV" \
	-blockdev '{"node-name": "libvirt-2-format", "driver": "raw", "file": "libvirt-2-storage", "discard": "unmap"}' \
	-device virtio-blk-pci,drive=libvirt-2-format,id=virtio-disk1 \
	-drive "file=$ISCSI_URL,format=raw,if=none,id=i0,cache=none,discard=unmap" \
	-device virtio-blk-pci,drive=i0,id=lun1 \
	-drive "file=nbd://127.0.0.1:$NBD_PORT,format=raw,if=none,id=n0" \
	-device virtio-blk-pci,drive=n0,id=vol-nbd ||
	{ tap_fail "QEMU guest with rbd, iSCSI and NBD drives starts"; tap_done; exit; }
tap_ok "QEMU guest with rbd, iSCSI and NBD drives starts"
check "the guest reaches its workload" wait_for 90 grep -q PHASE-BEFORE "$GUEST_LOG"
# Before the guest works: pause it, so that no request falls between a scrape and its stats.
guest_paused scrape "$WORK/s0.txt"
check "the guest's workload completes" wait_for 120 grep -q PHASE-AFTER "$GUEST_LOG"
sleep 1
scrape "$WORK/s1.txt"

for d in rbd-one virtio-disk1 lun1; do
	check_eq "drive $d is measured" 1 \
		"$(metric "$WORK/s1.txt" vmprobe_drive_info name=$NAME drive=$d measured=true)"
done
mdelta() { metric_delta "$WORK/s0.txt" "$WORK/s1.txt" "$@"; } # NAME LABELS...
# Guest's /sys/block/DEV/stat: 1 reads, 3 sectors read, 5 writes, 7 sectors
# written, 12 discards, 14 sectors discarded.
for pair in vda:rbd-one:rbd vdb:virtio-disk1:rbd vdc:lun1:iscsi; do
	IFS=: read -r dev drive kind <<<"$pair"
	l=(name="$NAME" drive="$drive")
	check_drive_io "$drive ($kind)" "$dev" "${l[@]}"
	for op in read write flush; do
		check_num "$drive ($kind): the $op latency buckets hold every $op (+Inf = count)" \
			"$(mdelta vmprobe_disk_latency_seconds_count "${l[@]}" operation=$op)" \
			"$(mdelta vmprobe_disk_latency_seconds_bucket "${l[@]}" operation=$op le=+Inf)"
	done
	check_eq "$drive ($kind): the guest did the workload (16 reads; 36 writes + 1 flush)" \
		"16 37" "$(guest_delta $dev 1) $(guest_delta $dev 5)"
	# Present: vmprobe tells this drive's failed requests apart (none here).
	for op in read write flush; do
		check_eq "$drive ($kind): no $op failed, as the guest saw none" 0 \
			"$(mdelta vmprobe_disk_errors_total "${l[@]}" operation=$op)"
	done
done
for pair in vdb:virtio-disk1:rbd vdc:lun1:iscsi; do
	IFS=: read -r dev drive kind <<<"$pair"
	l=(name="$NAME" drive="$drive")
	check_num "$drive ($kind): discards = the guest's" "$(guest_delta $dev 12)" \
		"$(mdelta vmprobe_disk_latency_seconds_count "${l[@]}" operation=discard)"
	check_num "$drive ($kind): bytes discarded = the guest's sectors discarded x 512" \
		"$(( $(guest_delta $dev 14) * 512 ))" "$(mdelta vmprobe_disk_request_size_bytes_sum "${l[@]}" operation=discard)"
done

# NBD: not measured, and said so everywhere.
check_eq "the NBD drive is listed as not measured, with its reason" 1 \
	"$(metric "$WORK/s1.txt" vmprobe_drive_info name=$NAME drive=vol-nbd backend=nbd measured=false \
		reason="nbd: QEMU's built-in NBD client has no hook vmprobe can use")"
check_eq "the NBD drive has no operation series (a zero would mislead)" "" \
	"$(metric "$WORK/s1.txt" vmprobe_disk_latency_seconds_count name=$NAME drive=vol-nbd operation=read)"
"$VMPROBE" list >"$WORK/list.txt" 2>&1
check "vmprobe list says the NBD drive is not measured, and why" grep -qE \
	"^  drive +vol-nbd +nbd .*NOT MEASURED: nbd: QEMU's built-in NBD client" "$WORK/list.txt"
"$VMPROBE" check >"$WORK/check.txt" 2>&1
check "vmprobe check says the NBD drive is not measured" grep -qE \
	"^degraded +VM $NAME drive vol-nbd +not measured: nbd" "$WORK/check.txt"
check "the log said so" grep -q "drive vol-nbd (nbd) is not measured" "$WORK/vmprobe.log"

# Processes that are not VMs, with the same libraries on the same storage.
rbd --conf "$CEPH_CONF" bench --io-type write --io-size 4096 --io-total 1M "$CEPH_POOL/other" \
	>"$WORK/rbd-bench.log" 2>&1
check "a non-VM librbd client (rbd bench) wrote" grep -q "elapsed" "$WORK/rbd-bench.log"
if command -v iscsi-perf >/dev/null; then
	timeout -s INT 3 iscsi-perf "$ISCSI_URL" >"$WORK/iscsi-perf.log" 2>&1
	check "a non-VM libiscsi client (iscsi-perf) read" grep -qiE "iops|MB/s" "$WORK/iscsi-perf.log"
fi
sleep 1
scrape "$WORK/s2.txt"
vm_series() { grep -E '^vmprobe_disk_' "$1" | grep -F "name=\"$NAME\""; }
check "the VM's network disk series are there to compare" test "$(vm_series "$WORK/s1.txt" | wc -l)" -gt 100
check_eq "non-VM librbd and libiscsi IO leaves every VM disk series unchanged" \
	"$(vm_series "$WORK/s1.txt")" "$(vm_series "$WORK/s2.txt")"
check_eq "no session was left unmatched" 0 "$(metric "$WORK/s2.txt" vmprobe_netdisk_unmatched_sessions)"
check "promtool check metrics is clean" bash -c "promtool check metrics <'$WORK/s2.txt'"

# A guest request of scattered pages reaches librbd as one iov per page,
# up to IOV_MAX (QEMU passes the guest's vector as it is). A stand-in QEMU
# (build/bench/netdisk_load under QEMU's name, on the real librbd) reads
# 200 iovs of 4 KiB at a time: vmprobe counts every byte of every read.
LOAD=$REPO/build/bench/netdisk_load
if [ ! -x "$LOAD" ]; then
	tap_fail "the stand-in QEMU is built" "$LOAD is missing (make test builds it)"
	tap_done; exit
fi
mkdir -p "$WORK/bin" && ln -sf "$LOAD" "$WORK/bin/qemu-system-x86_64"

# A stand-in QEMU for VM and drive NAME on drive FILE (the environment
# says what it reaches), started: SPID its pid, SFD its commands.
standin_start() { # NAME FILE WHAT
	mkfifo "$WORK/$1.in"
	"$WORK/bin/qemu-system-x86_64" -name "guest=$1" -drive "file=$2,format=raw,if=none,id=d0" \
		-device "virtio-blk-pci,drive=d0,id=$1" \
		<"$WORK/$1.in" >"$WORK/$1.out" 2>"$WORK/$1.err" &
	SPID=$!
	exec {SFD}>"$WORK/$1.in"
	check "the stand-in QEMU $3" wait_for 60 grep -q READY "$WORK/$1.out"
}
# Its drive is measured, it reads for a second, each read counted: READS.
standin_reads() { # NAME FD
	local name=$1
	standin_metric() { # NAME LABELS...
		scrape "$WORK/s3.txt" &&
			metric "$WORK/s3.txt" "$1" name="$name" drive="$name" "${@:2}"
	}
	standin_measured() { [ "$(standin_metric vmprobe_drive_info measured=true)" = 1 ]; }
	standin_counted() {
		[ "$(standin_metric vmprobe_disk_latency_seconds_count operation=read)" = "$READS" ]
	}
	check "its drive is measured" wait_for 30 standin_measured
	echo "run 1" >&"$2"
	check "it reads" wait_for 60 grep -q '^LAT' "$WORK/$name.out"
	READS=$(awk '/^LAT/ { print $3 }' "$WORK/$name.out"); READS=${READS:-0}
	check "vmprobe counts each of its $READS reads" wait_for 30 standin_counted
}

LOAD_KIND=rbd LOAD_CONF=$CEPH_CONF LOAD_POOL=$CEPH_POOL LOAD_IMAGE=other LOAD_IOVS=200 \
	standin_start iovs "rbd:$CEPH_POOL/other:conf=$CEPH_CONF" "opens the rbd image"
IOVS_PID=$SPID IOVS_FD=$SFD
standin_reads iovs "$IOVS_FD"
check_num "and every byte of them: 200 x 4 KiB a read" "$((READS * 200 * 4096))" \
	"$(metric "$WORK/s3.txt" vmprobe_disk_request_size_bytes_sum name=iovs drive=iovs operation=read)"

# A request that fails is an error, never an operation, bytes or latency.
# Reads past the end of the image or LUN: librbd completes them with
# -EINVAL (read where rbd_aio_get_return_value reads it), the target
# answers CHECK CONDITION. The stand-in's reads so far (READS, of IOVS x
# 4 KiB each) stay as they were, and 5 read errors are counted.
check_failures() { # WHAT VM FD OUT READS [IOVS]
	local what=$1 vm=$2 fd=$3 out=$4 reads=$5
	echo "fail 5" >&"$fd"
	check "$what: 5 reads past the end are sent and fail" wait_for 60 grep -q '^FAILED 5' "$out"
	failed_counted() {
		scrape "$WORK/s4.txt" && [ "$(metric "$WORK/s4.txt" vmprobe_disk_errors_total \
			name="$vm" drive="$vm" operation=read)" = 5 ]
	}
	check "$what: vmprobe counts 5 read errors" wait_for 30 failed_counted
	check_num "$what: and not as reads" "$reads" "$(metric "$WORK/s4.txt" \
		vmprobe_disk_latency_seconds_count name="$vm" drive="$vm" operation=read)"
	check_num "$what: nor as bytes read" "$((reads * ${6:-1} * 4096))" \
		"$(metric "$WORK/s4.txt" vmprobe_disk_request_size_bytes_sum name="$vm" \
			drive="$vm" operation=read)"
}
check_failures "rbd" iovs "$IOVS_FD" "$WORK/iovs.out" "$READS" 200

# A full in-flight table refuses a request and says so: it never evicts one
# in flight unseen (an LRU would, and the lost count would stay 0). The
# table (pinned) is filled with requests of the stand-in that it never
# made; its next reads are each counted lost, and not as reads. When it
# exits, its entries are forgotten.
INFLIGHT=/sys/fs/bpf/vmprobe/netdisk/netdisk_inflight
inflight_count() { # [TGID]: the table's entries, or those of process TGID
	bpftool -j map dump pinned "$INFLIGHT" 2>/dev/null | python3 -c '
import json, sys
want = int(sys.argv[1]) if len(sys.argv) > 1 else None
def tgid(e):  # the key: tgid (4 bytes, little-endian), pad, ptr
    if "formatted" in e:
        return e["formatted"]["key"]["tgid"]
    return int.from_bytes(bytes(int(b, 16) for b in e["key"][:4]), "little")
print(sum(1 for e in json.load(sys.stdin) if want is None or tgid(e) == want))' "$@"
}
inflight_empty() { [ "$(inflight_count "$1")" = 0 ]; } # TGID
fill_inflight() { # TGID: the table filled up with requests of process TGID, started now
	python3 - "$1" "$INFLIGHT" "$((16384 - $(inflight_count)))" >"$WORK/fill.batch" <<'PY'
import struct, sys, time
pid, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
hx = lambda b: " ".join("%02x" % c for c in b)
for i in range(n):
    key = struct.pack("<IIQ", pid, 0, 0x7f0000000000 + i * 64)
    # start_ns, bytes, session (tgid, kind rbd, handle), op read, slot staged
    val = struct.pack("<QQIIQII", now, 4096, pid, 0, 0x7e0000000000, 0, 0xffffffff)
    print("map update pinned %s key hex %s value hex %s" % (path, hx(key), hx(val)))
PY
	bpftool batch file "$WORK/fill.batch" >"$WORK/fill.log" 2>&1 ||
		tap_fail "the in-flight table is filled" "$(tail -3 "$WORK/fill.log")"
}
fill_inflight "$IOVS_PID"
check_eq "the in-flight table is full (16384)" 16384 "$(inflight_count)"
LOST0=$(metric "$WORK/s4.txt" vmprobe_netdisk_lost_requests_total)
echo "run 0.5" >&"$IOVS_FD"
check "the stand-in reads on" wait_for 60 bash -c "[ \$(grep -c '^LAT' '$WORK/iovs.out') = 2 ]"
LOSTREADS=$(awk '/^LAT/ { n = $3 } END { print n }' "$WORK/iovs.out")
scrape "$WORK/s5.txt"
check_num "each of its $LOSTREADS reads is counted lost" "$LOSTREADS" \
	"$(( $(metric "$WORK/s5.txt" vmprobe_netdisk_lost_requests_total) - ${LOST0:-0} ))"
check_num "and none as a read" "$READS" "$(metric "$WORK/s5.txt" \
	vmprobe_disk_latency_seconds_count name=iovs drive=iovs operation=read)"
exec {IOVS_FD}>&-
LOSTPID=$IOVS_PID
wait "$IOVS_PID" 2>/dev/null
IOVS_PID=
check "the stand-in exits: its entries in the table are forgotten" \
	wait_for 30 inflight_empty "$LOSTPID"

# The same on the iSCSI LUN, a stand-in QEMU on the real libiscsi.
LOAD_KIND=iscsi LOAD_PORTAL=$ISCSI_PORTAL LOAD_TARGET=$ISCSI_IQN LOAD_LUN=$ISCSI_LUN \
	standin_start isc "$ISCSI_URL" "logs in to the iSCSI target"
ISC_PID=$SPID ISC_FD=$SFD
standin_reads isc "$ISC_FD"
check_failures "iSCSI" isc "$ISC_FD" "$WORK/isc.out" "$READS"

# Entries of a process that is gone, whose requests never complete, are
# forgotten (at the latest a minute on; sooner when the table refuses a
# request), and requests are followed again. Meanwhile each read is
# either counted or counted lost, never both, never neither.
sleep 0 & DEAD=$!; wait "$DEAD" # a pid no process has now
fill_inflight "$DEAD"
check_eq "the in-flight table is full (16384), of a gone process's requests" 16384 \
	"$(inflight_count)"
scrape "$WORK/s6.txt"
echo "run 1" >&"$ISC_FD"
check "the stand-in reads on" wait_for 60 bash -c "[ \$(grep -c '^LAT' '$WORK/isc.out') = 2 ]"
N1=$(awk '/^LAT/ { n = $3 } END { print n }' "$WORK/isc.out")
check "the gone process's entries are forgotten" wait_for 120 inflight_empty "$DEAD"
scrape "$WORK/s7.txt"
isc_delta() { metric_delta "$WORK/s6.txt" "$WORK/s7.txt" "$@"; }
check_num "each of its $N1 reads meanwhile is counted, or counted lost" "$N1" \
	"$(( $(isc_delta vmprobe_disk_latency_seconds_count name=isc drive=isc operation=read) +
	     $(isc_delta vmprobe_netdisk_lost_requests_total) ))"
echo "run 1" >&"$ISC_FD"
check "and it reads again" wait_for 60 bash -c "[ \$(grep -c '^LAT' '$WORK/isc.out') = 3 ]"
N2=$(awk '/^LAT/ { n = $3 } END { print n }' "$WORK/isc.out")
isc_again() {
	scrape "$WORK/s8.txt" && [ "$(metric_delta "$WORK/s7.txt" "$WORK/s8.txt" \
		vmprobe_disk_latency_seconds_count name=isc drive=isc operation=read)" = "$N2" ]
}
check "then every one of its $N2 reads is counted" wait_for 30 isc_again
check_num "and none lost" 0 "$(metric_delta "$WORK/s7.txt" "$WORK/s8.txt" \
	vmprobe_netdisk_lost_requests_total)"
exec {ISC_FD}>&-
tap_done

#!/bin/bash
# Disk IO end to end: a real QEMU guest (TCG) with three virtio-blk drives,
# one per AIO mode (threads, io_uring, native; cache=none), does O_DIRECT
# reads, writes and a flush of known sizes. Per drive and operation,
# vmprobe's operations and bytes must equal what the guest's own block
# statistics say it issued; latency histograms count every operation with
# plausible values. Host block latency agrees with libbpf-tools'
# biolatency run side by side. IO from processes that are not VMs (dd, fio
# with psync, libaio and io_uring) leaves the VM's counters unchanged.
# A real Prometheus computes histogram_quantile per drive.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

tap_require_cmds "disk end to end with a QEMU guest" qemu-system-x86_64 prometheus promtool biolatency fio losetup
tap_require_root "disk end to end with a QEMU guest"

WORK=$(mktemp -d /tmp/vmprobe-disk.XXXXXX)
PORT=19583 PROM_PORT=19591 TAP=vmpt-d0
PROM_PID= BIO_PID= LOOP=
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
	[ -n "$BIO_PID" ] && kill "$BIO_PID" 2>/dev/null
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	ip link del "$TAP" 2>/dev/null
	umount "$WORK/img" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null

guest_build_or_fail

# Images on tmpfs (O_DIRECT works there); the native drive is a loop device
# on tmpfs, since Linux AIO on a plain tmpfs file completes inside io_submit
# without any block request.
mkdir -p "$WORK/img"
mount -t tmpfs -o size=128m tmpfs "$WORK/img"
truncate -s 16M "$WORK/img/thr.img" "$WORK/img/uring.img" "$WORK/img/native.img"
LOOP=$(losetup -f --show "$WORK/img/native.img")
LOOPDEV=${LOOP#/dev/}

guest_tap_add "$TAP"

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
check "vmprobe logs every disk source as on" grep -q \
	"disk sources: threads on, io_uring on, native on, host block on" "$WORK/vmprobe.log"

prometheus_start_tap $PROM_PORT $PORT

# vda = thr (threads), vdb = uring (io_uring), vdc = native, in -device order.
guest_make_initrd "$WORK/initrd" - <<'SH'
st() { for d in vda vdb vdc; do echo "STAT $1 $d $(cat /sys/block/$d/stat)"; done; }
st BEFORE
echo PHASE-BEFORE
sleep 3
for d in vda vdb vdc; do
	dd if=/dev/zero of=/dev/$d bs=4096 count=64 oflag=direct 2>/dev/null
	dd if=/dev/$d of=/dev/null bs=16384 count=32 iflag=direct 2>/dev/null
	dd if=/dev/zero of=/dev/$d bs=65536 count=8 seek=16 oflag=direct conv=fsync 2>/dev/null
done
st AFTER
echo PHASE-AFTER
sleep 300
SH
# biolatency and vmprobe's host block counters over the same window: from
# before the guest boots until after its workload.
stdbuf -oL biolatency -d "$LOOPDEV" >"$WORK/biolatency.txt" 2>&1 &
BIO_PID=$!
check "biolatency is tracing" wait_for 20 grep -q Tracing "$WORK/biolatency.txt"
scrape "$WORK/sb0.txt"

NAME='db "disk" \ vm'
NAME_EXP='db \"disk\" \\ vm'
guest_three_drives "$WORK/img" "$LOOP" ua-thr
GUEST_IP= guest_start "$NAME" "$TAP" "$WORK/initrd" "${GUEST_DRIVES[@]}" ||
	{ tap_fail "QEMU guest with three drives starts"; tap_done; exit; }
tap_ok "QEMU guest with three drives starts"


check "the guest reaches its workload" wait_for 90 grep -q PHASE-BEFORE "$GUEST_LOG"
# Freeze the guest while taking the "before" counters, so that however
# slow this host is, the workload cannot start under our feet.
guest_paused scrape "$WORK/s0.txt"
check "the guest's workload completes" wait_for 120 grep -q PHASE-AFTER "$GUEST_LOG"
sleep 0.5
scrape "$WORK/s1.txt"
kill -INT "$BIO_PID"; wait "$BIO_PID" 2>/dev/null; BIO_PID=

# Guest's /sys/block/DEV/stat: 1 reads, 3 sectors read, 5 writes,
# 7 sectors written, 15 flushes.
mdelta() { metric_delta "$WORK/s0.txt" "$WORK/s1.txt" "$@"; } # NAME LABELS...

for pair in vda:thr:threads vdb:uring:io_uring vdc:native:native; do
	IFS=: read -r dev drive mode <<<"$pair"
	l=(name="$NAME_EXP" drive="$drive")
	check_drive_io "$drive ($mode)" "$dev" "${l[@]}"
	check_eq "$drive ($mode): the guest did the workload (32 reads; 72 writes + 1 flush)" \
		"32 73" "$(guest_delta $dev 1) $(guest_delta $dev 5)"
	for op in read write; do
		n=$(mdelta vmprobe_disk_latency_seconds_count "${l[@]}" operation=$op)
		check_num "$drive ($mode): $op latency buckets hold every $op (+Inf = count)" \
			"$(mdelta vmprobe_disk_latency_seconds_bucket "${l[@]}" operation=$op le=+Inf)" "$n"
		sum0=$(metric "$WORK/s0.txt" vmprobe_disk_latency_seconds_sum "${l[@]}" operation=$op)
		sum1=$(metric "$WORK/s1.txt" vmprobe_disk_latency_seconds_sum "${l[@]}" operation=$op)
		# Host-side latency of a small O_DIRECT request on tmpfs or a loop
		# device: microseconds to milliseconds; anything outside 1 us .. 1 s
		# would mean wrong pairing of issue and completion.
		check_range "$drive ($mode): mean $op latency is plausible (1 us .. 1 s)" 0.000001 1 \
			"$(awk -v a="$sum0" -v b="$sum1" -v n="$n" 'BEGIN { if (n > 0) printf "%.9f", (b - a) / n }')"
	done
	check_num "$drive ($mode): request sizes: 64 of 4 KiB written (bucket le=4096 minus le=2048)" 64 \
		"$(( $(mdelta vmprobe_disk_request_size_bytes_bucket "${l[@]}" operation=write le=4096) - \
		     $(mdelta vmprobe_disk_request_size_bytes_bucket "${l[@]}" operation=write le=2048) ))"
done

check_num "every source measured requests: threads" 1 \
	"$(awk -v v="$(metric "$WORK/s1.txt" vmprobe_disk_source_requests_total source=threads)" 'BEGIN{print (v > 0)}')"
check_num "every source measured requests: io_uring" 1 \
	"$(awk -v v="$(metric "$WORK/s1.txt" vmprobe_disk_source_requests_total source=io_uring)" 'BEGIN{print (v > 0)}')"
check_num "every source measured requests: native" 1 \
	"$(awk -v v="$(metric "$WORK/s1.txt" vmprobe_disk_source_requests_total source=native)" 'BEGIN{print (v > 0)}')"

# Host block latency next to biolatency, on the native drive's loop device.
# Both see every block_rq_complete over the same quiet window (vmprobe
# times from the request's issue stamp, biolatency from block_rq_issue;
# without a scheduler, allocation is issue), so request
# counts must agree within 2%. Their buckets differ (biolatency: [2^k,
# 2^(k+1)) us; vmprobe: (2^(i-1), 2^i] ns), so each median's bucket upper
# edge lies in [m, 2m] for the true median m: the edges must be within a
# factor of 2 of each other.
read -r bio_n bio_med < <(awk '/->/ { n[NR]=$5; hi_[NR]=$3+1; tot+=$5 } END {
	half = tot / 2; c = 0; for (i = 1; i <= NR; i++) if (i in n) { c += n[i]; if (c >= half) { print tot, hi_[i]; exit } } }' \
	"$WORK/biolatency.txt")
vm_hist=$(python3 - "$WORK/sb0.txt" "$WORK/s1.txt" "$LOOPDEV" <<'PY'
import re, sys
def load(p):
    h = {}
    for line in open(p):
        m = re.match(r'vmprobe_host_block_latency_seconds_bucket\{device="([^"]*)",operation="[^"]*",le="([^"]*)"\} (\d+)', line)
        if m and m.group(1) == sys.argv[3]:
            h[m.group(2)] = h.get(m.group(2), 0) + int(m.group(3))
    return h
a, b = load(sys.argv[1]), load(sys.argv[2])
d = {le: b[le] - a.get(le, 0) for le in b}
tot = d.get("+Inf", 0)
finite = sorted((float(le), c) for le, c in d.items() if le != "+Inf")
med = next((le for le, c in finite if c >= tot / 2), float("inf")) if tot else 0
print(tot, med * 1e6)
PY
)
read -r vm_n vm_med <<<"$vm_hist"
check_range "host block: request count on $LOOPDEV agrees with biolatency's ($bio_n) within 2%" \
	"$(awk -v n="$bio_n" 'BEGIN{print n*0.98}')" "$(awk -v n="$bio_n" 'BEGIN{print n*1.02}')" "$vm_n"
check_range "host block: median bucket edge (${vm_med} us) within 2x of biolatency's (${bio_med} us)" \
	"$(awk -v m="$bio_med" 'BEGIN{print m/2}')" "$(awk -v m="$bio_med" 'BEGIN{print m*2}')" "$vm_med"

# IO from processes that are not VMs, on the same images and device.
dd if=/dev/zero of="$WORK/img/thr.img" bs=4096 count=50 oflag=direct conv=notrunc 2>/dev/null
dd if="$LOOP" of=/dev/null bs=4096 count=50 iflag=direct 2>/dev/null
for engine in psync libaio io_uring; do
	fio --name=nonvm-$engine --filename="$WORK/img/uring.img" --direct=1 --rw=randrw --bs=4k \
		--ioengine=$engine --size=4M --io_size=2M --fsync=16 >/dev/null 2>&1
	fio --name=nonvm-$engine-blk --filename="$LOOP" --direct=1 --rw=randread --bs=4k \
		--ioengine=$engine --size=4M --io_size=2M >/dev/null 2>&1
done
sleep 0.5
scrape "$WORK/s2.txt"
vm_series() { grep '^vmprobe_disk_' "$1" | grep -F "name=\"$NAME_EXP\""; }
check "the VM's disk series are there to compare" test "$(vm_series "$WORK/s1.txt" | wc -l)" -gt 100
check_eq "non-VM IO (dd, fio psync/libaio/io_uring) leaves every VM disk series unchanged" \
	"$(vm_series "$WORK/s1.txt")" "$(vm_series "$WORK/s2.txt")"
check "promtool check metrics is clean" bash -c "promtool check metrics <'$WORK/s2.txt'"
# Every family served is described (vmprobe metrics, the README's table), with its type.
check_eq "every served family is one vmprobe metrics describes, with the same type" "" \
	"$(comm -23 <(sed -n 's/^# TYPE \([^ ]*\) \(.*\)/\1 \2/p' "$WORK/s2.txt" | sort) \
		<("$VMPROBE" metrics | awk '{ print $1, $2 }' | sort))"

sleep 2
sel="drive=\"thr\",operation=\"write\""
got=$(promql "histogram_quantile(0.5, sum by (le) (increase(vmprobe_disk_latency_seconds_bucket{$sel}[2m])))")
check_range "Prometheus: histogram_quantile(0.5) of a drive's write latency is plausible" \
	0.000001 1 "$got"
got=$(promql "histogram_quantile(0.99, sum by (drive, le) (rate(vmprobe_disk_request_size_bytes_bucket{operation=\"read\",drive=\"native\"}[2m])))")
check_range "Prometheus: p99 read size of the native drive is in the 16 KiB bucket" 8192.000001 16384 "$got"
tap_done

#!/bin/bash
# Failed requests are errors, never operations; fallocate counts by mode.
# A stand-in VM (tapguest) makes known requests on two drives, one by
# syscalls (aio=threads) and one through an io_uring (aio=io_uring):
# reads, writes, vectored ones, a flush, hole punches, a zero range,
# preallocations, and requests the kernel fails (EINVAL: a negative
# offset, a zero length). Per drive and operation, exactly: the requests
# that succeeded are the latency histogram's count, their bytes the size
# histogram's sum, one size sample each (none for a flush); the failed ones are vmprobe_disk_errors_total
# alone. Punch hole and zero range are discards on both paths; a
# preallocation (mode 0, or KEEP_SIZE alone) is no request of the guest.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "disk errors and fallocate modes"

WORK=$(mktemp -d /tmp/vmprobe-diskerr.XXXXXX)
PORT=19612 VM=
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	[ -n "$VM" ] && kill "$VM" 2>/dev/null && wait "$VM" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

QEMU=$(tapguest_dir)
# On ext4 (/tmp here): punch hole and zero range both work.
truncate -s 1M "$WORK/thr.img" "$WORK/uring.img"
vmprobe_start $PORT "network:
  enabled: false" || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
if ! grep -q "disk sources: threads on, io_uring on" "$WORK/vmprobe.log"; then
	tap_skip "disk errors and fallocate modes" "threads or io_uring is not measured here (see the log)"
	tap_done; exit
fi
export TAPGUEST_OPS="read:3,badread:2,readv,badreadv,write:2,badwrite:3,flush,punch:2,zero,prealloc:2,keepsize,badpunch"
"$QEMU" -name guest=err-vm \
	-drive "file=$WORK/thr.img,format=raw,if=none,id=thr,cache=none,aio=threads" \
	-drive "file=$WORK/uring.img,format=raw,if=none,id=uring,cache=none,aio=io_uring" \
	>"$WORK/vm.out" 2>&1 &
VM=$!

counted() {
	scrape && [ -n "$(metric "$WORK/metrics.txt" vmprobe_disk_latency_seconds_count name=err-vm drive=uring)" ]
}
check "both drives' series appear" wait_for 10 counted
scrape "$WORK/s0.txt"
kill -USR2 "$VM"
check "the stand-in VM made its requests (20 on each drive)" wait_for 10 grep -q "^ops 40$" "$WORK/vm.out"
sleep 0.2
scrape "$WORK/s1.txt"
d() { metric_delta "$WORK/s0.txt" "$WORK/s1.txt" "$@"; } # NAME LABELS...

for drive in thr uring; do
	l=(name=err-vm drive="$drive")
	# op ops bytes errors
	while read -r op ops bytes errors; do
		check_num "$drive: $op operations (latency samples) are the requests that succeeded" "$ops" \
			"$(d vmprobe_disk_latency_seconds_count "${l[@]}" operation=$op)"
		if [ "$op" = flush ]; then
			check_eq "$drive: a flush has no size, hence no bytes" "" \
				"$(metric "$WORK/s1.txt" vmprobe_disk_request_size_bytes_sum "${l[@]}" operation=$op)"
			continue
		fi
		check_num "$drive: $op bytes are theirs alone" "$bytes" \
			"$(d vmprobe_disk_request_size_bytes_sum "${l[@]}" operation=$op)"
		check_num "$drive: $op size samples: one per success" "$ops" \
			"$(d vmprobe_disk_request_size_bytes_count "${l[@]}" operation=$op)"
		check_num "$drive: $op errors are the requests that failed" "$errors" \
			"$(d vmprobe_disk_errors_total "${l[@]}" operation=$op)"
	done <<-EOF
		read 4 20480 3
		write 2 8192 3
		flush 1 0 0
		discard 3 12288 1
	EOF
done
check "promtool check metrics is clean" bash -c "promtool check metrics <'$WORK/s1.txt'"
tap_done

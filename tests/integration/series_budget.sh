#!/bin/bash
# The series budget: how many series a VM, a drive and a tap cost with the
# default configuration (the numbers the README states), and what the
# config's switches change: the counters a histogram's _count and _sum
# repeat are off by default and equal to them when turned on
# (exposition.enabled_families); families left out (disabled_families)
# are gone in text and protobuf, bucket ranges (exposition.time_buckets,
# disk.request_size_buckets, network.packet_size_buckets) set the le
# bounds, rounded out to powers of two. A stand-in VM with one tap and one
# drive; promtool checks every body.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

what="the series budget"
tap_require_root "$what" tun
[ -x "$TAPGUEST" ] || { tap_skip "$what" "$TAPGUEST is not built (make test builds it)"; tap_done; exit; }
WORK=$(mktemp -d /tmp/vmprobe-budget.XXXXXX)
PORT=19661 VM= TAP=vmsb-t0
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	[ -n "$VM" ] && kill "$VM" 2>/dev/null && wait "$VM" 2>/dev/null
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

QEMU=$(tapguest_dir)
truncate -s 1M "$WORK/d0.img"
ip tuntap add dev "$TAP" mode tap && ip link set "$TAP" up ||
	{ tap_fail "a tap for the stand-in VM"; tap_done; exit; }
TAPGUEST_BURST=3:100,2:1500 "$QEMU" -name guest=sb-vm -netdev "tap,id=n0,ifname=$TAP" -device virtio-net-pci,netdev=n0,id=net0 \
	-drive "file=$WORK/d0.img,format=raw,if=none,id=d0,cache=none,aio=threads" \
	-device virtio-blk-pci,drive=d0,id=disk0 >"$WORK/vm.out" 2>&1 &
VM=$!

# Series of the VM in $WORK/metrics.txt: all, or those matching a regex.
series() { grep -v '^#' "$WORK/metrics.txt" | grep 'name="sb-vm"' | grep -cE "${1:-.}"; }
fam() { grep -v '^#' "$WORK/metrics.txt" | grep 'name="sb-vm"' | grep -cE "^$1(_bucket|_sum|_count)?\{"; }
counted() {
	scrape && [ "$(fam vmprobe_disk_latency_seconds)" -gt 0 ] &&
		[ "$(fam vmprobe_network_tcp_rtt_seconds)" -gt 0 ]
}
hist() { echo $(($2 - $1 + 1 + 3)); } # MIN_SLOT MAX_SLOT: buckets, +Inf, _sum, _count
promtool_ok() { command -v promtool >/dev/null || return 0; promtool check metrics <"$WORK/metrics.txt"; }

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
check "the VM's drive and tap are counted" wait_for 15 counted
# Defaults: time le 2^-20..2^4 s (slots 10..34 of 2^-30 s), request sizes
# 2^9..2^24 B, frame sizes 2^6..2^16 B.
TIME=$(hist 10 34) DSIZE=$(hist 9 24) NSIZE=$(hist 6 16)
drive=$(series 'drive="disk0"' ) info_d=$(series '^vmprobe_drive_info')
check_num "a drive: 4 operations x (errors + latency) + size for read, write, discard (no flush)" \
	$((4 * (1 + TIME) + 3 * DSIZE)) $((drive - info_d))
check_num "the flush has no size histogram" 0 "$(series '^vmprobe_disk_request_size_bytes.*operation="flush"')"
tap=$(series 'interface="'"$TAP"'"') info_i=$(series '^vmprobe_interface_info')
check_num "a tap: 2 directions x size + RTT for 2 paths + 3 TCP counters x 2" \
	$((2 * NSIZE + 2 * TIME + 3 * 2)) $((tap - info_i))
vm=$(series)
check_num "the VM beyond its drives and taps: info, host TCP (srtt, retransmits)" \
	$((1 + TIME + 1)) $((vm - drive - tap))
echo "# default budget: $vm series for a VM with one drive ($((drive - info_d)) + info) and one tap ($((tap - info_i)) + info)"
REPEATED=(vmprobe_disk_operations_total vmprobe_disk_bytes_total vmprobe_network_packets_total
	vmprobe_network_bytes_total)
for f in "${REPEATED[@]}"; do
	check_num "$f is off by default" 0 "$(grep -c "$f" "$WORK/metrics.txt")"
done
check "promtool accepts the default body" promtool_ok
vmprobe_stop

# The repeated counters turned on: the same values as the histograms'.
vmprobe_start $PORT "exposition:
  enabled_families: [$(IFS=,; echo "${REPEATED[*]}")]" ||
	{ tap_fail "vmprobe serve starts with enabled_families" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
check "the VM's drive and tap are counted with the repeated counters on" wait_for 15 counted
TIME=$(hist 10 34) DSIZE=$(hist 9 24) NSIZE=$(hist 6 16)
drive=$(series 'drive="disk0"') tap=$(series 'interface="'"$TAP"'"')
check_num "a drive: 4 operations x (3 counters + latency) + size for 3" \
	$((4 * (3 + TIME) + 3 * DSIZE)) $((drive - 1))
check_num "a tap: 2 directions x (2 counters + size) + RTT + TCP counters" \
	$((2 * (2 + NSIZE) + 2 * TIME + 3 * 2)) $((tap - 1))
# The VM's sample of NAME with LABEL=VALUE... in the last scrape.
value() { metric "$WORK/metrics.txt" "$1" name=sb-vm "${@:2}"; }
# Traffic both ways and reads: 5 frames from the guest, 4 to it, 8 reads of 4 KiB.
kill -USR1 "$VM" && kill -USR2 "$VM" && "$TAPGUEST" inject "$TAP" 4 200 >/dev/null
traffic() {
	scrape && [ "$(value vmprobe_disk_operations_total drive=disk0 operation=read)" = 8 ] &&
		[ "$(value vmprobe_network_packets_total interface="$TAP" direction=tx)" = 5 ] &&
		[ "$(value vmprobe_network_packets_total interface="$TAP" direction=rx)" -ge 4 ]
}
check "8 reads, 5 frames from the guest and 4 to it counted" wait_for 15 traffic
same() { # COUNTER HISTOGRAM_SERIES LABEL=VALUE...
	local a b
	a=$(value "$1" "${@:3}") b=$(value "$2" "${@:3}")
	check "$1{${*:3}} = $2 ($a)" test -n "$a" -a "$a" = "$b"
}
for op in read write flush discard; do
	same vmprobe_disk_operations_total vmprobe_disk_latency_seconds_count drive=disk0 operation=$op
done
for op in read write discard; do
	same vmprobe_disk_bytes_total vmprobe_disk_request_size_bytes_sum drive=disk0 operation=$op
done
for dir in rx tx; do
	same vmprobe_network_packets_total vmprobe_network_packet_size_bytes_count interface="$TAP" direction=$dir
	same vmprobe_network_bytes_total vmprobe_network_packet_size_bytes_sum interface="$TAP" direction=$dir
done
check "promtool accepts the body with the repeated counters" promtool_ok
vmprobe_stop

# A lean budget: the counters the histograms' _count and _sum repeat left
# out, host TCP too, narrower ranges (50 us rounds down to 2^-15 s, 3 s up to 4 s).
OFF=(vmprobe_disk_operations_total vmprobe_disk_bytes_total vmprobe_network_packets_total
	vmprobe_network_bytes_total vmprobe_host_tcp_srtt_seconds vmprobe_host_tcp_retransmits_total)
vmprobe_start $PORT "exposition:
  disabled_families: [$(IFS=,; echo "${OFF[*]}")]
  time_buckets: {min: 0.00005, max: 3}
disk:
  request_size_buckets: {min: 4096, max: 1048576}
network:
  packet_size_buckets: {min: 128, max: 2048}" ||
	{ tap_fail "vmprobe serve starts with a lean budget" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
check "the VM's drive and tap are counted again" wait_for 15 counted
for f in "${OFF[@]}"; do
	check_num "$f left out" 0 "$(grep -c "^$f" "$WORK/metrics.txt")"
done
check "and not even described (no HELP or TYPE)" eval "! grep -q '^# .* vmprobe_disk_operations_total ' '$WORK/metrics.txt'"
TIME=$(hist 15 32) DSIZE=$(hist 12 20) NSIZE=$(hist 7 11)
drive=$(series 'drive="disk0"') tap=$(series 'interface="'"$TAP"'"') vm=$(series)
check_num "a drive: latency and errors for 4 operations, size for 3" $((4 * (TIME + 1) + 3 * DSIZE)) $((drive - 1))
check_num "a tap: size for 2 directions, RTT for 2 paths, 3 TCP counters x 2" \
	$((2 * NSIZE + 2 * TIME + 6)) $((tap - 1))
check_num "the VM beyond: its info" 1 $((vm - drive - tap))
echo "# lean budget: $vm series for the same VM"
lat='vmprobe_disk_latency_seconds_bucket{name="sb-vm",drive="disk0",operation="read",le='
check "time buckets start at 2^-15 s (50 us rounded down)" grep -qF "${lat}\"3.0517578125e-05\"}" "$WORK/metrics.txt"
check "and end at 4 s (3 s rounded up), then +Inf" \
	eval "grep -F '$lat' '$WORK/metrics.txt' | tail -2 | cut -d'\"' -f8 | tr '\n' ' ' | grep -qx '4 +Inf '"
check "request sizes from 4096 B" grep -qF 'vmprobe_disk_request_size_bytes_bucket{name="sb-vm",drive="disk0",operation="read",le="4096"}' "$WORK/metrics.txt"
check "promtool accepts the lean body" promtool_ok
pb=$(curl -sf -H 'Accept: application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited' \
	"$VMPROBE_URL" | tr -c '[:print:]' '\n' | grep -c 'vmprobe_disk_operations_total')
check_num "left out of protobuf too" 0 "$pb"
vmprobe_stop
check_fails "an unknown family name is refused at start" \
	bash -c "printf 'exposition:\n  disabled_families: [vmprobe_disk_latency]\n' >'$WORK/bad.yaml' &&
		timeout 10 '$VMPROBE' serve -c '$WORK/bad.yaml' --listen 127.0.0.1:$((PORT + 1)) 2>'$WORK/bad.err'"
check "naming file:line:column and the name" \
	grep -q "bad.yaml:2:23: unknown metric family 'vmprobe_disk_latency'" "$WORK/bad.err"
tap_done

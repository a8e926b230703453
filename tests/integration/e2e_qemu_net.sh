#!/bin/bash
# End to end with a real QEMU guest (TCG) on a tap, named with characters
# that need escaping, scraped by a real Prometheus server. The guest pings
# the host at a steady rate; vmprobe's counters must equal the tap's kernel
# counters exactly, and PromQL rate() and histogram_quantile() must return
# what the workload implies. `promtool check metrics` must be clean.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

for need in qemu-system-x86_64 prometheus promtool; do
	if ! command -v $need >/dev/null; then
		tap_skip "end to end with a QEMU guest and Prometheus" "$need is not installed"
		tap_done; exit
	fi
done
tap_require_root "end to end with a QEMU guest and Prometheus" tun

WORK=$(mktemp -d /tmp/vmprobe-e2e.XXXXXX)
PORT=19582 PROM_PORT=19590 TAP=vmpt-q0
PROM_PID=
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null

guest_build_or_fail "kernel from Debian's archive"

guest_tap_add "$TAP"
ip addr add 10.77.0.1/24 dev "$TAP"

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

prometheus_start_tap $PROM_PORT $PORT

# 1 ARP exchange first, then 300 pings of 1000 bytes every 50 ms (1042-byte
# frames both ways), a steady ~20 frames/s for ~15 s.
guest_make_initrd "$WORK/initrd" - <<'SH'
ping -c 1 -W 5 10.77.0.1 >/dev/null
sleep 1
ping -q -c 300 -i 0.05 -s 1000 10.77.0.1
# Stay up while the host reads the final counts: a VM that exits is gone.
echo PINGS-DONE
sleep 120
SH
NAME='vm "alpha" \ beta, ünï'
NAME_EXP='vm \"alpha\" \\ beta, ünï'
guest_start "$NAME" "$TAP" "$WORK/initrd" || { tap_fail "QEMU guest starts"; tap_done; exit; }
tap_ok "QEMU guest starts"

counted() { scrape && [ -n "$(metric "$WORK/metrics.txt" vmprobe_network_packet_size_bytes_count name="$NAME_EXP" interface=$TAP direction=tx)" ]; }
check "the guest's tap is counted once QEMU runs (within 10 s)" wait_for 10 counted
check_num "the VM is exposed with its uuid and pid" 1 \
	"$(metric "$WORK/metrics.txt" vmprobe_vm_info name="$NAME_EXP" uuid="$GUEST_UUID" pid="$GUEST_PID")"

# Two samples of the tap's own counter inside the steady part of the run.
steady() { [ "$(tapstat $TAP rx_packets)" -ge 60 ]; }
wait_for 60 steady
ta=$(date +%s.%N); ra=$(tapstat $TAP rx_packets)
sleep 8
tb=$(date +%s.%N); rb=$(tapstat $TAP rx_packets)

check "the guest workload completes" wait_for 120 grep -q PINGS-DONE "$GUEST_LOG"
sleep 3 # quiet, and at least two more scrapes
lbl=(name="$NAME_EXP" interface=$TAP)
if scrape_with_tap $TAP "$WORK/final.txt"; then tap_ok "the tap stays quiet for a scrape"; else tap_fail "the tap stays quiet for a scrape"; fi
check_tap_totals "" "$WORK/final.txt" "$NAME_EXP" $TAP
tx=$(metric "$WORK/final.txt" vmprobe_network_packet_size_bytes_count "${lbl[@]}" direction=tx)
check_range "the workload's 301 pings and a few ARP frames left the guest" 302 310 "$tx"
check "promtool check metrics is clean" bash -c "promtool check metrics <'$WORK/final.txt'"

# PromQL. The selector uses the unescaped name: the escaping round-trips.
sel="name=\"$(printf '%s' "$NAME" | sed 's/\\/\\\\/g; s/"/\\"/g')\",interface=\"$TAP\""
check_num "Prometheus holds the final count under the raw VM name" "$tx" \
	"$(promql "vmprobe_network_packet_size_bytes_count{$sel,direction=\"tx\"}")"
win=$(awk -v a="$ta" -v b="$tb" 'BEGIN { printf "%d", b - a }')
want=$(awk -v a="$ta" -v b="$tb" -v x="$ra" -v y="$rb" 'BEGIN { printf "%.3f", (y - x) / (b - a) }')
got=$(promql "rate(vmprobe_network_packet_size_bytes_count{$sel,direction=\"tx\"}[${win}s])" "$tb")
# rate() extrapolates from 1 s samples to the window's edges and the host's
# two tap reads are not aligned with the scrapes: allow 25% either way.
check_range "rate() of frames from the guest matches the tap's rate ($want/s)" \
	"$(awk -v w="$want" 'BEGIN{print w*0.75}')" "$(awk -v w="$want" 'BEGIN{print w*1.25}')" "$got"
for q in 0.5 0.9; do
	got=$(promql "histogram_quantile($q, rate(vmprobe_network_packet_size_bytes_bucket{$sel,direction=\"tx\"}[${win}s]))" "$tb")
	check_range "histogram_quantile($q) of frame sizes lies in the 1042-byte frames' bucket (1024, 2048]" \
		1024.000001 2048 "$got"
done
got=$(promql "histogram_quantile(0.5, rate(vmprobe_network_packet_size_bytes_bucket{$sel,direction=\"rx\"}[${win}s]))" "$tb")
check_range "histogram_quantile(0.5) of frames to the guest (echo replies) in (1024, 2048]" 1024.000001 2048 "$got"
check_num "no frame hit a device without a slot" 0 \
	"$(metric "$WORK/final.txt" vmprobe_network_unknown_interface_frames_total)"

# Drops: pause the guest through QEMU's monitor so it stops draining its
# RX ring, send it frames: the tap drops what it cannot queue, and
# vmprobe's drop counter (reason FULL_RING) equals the tap's tx_dropped.
drops() { metric "$1" vmprobe_network_drops_total "${lbl[@]}" direction=rx reason=FULL_RING; }
scrape "$WORK/p0.txt"; td0=$(tapstat $TAP tx_dropped)
d0=$(drops "$WORK/p0.txt") # no series until the first drop
d0=${d0:-0}
guest_paused "$REPO/build/tests/tools/tapguest" inject $TAP 3000 200 >/dev/null
sleep 0.5
scrape "$WORK/p1.txt"; td1=$(tapstat $TAP tx_dropped)
check "pausing the guest made the tap drop frames" test $((td1 - td0)) -gt 0
check_num "drops (FULL_RING) = the tap's tx_dropped while the guest was paused" "$((td1 - td0))" \
	"$(( $(drops "$WORK/p1.txt") - d0 ))"

guest_stop
gone() { scrape "$WORK/g.txt" && [ -z "$(metric "$WORK/g.txt" vmprobe_vm_info name="$NAME_EXP")" ]; }
check "the stopped guest's series are removed" wait_for 2 gone
tap_done

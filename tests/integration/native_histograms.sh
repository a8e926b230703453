#!/bin/bash
# The exposition formats as a real Prometheus (2.42) reads them. One with
# --enable-feature=native-histograms asks for protobuf and stores vmprobe's
# histograms as native ones; every bucket of them must be exactly the
# classic bucket of the same bound (log2 slots are schema-0 buckets), and
# count and sum those of the text format. One without the feature asks for
# OpenMetrics and stores the classic series. The histograms come from a
# stand-in VM's drive: 8 reads of 4 KiB, all counted.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "native histograms in a real Prometheus"
command -v prometheus >/dev/null ||
	{ tap_skip "native histograms in a real Prometheus" "prometheus is not installed"; tap_done; exit; }
WORK=$(mktemp -d /tmp/vmprobe-native.XXXXXX)
PORT=19641 PROM_PORT=19642 OM_PORT=19643 VM= PROM_PID= OM_PID=
cleanup() {
	for p in $PROM_PID $OM_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	vmprobe_stop >/dev/null 2>&1
	[ -n "$VM" ] && kill "$VM" 2>/dev/null && wait "$VM" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

QEMU=$(tapguest_dir)
truncate -s 1M "$WORK/d0.img"
vmprobe_start $PORT "network:
  enabled: false" || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
export TAPGUEST_READS=8
"$QEMU" -name guest=nh-vm -drive "file=$WORK/d0.img,format=raw,if=none,id=d0,cache=none,aio=threads" \
	-device virtio-blk-pci,drive=d0,id=disk0 >"$WORK/vm.out" 2>&1 &
VM=$!
SEL='name="nh-vm",drive="disk0",operation="read"'
count() { scrape && metric "$WORK/metrics.txt" vmprobe_disk_latency_seconds_count name=nh-vm drive=disk0 operation=read; }
check "the drive is counted" wait_for 10 eval '[ -n "$(count)" ]'
kill -USR2 "$VM"
check "the stand-in VM read its image" wait_for 5 grep -q "^read 8$" "$WORK/vm.out"
check_num "8 reads in the text format's count" 8 "$(count)"
cp "$WORK/metrics.txt" "$WORK/text.txt"

# One Prometheus without native histograms (it asks for OpenMetrics), one
# with them (it asks for protobuf).
prometheus_start $OM_PORT $PORT || tap_fail "Prometheus starts" "$(tail -5 "$WORK/prometheus-$OM_PORT.log")"
OM_PID=$PROM_PID
prometheus_start $PROM_PORT $PORT "" --enable-feature=native-histograms ||
	tap_fail "Prometheus with native histograms starts" "$(tail -5 "$WORK/prometheus-$PROM_PORT.log")"
NH="vmprobe_disk_latency_seconds{$SEL}"
has() { [ -n "$(promql_on "$1" "$2")" ]; }
check "Prometheus (native histograms) stores a native histogram: histogram_count works" \
	wait_for 30 has $PROM_PORT "histogram_count($NH)"
check_num "its count is the text format's, exactly" 8 "$(promql_on $PROM_PORT "histogram_count($NH)")"
sum_text=$(metric "$WORK/text.txt" vmprobe_disk_latency_seconds_sum name=nh-vm drive=disk0 operation=read)
check_eq "its sum is the text format's" "$sum_text" \
	"$(python3 -c "print(repr(float('$(promql_on $PROM_PORT "histogram_sum($NH)")')))" | sed 's/\.0$//')"
# Every classic bound: the native histogram's fraction below it times its
# count is the classic cumulative count, to the observation.
bad=
while read -r le cum; do
	[ "$le" = "+Inf" ] && continue
	got=$(promql_on $PROM_PORT "histogram_fraction(0, $le, $NH) * histogram_count($NH)")
	python3 -c "import sys; sys.exit(abs(float('$got') - $cum) > 1e-9)" 2>/dev/null ||
		bad="$bad le=$le classic=$cum native=$got;"
done < <(python3 - "$WORK/text.txt" <<'PY'
import re, sys
for line in open(sys.argv[1]):
    m = re.match(r'vmprobe_disk_latency_seconds_bucket\{(.*)\} (\d+)$', line)
    if not m: continue
    l = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
    if l.get("name") == "nh-vm" and l.get("drive") == "disk0" and l.get("operation") == "read":
        print(l["le"], m.group(2))
PY
)
check_eq "every classic bucket is exactly a native one (histogram_fraction at each le)" "" "$bad"
SZ="vmprobe_disk_request_size_bytes{$SEL}"
check_num "request sizes: all 8 reads in the native bucket (2048, 4096]" 8 \
	"$(promql_on $PROM_PORT "histogram_fraction(2048, 4096, $SZ) * histogram_count($SZ)")"
check_eq "Prometheus 2.42 keeps the native histogram only: no classic _bucket series" "" \
	"$(promql_on $PROM_PORT "count(vmprobe_disk_latency_seconds_bucket{$SEL})")"
# And one without the feature (it asks for OpenMetrics).
check "Prometheus without the feature scrapes OpenMetrics: classic buckets stored" \
	wait_for 30 has $OM_PORT "vmprobe_disk_latency_seconds_bucket{$SEL,le=\"+Inf\"}"
check_num "with the same count" 8 "$(promql_on $OM_PORT "vmprobe_disk_latency_seconds_count{$SEL}")"
check_eq "both scrape without errors" "1 1" "$(promql_on $PROM_PORT 'up{job="vmprobe"}') $(promql_on $OM_PORT 'up{job="vmprobe"}')"
tap_done

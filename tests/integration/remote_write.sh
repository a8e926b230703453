#!/bin/bash
# Long-term storage (docs/long-term-storage.md): a real Prometheus (2.42)
# with the chart's recording rules scrapes a real vmprobe measuring a
# stand-in VM (tests/tools/tapguest: frames both ways on its tap, reads on
# its drive) and remote-writes to a real VictoriaMetrics and a real
# InfluxDB 1.x (Debian's), both started here. Once the traffic has stopped
# and the counters are static, at one time T: PromQL on VictoriaMetrics
# and InfluxQL on InfluxDB return exactly Prometheus's per-VM totals and
# every classic bucket, sum and count, and every recording rule's sample
# (rates, quantiles) but NaN ones, which neither keeps (VictoriaMetrics:
# to 12 significant digits); histogram_quantile on VictoriaMetrics equals
# Prometheus's. A second Prometheus keeping native histograms only and
# sending them (send_native_histograms): neither store keeps them, the
# rules' recorded quantiles reach both.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/k8s/lib.sh"

what="remote_write to VictoriaMetrics and InfluxDB"
tap_require_cmds "$what" prometheus victoria-metrics influxd
tap_require_root "$what" tun
k8s_tools_or_skip "$what"

WORK=$(mktemp -d /tmp/vmprobe-remote-write.XXXXXX)
PORT=19871 PROM_PORT=19872 NPROM_PORT=19873 VM_PORT=19874 INFLUX_PORT=19875 INFLUX_RPC=19876
TAP=vmpt-lts0 VMNAME=lts-vm
VM= VM_PID= INFLUX_PID= PROMS=()
cleanup() {
	for p in "${PROMS[@]}" $VM_PID $INFLUX_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	vmprobe_stop >/dev/null 2>&1
	[ -n "$VM" ] && kill "$VM" 2>/dev/null && wait "$VM" 2>/dev/null
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null

render "$WORK/all.yaml" "${ALL_ON[@]}"
check "the chart's recording and alert rules, from the rendered PrometheusRule" \
	rules_of "$WORK/all.yaml" "$WORK/rules.json"

VM_URL=http://127.0.0.1:$VM_PORT INFLUX_URL=http://127.0.0.1:$INFLUX_PORT
# -search.latencyOffset=0: VictoriaMetrics answers at T with what it has at
# T, not with what it had a minute before the query.
victoria-metrics -httpListenAddr=127.0.0.1:$VM_PORT -storageDataPath="$WORK/victoria" \
	-retentionPeriod=1d -search.latencyOffset=0s -search.disableCache >"$WORK/victoria.log" 2>&1 &
VM_PID=$!
check "VictoriaMetrics starts" wait_for 30 curl -sf "$VM_URL/health"
cat >"$WORK/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$INFLUX_RPC"
[meta]
  dir = "$WORK/influx/meta"
[data]
  dir = "$WORK/influx/data"
  wal-dir = "$WORK/influx/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false
EOF
influxd run -config "$WORK/influxdb.conf" >"$WORK/influx.log" 2>&1 &
INFLUX_PID=$!
check "InfluxDB starts" wait_for 30 curl -sf "$INFLUX_URL/ping"
influxql() { # QUERY [DB]: the JSON answer
	curl -sf "$INFLUX_URL/query" --data-urlencode "db=${2:-vmprobe}" --data-urlencode "epoch=ms" \
		--data-urlencode "q=$1"
}
check "InfluxDB creates the databases" influxql "CREATE DATABASE vmprobe; CREATE DATABASE vmprobe_native"

# The stand-in VM: one tap, one drive.
ip tuntap add dev "$TAP" mode tap
sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=1"
ip link set "$TAP" up
truncate -s 1M "$WORK/d0.img"
vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
QEMU=$(tapguest_dir)
TAPGUEST_BURST="20:60,10:1514" TAPGUEST_READS=16 "$QEMU" -name "guest=$VMNAME" \
	-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no" -device virtio-net-pci,netdev=n0,id=net0 \
	-drive "file=$WORK/d0.img,format=raw,if=none,id=d0,cache=none,aio=threads" \
	-device virtio-blk-pci,drive=d0,id=disk0 >"$WORK/vm.log" 2>&1 &
VM=$!
counted() { scrape && [ -n "$(metric "$WORK/metrics.txt" vmprobe_disk_latency_seconds_count name=$VMNAME drive=disk0 operation=read)" ] &&
	[ -n "$(metric "$WORK/metrics.txt" vmprobe_network_packet_size_bytes_count name=$VMNAME direction=rx)" ]; }
check "vmprobe counts the stand-in VM's drive and tap" wait_for 30 counted

# Prometheus with the chart's rules, writing to both; a second one with
# native histograms, sending them. Labels tell the two apart in the stores.
remote_write() { # REPLICA INFLUX_DB [EXTRA KEY]
	cat <<EOF
rule_files: ["$WORK/rules.json"]
remote_write:
  - url: $VM_URL/api/v1/write
    write_relabel_configs: [{target_label: replica, replacement: $1}]
    queue_config: {batch_send_deadline: 1s}
    ${3:-}
  - url: $INFLUX_URL/api/v1/prom/write?db=$2
    queue_config: {batch_send_deadline: 1s}
    ${3:-}
EOF
}
PROM_TOP_YAML=$(remote_write classic vmprobe) prometheus_start $PROM_PORT $PORT ||
	tap_fail "Prometheus starts" "$(tail -5 "$WORK/prometheus-$PROM_PORT.log")"
PROMS+=("$PROM_PID")
PROM_TOP_YAML=$(remote_write native vmprobe_native "send_native_histograms: true") prometheus_start $NPROM_PORT $PORT "" \
	--enable-feature=native-histograms || tap_fail "Prometheus with native histograms starts" "$(tail -5 "$WORK/prometheus-$NPROM_PORT.log")"
PROMS+=("$PROM_PID")

# Traffic for 10 s: frames out of and into the guest, reads of its drive.
for i in $(seq 10); do
	kill -USR1 "$VM"; kill -USR2 "$VM"
	"$TAPGUEST" inject "$TAP" 30 $((100 * i)) >/dev/null
	sleep 1
done
# Static from here: vmprobe's counters stop moving, and both Prometheus
# servers hold the last values.
check "the stand-in VM did all its reads" wait_for 10 eval '[ "$(grep -c "^read 16$" "$WORK/vm.log")" -eq 10 ]'
scrape "$WORK/last.txt"
sleep 2
scrape "$WORK/last2.txt"
check_eq "the VM's counters are static after the traffic" "" \
	"$(diff <(grep "name=\"$VMNAME\"" "$WORK/last.txt") <(grep "name=\"$VMNAME\"" "$WORK/last2.txt"))"
TOTAL=$(metric "$WORK/last.txt" vmprobe_disk_latency_seconds_count name=$VMNAME drive=disk0 operation=read)
check "Prometheus has scraped the last values" wait_for 30 eval \
	'[ "$(promql_on $PROM_PORT "vmprobe_disk_latency_seconds_count{name=\"$VMNAME\",operation=\"read\"}")" = "$TOTAL" ]'
sleep 3
T=$(date +%s) # every comparison is at T

# Everything up to T has been sent to both stores.
sent_up_to() { # PROM_PORT: each queue's highest sent timestamp >= T
	curl -sf "http://127.0.0.1:$1/metrics" |
		awk -v t="$T" '/^prometheus_remote_storage_queue_highest_sent_timestamp_seconds/ { n++; if ($2 < t) low++ }
			END { exit !(n == 2 && low == 0) }'
}
check "Prometheus has sent everything up to T to both stores" wait_for 30 sent_up_to $PROM_PORT
check "Prometheus (native) has sent everything up to T to both stores" wait_for 30 sent_up_to $NPROM_PORT

# Sample values as Prometheus prints them (Go's 'f' format, shortest
# digits), whoever answered: equal text is equal float64.
FMT='
from decimal import Decimal
def fmt(v):
    x = float(v)
    if x != x: return "NaN"
    return str(int(x)) if x.is_integer() else format(Decimal(repr(x)), "f")
def line(name, labels, v):
    labels = {k: x for k, x in labels.items() if k not in ("replica", "__name__") and x != ""}
    return "%s{%s} %s" % (name, ",".join("%s=\"%s\"" % kv for kv in sorted(labels.items())), fmt(v))'
# Every series answering QUERY at T, one "name{labels} value" line each,
# sorted, from Prometheus or VictoriaMetrics (its replica label left out).
promql_all() { # URL QUERY
	curl -sf "$1/api/v1/query" --data-urlencode "query=$2" --data-urlencode "time=$T" | python3 -c "$FMT"'
import json, sys
for s in json.load(sys.stdin)["data"]["result"]:
    m = s["metric"]
    print(line(m.pop("__name__", ""), m, s["value"][1]))' | sort
}
# The same from InfluxDB: each InfluxQL QUERY's series (measurement and
# tags), the first value.
influx_all() { # DB QUERY...
	local db=$1 q; shift
	for q in "$@"; do influxql "$q" "$db"; echo; done | python3 -c "$FMT"'
import json, sys
for doc in filter(str.strip, sys.stdin):
    for r in json.loads(doc)["results"]:
        for s in r.get("series", []):
            print(line(s["name"] if s["name"] != "'"$INFLUX_UNNAMED"'" else "", s.get("tags", {}), s["values"][0][1]))' | sort
}
INFLUX_UNNAMED=__none__
# Debian's InfluxDB (1.6) keeps a sample in the field "value" (later 1.x:
# "f64") of the measurement named by the metric, its labels as tags and
# the name once more as the tag __name__.
INFLUX_FIELD=value
# The last sample at or before T within Prometheus's 5 minute lookback.
WINDOW="time > $(( (T - 300) * 1000 ))ms AND time <= $((T * 1000))ms"
influx_last() { # MEASUREMENT [WHERE]: every series of it at T
	echo "SELECT last(\"$INFLUX_FIELD\") FROM \"$1\" WHERE $WINDOW${2:+ AND $2} GROUP BY *"
}
# A store's answers against Prometheus's: the same series, the same values
# (within a relative RELTOL if given); prints the count and the largest
# difference, or what differs.
compare() { # EXPECTED_FILE ACTUAL_FILE [RELTOL]
	python3 - "$1" "$2" "${3:-0}" <<'PY'
import sys
def read(path):
    return dict(l.rstrip("\n").rsplit(" ", 1) for l in open(path))
want, got, tol = read(sys.argv[1]), read(sys.argv[2]), float(sys.argv[3])
worst, bad = 0.0, []
for k in sorted(set(want) | set(got)):
    if k not in got or k not in want:
        bad.append("%s: Prometheus %s, store %s" % (k, want.get(k, "none"), got.get(k, "none")))
        continue
    a, b = float(want[k]), float(got[k])
    rel = 0.0 if want[k] == got[k] else abs(a - b) / max(abs(a), abs(b))
    worst = max(worst, rel)
    if rel > tol:
        bad.append("%s: Prometheus %s, store %s" % (k, want[k], got[k]))
print("%d series%s" % (len(want), ", largest relative difference %.1e" % worst if tol else ""))
print("\n".join(bad[:20]))
sys.exit(1 if bad or not want else 0)
PY
}
same() { # DESC EXPECTED_FILE ACTUAL_FILE [RELTOL]
	local out
	if [ ! -s "$2" ]; then
		tap_fail "$1" "Prometheus returned nothing: nothing to compare"
	elif out=$(compare "$2" "$3" "${4:-}"); then
		tap_ok "$1 ($(head -1 <<<"$out"))"
	else
		tap_fail "$1" "$out"
	fi
}
P=http://127.0.0.1:$PROM_PORT NP=http://127.0.0.1:$NPROM_PORT
check_eq "InfluxDB keeps the sample in the field \"$INFLUX_FIELD\", the metric's name also as the tag __name__" \
	"$INFLUX_FIELD __name__" "$(influxql 'SHOW FIELD KEYS FROM vmprobe_disk_request_size_bytes_sum; SHOW TAG KEYS FROM vmprobe_disk_request_size_bytes_sum' |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["results"]
print(" ".join(v[0] for v in r[0]["series"][0]["values"]), " ".join(v[0] for v in r[1]["series"][0]["values"] if v[0] == "__name__"))')"
SEL="name=\"$VMNAME\""
# VictoriaMetrics answers from a sample a second or so after it took it
# in: wait until its recorded samples up to T are Prometheus's (those of
# the last evaluation change every second), then compare.
RULES='{__name__=~"(vm|node)_[a-z_]+:vmprobe_.+"}'
rules_of_replica() { echo "{__name__=~\"(vm|node)_[a-z_]+:vmprobe_.+\",replica=\"$1\"}"; }
vm_caught_up() { # PROM_URL REPLICA
	promql_all "$1" "$RULES" | grep -v ' NaN$' >"$WORK/p-nonan.txt"
	promql_all $VM_URL "$(rules_of_replica "$2")" >"$WORK/v.txt"
	compare "$WORK/p-nonan.txt" "$WORK/v.txt" 1e-11 >/dev/null
}
wait_for 30 vm_caught_up $P classic
# Per-VM totals.
for fam in vmprobe_network_packet_size_bytes_sum vmprobe_network_packet_size_bytes_count vmprobe_disk_latency_seconds_count \
	vmprobe_disk_request_size_bytes_sum; do
	promql_all $P "sum by (name) ($fam{$SEL})" >"$WORK/p.txt"
	promql_all $VM_URL "sum by (name) ($fam{$SEL,replica=\"classic\"})" >"$WORK/v.txt"
	INFLUX_UNNAMED=$fam influx_all vmprobe "SELECT sum(v) FROM (SELECT last(\"$INFLUX_FIELD\") AS v FROM \"$fam\" WHERE $WINDOW AND \"name\" = '$VMNAME' GROUP BY *) GROUP BY \"name\"" >"$WORK/i.txt"
	same "per-VM total $fam: VictoriaMetrics (PromQL) = Prometheus at T" "$WORK/p.txt" "$WORK/v.txt"
	same "per-VM total $fam: InfluxDB (InfluxQL) = Prometheus at T" "$WORK/p.txt" "$WORK/i.txt"
done
# Every series of the VM's classic histograms: buckets, sums, counts.
HIST="vmprobe_disk_latency_seconds vmprobe_disk_request_size_bytes vmprobe_network_packet_size_bytes"
re=$(sed 's/ /|/g' <<<"$HIST")
promql_all $P "{__name__=~\"($re)_(bucket|sum|count)\",$SEL}" >"$WORK/p.txt"
promql_all $VM_URL "{__name__=~\"($re)_(bucket|sum|count)\",$SEL,replica=\"classic\"}" >"$WORK/v.txt"
q=()
for h in $HIST; do for x in bucket sum count; do q+=("$(influx_last "${h}_$x" "\"name\" = '$VMNAME'")"); done; done
influx_all vmprobe "${q[@]}" >"$WORK/i.txt"
same "classic histograms: every bucket, sum and count in VictoriaMetrics = Prometheus's" "$WORK/p.txt" "$WORK/v.txt"
same "classic histograms: every bucket, sum and count in InfluxDB = Prometheus's" "$WORK/p.txt" "$WORK/i.txt"
# Quantiles computed by each PromQL engine from the same buckets.
for qq in 0.5 0.9 0.99; do
	for h in vmprobe_disk_latency_seconds vmprobe_network_packet_size_bytes; do
		promql_all $P "histogram_quantile($qq, sum by (name, le) (${h}_bucket{$SEL}))" >"$WORK/p.txt"
		promql_all $VM_URL "histogram_quantile($qq, sum by (name, le) (${h}_bucket{$SEL,replica=\"classic\"}))" >"$WORK/v.txt"
		same "histogram_quantile($qq) of $h on VictoriaMetrics = on Prometheus" "$WORK/p.txt" "$WORK/v.txt"
	done
done
# Every sample the chart's recording rules wrote (rates and quantiles).
promql_all $P "$RULES" >"$WORK/p.txt"
promql_all $VM_URL "$(rules_of_replica classic)" >"$WORK/v.txt"
q=()
for m in $(cut -d'{' -f1 "$WORK/p.txt" | sort -u); do q+=("$(influx_last "$m")"); done
influx_all vmprobe "${q[@]}" >"$WORK/i.txt"
check "the recording rules wrote per-VM quantiles (vm_drive:vmprobe_disk_latency_seconds:quantile5m)" \
	grep -q "^vm_drive:vmprobe_disk_latency_seconds:quantile5m{.*$SEL" "$WORK/p.txt"
# Neither store keeps NaN (a quantile of a window with no request); the
# rest must all be there. VictoriaMetrics keeps 12 significant digits.
grep -v ' NaN$' "$WORK/p.txt" >"$WORK/p-nonan.txt"
same "every recording rule's sample other than NaN in VictoriaMetrics = Prometheus's, to 12 digits" \
	"$WORK/p-nonan.txt" "$WORK/v.txt" 1e-11
same "every recording rule's sample other than NaN in InfluxDB = Prometheus's" "$WORK/p-nonan.txt" "$WORK/i.txt"
echo "# NaN samples (no requests in the window) neither store keeps: $(grep -c ' NaN$' "$WORK/p.txt")"
# Native histograms: Prometheus 2.42 with the feature stores vmprobe's
# histograms as native ones only (no _bucket series) and sends them with
# send_native_histograms; neither store of these versions keeps them. The
# chart's quantile rules read native histograms where there are: their
# recorded quantiles are what reaches the stores.
sent=$(curl -sf "$NP/metrics" | awk '/^prometheus_remote_storage_histograms_total/ { n += $2 } END { print n + 0 }')
failed=$(curl -sf "$NP/metrics" | awk '/^prometheus_remote_storage_(histograms|samples)_failed_total/ { n += $2 } END { print n + 0 }')
check "Prometheus (native) sent native histograms to both stores" test "$sent" -gt 0
check_num "... and both accepted every request (nothing failed)" 0 "$failed"
check_eq "Prometheus (native) has no classic buckets: no vmprobe_disk_latency_seconds_bucket series" "" \
	"$(promql_all $NP "vmprobe_disk_latency_seconds_bucket{$SEL}")"
check_eq "VictoriaMetrics 1.79 keeps no native histogram: no vmprobe_disk_latency_seconds series" "" \
	"$(promql_all $VM_URL "{__name__=~\"vmprobe_disk_latency_seconds.*\",$SEL,replica=\"native\"}")"
check_eq "InfluxDB 1.x keeps no native histogram: no vmprobe_disk_latency_seconds measurement" "" \
	"$(influxql 'SHOW MEASUREMENTS WITH MEASUREMENT =~ /^vmprobe_disk_latency_seconds/' vmprobe_native | grep -o '"values"')"
wait_for 30 vm_caught_up $NP native
promql_all $NP "$RULES" | grep -v ' NaN$' >"$WORK/p-nonan.txt"
check "the chart's quantile rules record from native histograms (vm_drive:vmprobe_disk_latency_seconds:quantile5m)" \
	grep -q "^vm_drive:vmprobe_disk_latency_seconds:quantile5m{.*$SEL" "$WORK/p-nonan.txt"
promql_all $VM_URL "$(rules_of_replica native)" >"$WORK/v.txt"
q=()
for m in $(cut -d'{' -f1 "$WORK/p-nonan.txt" | sort -u); do q+=("$(influx_last "$m")"); done
influx_all vmprobe_native "${q[@]}" >"$WORK/i.txt"
same "native: every recorded sample other than NaN in VictoriaMetrics = Prometheus's, to 12 digits" \
	"$WORK/p-nonan.txt" "$WORK/v.txt" 1e-11
same "native: every recorded sample other than NaN in InfluxDB = Prometheus's" "$WORK/p-nonan.txt" "$WORK/i.txt"
promql_all $NP "sum by (name) (vmprobe_disk_errors_total{$SEL})" >"$WORK/p.txt"
promql_all $VM_URL "sum by (name) (vmprobe_disk_errors_total{$SEL,replica=\"native\"})" >"$WORK/v.txt"
same "native: the float series sent beside them arrive whole (per-VM disk errors on VictoriaMetrics)" "$WORK/p.txt" "$WORK/v.txt"
tap_done

#!/bin/bash
# vmprobe serve's HTTP side as clients see it: content negotiation (Accept:
# text 0.0.4, OpenMetrics, protobuf; Accept-Encoding; q-values as RFC 9110
# reads them), Vary, the landing page, errors,
# the families every exporter has (process_*, build_info), checked
# against the process itself and against promtool, and JSON logs.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "HTTP of vmprobe serve"
WORK=$(mktemp -d /tmp/vmprobe-http.XXXXXX)
PORT=19594
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

gzipped() { [ "$(http_header "$1" Content-Encoding)" = gzip ] && gzip -t <"$WORK/$1.b"; }
plain() { [ -z "$(http_header "$1" Content-Encoding)" ] && grep -q '^# TYPE ' "$WORK/$1.b"; }

check_eq "plain GET: 200" 200 "$(http_get plain "$VMPROBE_URL")"
check_eq "plain GET: the 0.0.4 text format" "text/plain; version=0.0.4; charset=utf-8" \
	"$(http_header plain Content-Type)"
check "plain GET: not compressed" plain plain
check_eq "Vary names what the response was negotiated on" "Accept, Accept-Encoding" \
	"$(http_header plain Vary)"

PROM_ACCEPT='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
check_eq "Prometheus 2.42's Accept and Accept-Encoding: 200" 200 \
	"$(http_get prom -H "Accept: $PROM_ACCEPT" -H 'Accept-Encoding: gzip' "$VMPROBE_URL")"
check "gzip when asked for, and it decompresses" gzipped prom
check_eq "Prometheus' default Accept gets OpenMetrics" \
	"application/openmetrics-text; version=1.0.0; charset=utf-8" "$(http_header prom Content-Type)"
gunzip -c <"$WORK/prom.b" >"$WORK/prom.txt"
check_eq "which ends with # EOF" "# EOF" "$(tail -1 "$WORK/prom.txt")"
if command -v promtool >/dev/null; then
	check "promtool check metrics is clean (text format)" \
		bash -c "promtool check metrics <'$WORK/plain.b'"
else
	tap_skip "promtool check metrics is clean" "promtool is not installed"
fi
PB='application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited'
http_get pb -H "Accept: $PB;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2" "$VMPROBE_URL" >/dev/null
check_eq "Prometheus' Accept with native histograms gets protobuf" \
	"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited" \
	"$(http_header pb Content-Type)"
PROM3_ACCEPT='application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;escaping=allow-utf-8;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;escaping=allow-utf-8;q=0.2,*/*;q=0.1'
http_get prom3 -H "Accept: $PROM3_ACCEPT" "$VMPROBE_URL" >/dev/null
check_eq "Prometheus 3's Accept (escaping=allow-utf-8) gets OpenMetrics" \
	"application/openmetrics-text; version=1.0.0; charset=utf-8" "$(http_header prom3 Content-Type)"
http_get pb3 -H "Accept: $PB;escaping=allow-utf-8;q=0.6,$PROM3_ACCEPT" "$VMPROBE_URL" >/dev/null
check_eq "Prometheus 3's Accept with native histograms gets protobuf" \
	"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited" \
	"$(http_header pb3 Content-Type)"

http_get q0 -H 'Accept-Encoding: gzip;q=0' "$VMPROBE_URL" >/dev/null
check "gzip;q=0 refuses gzip (a substring test would send it)" plain q0
http_get idpref -H 'Accept-Encoding: identity;q=1, gzip;q=0.5' "$VMPROBE_URL" >/dev/null
check "identity preferred over gzip: plain" plain idpref
http_get star -H 'Accept-Encoding: *' "$VMPROBE_URL" >/dev/null
check "* accepts gzip" gzipped star
http_get xgzip -H 'Accept-Encoding: x-gzip, br' "$VMPROBE_URL" >/dev/null
check "codings vmprobe does not have: plain" plain xgzip

check_eq "an Accept that takes nothing vmprobe offers: 406" 406 \
	"$(http_get png -H 'Accept: image/png' "$VMPROBE_URL")"
check_eq "Accept: text/plain;q=0 alone: 406" 406 \
	"$(http_get refused -H 'Accept: text/plain;q=0' "$VMPROBE_URL")"
check_eq "HEAD /metrics: 200" 200 "$(http_get head -I "$VMPROBE_URL")"
check_eq "POST /metrics: 405" 405 "$(http_get post -X POST "$VMPROBE_URL")"
check_eq "405 names the methods allowed (RFC 9110)" "GET, HEAD" "$(http_header post Allow)"
check_eq "an unknown path: 404" 404 "$(http_get nope "http://127.0.0.1:$PORT/nope")"
check_eq "/ is a landing page" "200 text/html" \
	"$(http_get root "http://127.0.0.1:$PORT/") $(http_header root Content-Type)"
check "which links /metrics" grep -q 'href="/metrics"' "$WORK/root.b"

# process_* describe the serving process itself.
val() { metric "$WORK/plain.b" "$1"; }
pid_start=$(awk '{ print $22 }' "/proc/$VMPROBE_PID/stat")
btime=$(awk '$1 == "btime" { print $2 }' /proc/stat)
tck=$(getconf CLK_TCK)
check_range "process_start_time_seconds is the process's start (within a tick)" \
	"$(awk -v b="$btime" -v s="$pid_start" -v t="$tck" 'BEGIN { printf "%.2f", b + s / t - 0.02 }')" \
	"$(awk -v b="$btime" -v s="$pid_start" -v t="$tck" 'BEGIN { printf "%.2f", b + s / t + 0.02 }')" \
	"$(val process_start_time_seconds)"
max_fds=$(awk '/^Max open files/ { print $4 }' "/proc/$VMPROBE_PID/limits")
check_range "process_max_fds is its RLIMIT_NOFILE" "$max_fds" "$max_fds" "$(val process_max_fds)"
check_range "process_open_fds is about its fd count (a scrape opens a few)" \
	"$(($(ls "/proc/$VMPROBE_PID/fd" | wc -l) - 8))" "$(($(ls "/proc/$VMPROBE_PID/fd" | wc -l) + 8))" \
	"$(val process_open_fds)"
rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$VMPROBE_PID/status")
check_range "process_resident_memory_bytes is about its RSS (within 50 %)" \
	"$((rss_kb * 1024 / 2))" "$((rss_kb * 1024 * 3 / 2))" "$(val process_resident_memory_bytes)"
check "process_cpu_seconds_total is there" test -n "$(val process_cpu_seconds_total)"
check_eq "vmprobe_build_info names the commit it was built from" \
	"$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)" \
	"$(grep -o 'revision="[^"]*"' "$WORK/plain.b" | head -1 | cut -d'"' -f2)"
check_eq "and the version scripts/version.sh derives from VERSION and the v<version> tags" \
	"$("$REPO/scripts/version.sh")" \
	"$(grep '^vmprobe_build_info{' "$WORK/plain.b" | grep -o ' *version="[^"]*"' | head -1 | cut -d'"' -f2)"
# A scrape's cost does not grow with the maps and series: the HTTP thread's
# read syscalls (its own /proc/self/task/TID/io, which the discovery thread
# does not touch) over 20 scrapes of this idle host, after one that read
# what is then kept. Each scrape reads a few files (process_*, the vCPU
# marks' memory); before, it read every map's fdinfo: some 90 reads.
mhd=$(grep -l '^MHD' /proc/"$VMPROBE_PID"/task/*/comm 2>/dev/null | head -1)
if [ -n "$mhd" ]; then
	io=${mhd%/comm}/io
	http_get warm "$VMPROBE_URL" >/dev/null
	r0=$(awk '/^syscr:/ { print $2 }' "$io")
	for ((i = 0; i < 20; i++)); do http_get many "$VMPROBE_URL" >/dev/null; done
	r1=$(awk '/^syscr:/ { print $2 }' "$io")
	check_range "a scrape makes a few read syscalls, not one per map or series (per scrape)" \
		0 16 "$(((r1 - r0) / 20))"
else
	tap_fail "the HTTP thread is found by its name (MHD-*)" "$(cat /proc/"$VMPROBE_PID"/task/*/comm)"
fi
# log_format: json: every line of serve's log is one JSON object.
vmprobe_stop
vmprobe_start $PORT "log_format: json" || tap_fail "vmprobe serve starts with log_format: json"
vmprobe_stop
check "log_format: json: every log line is a JSON object with ts, level and msg" python3 - "$WORK/vmprobe.log" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no log line"
for l in lines:
    o = json.loads(l)
    assert set(o) == {"ts", "level", "msg"} and o["ts"].endswith("Z"), l
PY
tap_done

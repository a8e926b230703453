# Shared helpers for integration tests (bash): run vmprobe, read /metrics.
# Needs REPO set to the repository root.

VMPROBE=${VMPROBE:-$REPO/build/vmprobe}
TAPGUEST=$REPO/build/tests/tools/tapguest
TCX=$REPO/build/tests/tools/tcx
SYSFAULT=$REPO/build/tests/tools/sysfault
PBCREATED=$REPO/build/tests/tools/pbcreated

# `make test` builds the test tools, plain `make` does not: a suite run on
# its own builds any that is missing, rather than fail in misleading ways.
for t in "$REPO"/tests/tools/*.c; do
	t=${t##*/}
	case $t in *.bpf.c) t=${t%.c}.o ;; *) t=${t%.c} ;; esac
	[ -e "$REPO/build/tests/tools/$t" ] && continue
	make -s -C "$REPO" --no-print-directory test-tools >&2 || echo "# building the test tools failed" >&2
	break
done
unset t

# Does this kernel have TCX (Linux 6.6+)? Without it the query fails.
have_tcx() { "$TCX" list lo >/dev/null 2>&1; }

# Every TC program on DEV (in NETNS if given), from either hook: TCX
# links ("ingress|egress NAME"), then clsact filters as tc shows them. A
# listing that fails prints an error line instead, so that "none left"
# cannot pass unchecked.
tap_progs() { # [NETNS] DEV
	local ns=() out
	[ $# -eq 2 ] && ns=(ip netns exec "$1") && shift
	[ -x "$TCX" ] || { echo "error: $TCX is not built"; return 1; }
	if have_tcx; then
		out=$("${ns[@]}" "$TCX" list "$1" 2>&1) || { echo "error: tcx list $1: $out"; return 1; }
		[ -n "$out" ] && echo "$out"
	fi
	local dir
	for dir in ingress egress; do
		out=$("${ns[@]}" tc filter show dev "$1" $dir 2>&1) || { echo "error: tc: $out"; return 1; }
		[ -n "$out" ] && echo "$out"
	done
	return 0
}

# vmprobe's programs on DEV (in NETNS if given): one name per line.
vmprobe_progs() { # [NETNS] DEV
	local out
	out=$(tap_progs "$@") || { echo "$out"; return 1; }
	grep -oE '^(ingress|egress) vmprobe_tap_[a-z]*| name vmprobe_tap_[a-z]*' <<<"$out" |
		awk '{ print $2 }'
}

# Starts `vmprobe serve` in the background on PORT with a fast rescan
# (VMPROBE_RESCAN_MS, default 200; VMPROBE_PROCESS_EVENTS=false turns the
# exec/exit hooks off). Sets VMPROBE_PID and VMPROBE_URL; the log goes to
# $WORK/vmprobe.log.
vmprobe_start() { # PORT [EXTRA_YAML]
	local port=$1 extra=${2:-}
	cat >"$WORK/vmprobe.yaml" <<YAML
listen: "127.0.0.1:$port"
log_level: debug
discovery:
  rescan_interval_ms: ${VMPROBE_RESCAN_MS:-200}
  process_events: ${VMPROBE_PROCESS_EVENTS:-true}
$extra
YAML
	"$VMPROBE" serve -c "$WORK/vmprobe.yaml" >"$WORK/vmprobe.log" 2>&1 &
	VMPROBE_PID=$!
	VMPROBE_URL="http://127.0.0.1:$port/metrics"
	wait_for 10 curl -sf -o /dev/null "$VMPROBE_URL"
}

# Stops vmprobe with SIGTERM; returns its exit status.
vmprobe_stop() {
	[ -n "${VMPROBE_PID:-}" ] || return 0
	kill -TERM "$VMPROBE_PID" 2>/dev/null
	local rc=0
	wait "$VMPROBE_PID" || rc=$?
	VMPROBE_PID=
	return $rc
}

# Test certificates made with openssl in the directory $PKI (set by the
# caller): P-256 keys, valid for two days. NAME.crt, NAME.key.
pki_ca() { # NAME: a self-signed CA
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.crt" -days 2 -subj "/CN=$1" 2>/dev/null
}
pki_cert() { # NAME CA CN EXTENSIONS: a certificate signed by the CA NAME
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "/CN=$3" 2>/dev/null &&
		printf '%s\n' "$4" >"$PKI/$1.ext" &&
		openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.crt" -CAkey "$PKI/$2.key" -CAcreateserial \
			-out "$PKI/$1.crt" -days 2 -extfile "$PKI/$1.ext" 2>/dev/null
}
# The bcrypt hash of PASSWORD, as a web configuration's basic_auth_users wants.
bcrypt_hash() { # PASSWORD
	python3 -W ignore -c 'import crypt, sys
print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))' "$1"
}

# Retries COMMAND every 0.1 s for up to SECS seconds.
# (Measured in ms: bash's SECONDS ticks whole seconds, which could cut a
# 1 s wait to almost nothing.)
wait_for() { # SECS COMMAND...
	local secs=$1; shift
	local deadline=$(( $(date +%s%3N) + secs * 1000 ))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s%3N)" -ge $deadline ] && return 1
		sleep 0.1
	done
}

# How much a sample grew from one scrape to another; empty if either lacks it.
metric_delta() { # FILE0 FILE1 NAME [LABEL=VALUE...]
	local a b
	a=$(metric "$1" "${@:3}"); b=$(metric "$2" "${@:3}")
	[ -n "$a" ] && [ -n "$b" ] && echo $((b - a))
}

# A drive's reads, writes and flushes and their bytes from scrape s0 to s1
# ($WORK/s0.txt, s1.txt) against the guest's /sys/block/DEV/stat over the
# same time (guest_delta: 1 reads, 3 sectors read, 5 writes, 7 sectors
# written). The guest kernel (6.1) accounts its flush (an empty preflush
# bio) as a write of no sectors and counts no flush: the guest's writes are
# QEMU's writes plus its flushes, and the workload's fsyncs (FSYNCS, default
# one) are as many flushes.
check_drive_io() { # WHAT DEV LABEL=VALUE...
	local what=$1 dev=$2 w f fails=$TAP_FAILED; shift 2
	check_num "$what: reads = the guest's completed reads" "$(guest_delta "$dev" 1)" \
		"$(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_disk_latency_seconds_count "$@" operation=read)"
	check_num "$what: bytes read = the guest's sectors read x 512" "$(( $(guest_delta "$dev" 3) * 512 ))" \
		"$(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_disk_request_size_bytes_sum "$@" operation=read)"
	w=$(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_disk_latency_seconds_count "$@" operation=write)
	f=$(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_disk_latency_seconds_count "$@" operation=flush)
	check_num "$what: writes + flushes = the guest's completed writes" "$(guest_delta "$dev" 5)" \
		"$(( ${w:-0} + ${f:-0} ))"
	check_num "$what: the guest's fsyncs (${FSYNCS:-1}) are as many flushes" "${FSYNCS:-1}" "${f:-}"
	check_num "$what: bytes written = the guest's sectors written x 512" \
		"$(( $(guest_delta "$dev" 7) * 512 ))" \
		"$(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" vmprobe_disk_request_size_bytes_sum "$@" operation=write)"
	[ "$TAP_FAILED" = "$fails" ] || drive_io_diag "$@"
}

# After a failed check_drive_io: what vmprobe saw from s0 to s1 and did not
# count as operations, for the log (TAP comments), so that a failure in CI
# says whether a request was lost, failed or unmeasured.
drive_io_diag() { # LABEL=VALUE...
	local x
	for x in read write flush discard; do
		echo "#   the drive's $x errors: $(metric_delta "$WORK/s0.txt" "$WORK/s1.txt" \
			vmprobe_disk_errors_total "$@" operation=$x)"
	done
	for x in inflight_full io_uring_fixed_file native_mixed_drives host_block_no_timestamp; do
		echo "#   the host's requests unmeasured ($x): $(metric_delta "$WORK/s0.txt" \
			"$WORK/s1.txt" vmprobe_disk_unmeasured_requests_total reason=$x)"
	done
	for x in threads io_uring native; do
		echo "#   the host's requests measured by $x: $(metric_delta "$WORK/s0.txt" \
			"$WORK/s1.txt" vmprobe_disk_source_requests_total source=$x)"
	done
	echo "#   the host's requests that ended before they started (clock skew): $(metric_delta \
		"$WORK/s0.txt" "$WORK/s1.txt" vmprobe_disk_clock_skew_requests_total)"
}

# vmprobe's totals of NAME's tap in FILE against the tap's own counters as
# scrape_with_tap left them in TAPC: frames and bytes, both ways.
check_tap_totals() { # WHAT FILE NAME TAP
	local what=$1 file=$2 l=(name="$3" interface="$4")
	check_num "${what}frames from the guest = tap rx_packets" "${TAPC[rx_packets]}" \
		"$(metric "$file" vmprobe_network_packet_size_bytes_count "${l[@]}" direction=tx)"
	check_num "${what}bytes from the guest = tap rx_bytes" "${TAPC[rx_bytes]}" \
		"$(metric "$file" vmprobe_network_packet_size_bytes_sum "${l[@]}" direction=tx)"
	check_num "${what}frames to the guest = tap tx_packets + tx_dropped" \
		"$((TAPC[tx_packets] + TAPC[tx_dropped]))" \
		"$(metric "$file" vmprobe_network_packet_size_bytes_count "${l[@]}" direction=rx)"
	check_num "${what}bytes to the guest = tap tx_bytes" "${TAPC[tx_bytes]}" \
		"$(metric "$file" vmprobe_network_packet_size_bytes_sum "${l[@]}" direction=rx)"
}

# Makes a probe's pins look like another build's (same layout, other
# programs): flips the first byte of the code hash (offset 64) of its stamp.
pin_restamp() { # STAMP
	local v
	v=$(bpftool -j map lookup pinned "$1" key 0 0 0 0 | python3 -c '
import json, sys
v = [int(b, 16) for b in json.load(sys.stdin)["value"]]
v[64] ^= 0xff
print(" ".join(str(b) for b in v))')
	bpftool map update pinned "$1" key 0 0 0 0 value $v
}

scrape() { # [FILE]: saves /metrics to FILE (default $WORK/metrics.txt)
	curl -sf "$VMPROBE_URL" >"${1:-$WORK/metrics.txt}"
}

# Two scrapes SECS apart read the same on every line holding TEXT (a fixed
# string; there must be one), the second left in FILE: counts that have
# stopped moving (QEMU's own IO), before a "before" scrape.
scrape_settled() { # FILE SECS TEXT
	local a
	scrape "$1" && a=$(grep -F "$3" "$1") && sleep "$2" && scrape "$1" &&
		[ "$a" = "$(grep -F "$3" "$1")" ]
}

# /metrics as OpenMetrics to FILE: with exposition.openmetrics_created, a
# counter's or histogram's NAME_created{LABELS} lines (metric reads them).
scrape_om() { # FILE
	curl -sf -H 'Accept: application/openmetrics-text; version=1.0.0' "$VMPROBE_URL" >"$1"
}
# /metrics as protobuf, decoded into FILE by tests/tools/pbcreated: one line
# per counter and histogram, NAME{LABELS} CREATED_TIMESTAMP (or "none").
scrape_pb_created() { # FILE
	curl -sf -H 'Accept: application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited' \
		"$VMPROBE_URL" | "$PBCREATED" >"$1"
}
# When the last line of serve's log (log_format: logfmt) matching PATTERN was written, epoch s.
log_time() { # PATTERN [LOG]
	local ts
	ts=$(grep -- "$1" "${2:-$WORK/vmprobe.log}" | tail -1 | sed -n 's/^ts=\([^ ]*\) .*/\1/p')
	[ -n "$ts" ] && date -d "$ts" +%s.%N
}
# The latest moment the log line was written: its time cut to the ms, plus 1 ms.
log_time_end() { # PATTERN [LOG]
	local t
	t=$(log_time "$@") && awk -v t="$t" 'BEGIN { printf "%.6f", t + 0.001 }'
}

# An HTTP request (curl): headers in $WORK/NAME.h, body in $WORK/NAME.b, the
# status printed (000: no answer).
http_get() { # NAME [CURL ARGS...]
	local name=$1; shift
	curl -s -o "$WORK/$name.b" -D "$WORK/$name.h" -w '%{http_code}' "$@"
}
# The value of a header of http_get's response NAME (the last one), CR stripped.
http_header() { # NAME HEADER
	awk -v h="$2" 'tolower($0) ~ "^" tolower(h) ":" { sub(/^[^:]*: */, ""); sub(/\r$/, ""); v = $0 }
		END { print v }' "$WORK/$1.h"
}

# The capabilities serve's log LOG says it lacks, where a probe could not
# load ("... failed (Operation not permitted): vmprobe lacks CAP_X (why)
# and CAP_Y (why): grant ..."): "CAP_X CAP_Y", or empty.
caps_named() { # LOG
	grep -E -m1 'error: loading the [a-z-]+ probe failed \(Operation not permitted\): vmprobe lacks ' "$1" |
		sed 's/.*: vmprobe lacks \(.*\): grant .*/\1/' | grep -oE 'CAP_[A-Z_]+' | paste -sd' '
}

# Value of the sample whose name is NAME and whose labels include every
# `k="v"` given (exact text as exposed, escaping included); empty if none.
metric() { # FILE NAME [LABEL=VALUE...]
	local file=$1 name=$2; shift 2
	python3 - "$file" "$name" "$@" <<'PY'
import re, sys
path, name, want = sys.argv[1], sys.argv[2], sys.argv[3:]
pat = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
lab = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
for line in open(path, encoding="utf-8"):
    m = pat.match(line.rstrip("\n"))
    if not m or m.group(1) != name:
        continue
    labels = {k: v for k, v in lab.findall(m.group(3) or "")}
    if all(labels.get(w.split("=", 1)[0]) == w.split("=", 1)[1] for w in want):
        print(m.group(4))
        break
PY
}

tapstat() { # [NETNS] TAP FIELD
	if [ $# -eq 3 ]; then
		ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"
	else
		cat "/sys/class/net/$1/statistics/$2"
	fi
}

# Scrapes /metrics into FILE between two reads of TAP's own counters and
# retries until no frame crossed the tap meanwhile (a late ARP or the last
# segment of a closing connection), so both sides count the same frames.
# Leaves the counters in TAPC[rx_packets], TAPC[tx_bytes] and so on; the
# caller compares against those, never against a later read of the tap.
declare -A TAPC
scrape_with_tap() { # TAP FILE
	local -a fields=(rx_packets rx_bytes tx_packets tx_bytes tx_dropped) before after
	local i
	for ((i = 0; i < 10; i++)); do
		mapfile -t before < <(cd "/sys/class/net/$1/statistics" && cat "${fields[@]}")
		scrape "$2" || return
		mapfile -t after < <(cd "/sys/class/net/$1/statistics" && cat "${fields[@]}")
		[ "${before[*]}" == "${after[*]}" ] && break
		sleep 0.2
	done
	[ "${before[*]}" == "${after[*]}" ] || { echo "# $1 never stayed quiet for a scrape" >&2; return 1; }
	for i in "${!fields[@]}"; do TAPC[${fields[i]}]=${after[i]}; done
}

# Prepares a directory holding a `qemu-system-x86_64` that is tapguest.
tapguest_dir() {
	mkdir -p "$WORK/bin"
	ln -sf "$TAPGUEST" "$WORK/bin/qemu-system-x86_64"
	echo "$WORK/bin/qemu-system-x86_64"
}

# Starts a Prometheus server on 127.0.0.1:PROM_PORT that scrapes vmprobe on
# PORT (of 127.0.0.1) or HOST:PORT every second; sets PROM_URL and PROM_PID
# (the caller stops it). Its files: $WORK/prometheus-PROM_PORT.yml and .log,
# $WORK/tsdb-PROM_PORT, so that a test can run several. Fails unless the server is ready within
# 30 s. JOB_YAML: more keys of the scrape job (scheme, tls_config,
# basic_auth...), indented by four spaces; FLAGS: more of its flags.
# PROM_TOP_YAML: more top-level keys (rule_files, remote_write...).
prometheus_start() { # PROM_PORT PORT|HOST:PORT [JOB_YAML [FLAGS...]]
	local port=$1 target=$2 job=${3:-}
	[[ $target == *:* ]] || target=127.0.0.1:$target
	shift 2
	[ $# -gt 0 ] && shift
	PROM_URL="http://127.0.0.1:$port"
	cat >"$WORK/prometheus-$port.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
${PROM_TOP_YAML:-}
scrape_configs:
  - job_name: vmprobe
    static_configs:
      - targets: ["$target"]
$job
YAML
	prometheus --config.file="$WORK/prometheus-$port.yml" --storage.tsdb.path="$WORK/tsdb-$port" \
		--web.listen-address="127.0.0.1:$port" "$@" >"$WORK/prometheus-$port.log" 2>&1 &
	PROM_PID=$!
	wait_for 30 curl -sf "$PROM_URL/-/ready"
}

# prometheus_start as one TAP line, "Prometheus server starts", with its
# log's tail on failure. Call it directly, not through check: PROM_PID
# must survive (check runs in a subshell).
prometheus_start_tap() { # PROM_PORT PORT [JOB_YAML [FLAGS...]]
	if prometheus_start "$@"; then
		tap_ok "Prometheus server starts"
	else
		tap_fail "Prometheus server starts" "$(tail -5 "$WORK/prometheus-$1.log")"
	fi
}
# The first result's value of an instant PromQL query to the Prometheus on
# PROM_PORT ("" if none); promql asks the last one started.
promql_on() { # PROM_PORT QUERY [TIME]
	curl -sf "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" \
		${3:+--data-urlencode "time=$3"} |
		python3 -c 'import json,sys
r=json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")'
}
promql() { promql_on "${PROM_URL##*:}" "$@"; } # QUERY [TIME]

#!/bin/bash
# vmprobe_bpf_map_memory_bytes is the kernel's own accounting of vmprobe's
# BPF maps: on a running `vmprobe serve`, the sum over its probes equals
# the sum of "memlock" over every BPF map the process holds (each map once,
# by id), and every probe it opened has its own non-zero sample.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "vmprobe_bpf_map_memory_bytes"

WORK=$(mktemp -d /tmp/vmprobe-bpfmem.XXXXXX)
PORT=19621
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

# Every BPF map fd of the process, each map once: "id memlock" lines.
held_maps() {
	local f id mem
	for f in /proc/"$VMPROBE_PID"/fdinfo/*; do
		id=$(awk '/^map_id:/ { print $2 }' "$f" 2>/dev/null)
		mem=$(awk '/^memlock:/ { print $2 }' "$f" 2>/dev/null)
		[ -n "$id" ] && [ -n "$mem" ] && echo "$id $mem"
	done | sort -u -n
}

scrape "$WORK/m.txt"
held=$(held_maps)
kernel_sum=$(awk '{ s += $2 } END { print s + 0 }' <<<"$held")
metric_sum=$(awk '/^vmprobe_bpf_map_memory_bytes\{/ { s += $2 } END { print s + 0 }' "$WORK/m.txt")
check "vmprobe holds BPF maps" test "$(wc -l <<<"$held")" -gt 3
check_eq "sum of vmprobe_bpf_map_memory_bytes = sum of memlock of the maps serve holds" \
	"$kernel_sum" "$metric_sum"
probes=$(grep -o '^vmprobe_bpf_map_memory_bytes{probe="[a-z]*"}' "$WORK/m.txt" | cut -d'"' -f2 | sort | tr '\n' ' ')
check "the default configuration's net and disk probes have a sample (have: $probes)" \
	grep -qE '(^| )disk .*net ' <<<"$probes"
for probe in $probes; do
	v=$(metric "$WORK/m.txt" vmprobe_bpf_map_memory_bytes probe="$probe")
	check "probe $probe has a non-zero vmprobe_bpf_map_memory_bytes ($v)" test "${v:-0}" -gt 0
done
check "the family has HELP and TYPE gauge" grep -q "^# TYPE vmprobe_bpf_map_memory_bytes gauge" "$WORK/m.txt"
grep '^vmprobe_bpf_map_memory_bytes' "$WORK/m.txt" | sed 's/^/# /'
echo "# sum over maps: $kernel_sum bytes on $(nproc --all) CPUs ($(wc -l <<<"$held") maps)"

vmprobe_stop
check_eq "vmprobe serve exits 0 on SIGTERM" 0 $?
tap_done

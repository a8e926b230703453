#!/bin/bash
# Network-disk bench: what vmprobe adds to each rbd and iSCSI request of a
# VM, as a fraction of the request's own latency (goal: at most 1 %).
# Two clients of the same library (bench/netdisk_load.c) read 4 KiB at a
# time, one request in flight, from the same image or LUN (a real
# single-node Ceph cluster, a real tgtd target, as the tests use): one runs
# as qemu-system-x86_64 with a command line naming the drive, so vmprobe
# serve takes it for a VM and hooks its library (two or three uprobe hits
# per request); the other is any other process, which vmprobe never hooks.
# Each round runs each for SECS seconds, one after the other in an order
# that alternates; ratios are taken within a round (bench/ratios.py).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-9} SECS=${SECS:-2} PORT=19614
LOAD=$REPO/build/bench/netdisk_load
. "$REPO/tests/lib/ceph.sh"
. "$REPO/tests/lib/iscsi.sh"

[ -x "$LOAD" ] || { echo "netdisk bench: $LOAD is not built (make bench builds it)" >&2; exit 1; }
for req in ceph_require iscsi_require; do
	why=$($req) || { echo "# netdisk bench skipped: $why"; exit 0; }
done
WORK=$(mktemp -d /tmp/vmprobe-bench-netdisk.XXXXXX)
PROBE= PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
	[ -n "$PROBE" ] && kill -INT "$PROBE" 2>/dev/null && wait "$PROBE" 2>/dev/null
	iscsi_stop >/dev/null 2>&1 || true
	ceph_stop >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

ceph_start "$WORK/ceph" >"$WORK/ceph.log" 2>&1
ceph_image_create bench 16 >/dev/null
rbd --conf "$CEPH_CONF" bench --io-type write --io-size 4M --io-total 8M "$CEPH_POOL/bench" >/dev/null
iscsi_start "$WORK/iscsi" 16 >"$WORK/iscsi.log" 2>&1
printf 'listen: "127.0.0.1:%s"\n' "$PORT" >"$WORK/vmprobe.yaml"
"$REPO/build/vmprobe" serve -c "$WORK/vmprobe.yaml" >"$WORK/vmprobe.log" 2>&1 &
PROBE=$!
mkdir -p "$WORK/bin"
ln -s "$LOAD" "$WORK/bin/qemu-system-x86_64"
ln -s "$LOAD" "$WORK/bin/netdisk-client"

metric() { # NAME LABELS-REGEX: the first sample's value
	curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" -v l="$2" \
		'index($0, n "{") == 1 && $0 ~ l { print $NF; exit }'
}
wait_until() { # SECS COMMAND...: retries COMMAND (evaluated anew each time)
	local i
	for ((i = 0; i < $1 * 10; i++)); do "${@:2}" && return 0; sleep 0.1; done
	return 1
}
lines_above() { [ "$(grep -c '^LAT' "$1")" -gt "$2" ]; } # FILE N
measured() { [ "$(metric vmprobe_drive_info "name=\"bench-$1\".*measured=\"true\"")" = 1 ]; }
counted() { [ "$(metric vmprobe_disk_latency_seconds_count "name=\"bench-$1\".*operation=\"read\"")" -gt 0 ] 2>/dev/null; }

# A client: stdin from a fifo kept open on an fd, stdout to a file.
start_client() { # NAME EXE ARGS...
	local name=$1
	mkfifo "$WORK/$name.in"
	"${@:2}" <"$WORK/$name.in" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	PIDS+=($!)
	eval "exec {fd_$name}>\"$WORK/$name.in\""
	wait_until 30 grep -q READY "$WORK/$name.out" ||
		{ echo "netdisk bench: client $name did not start: $(cat "$WORK/$name.err")" >&2; exit 1; }
}
segment() { # NAME SECS: runs one segment, prints its mean latency in ns
	local name=$1 fd n
	fd=fd_$name
	n=$(grep -c '^LAT' "$WORK/$name.out" || true)
	echo "run $2" >&"${!fd}"
	wait_until $((${2%.*} + 30)) lines_above "$WORK/$name.out" "$n" ||
		{ echo "netdisk bench: client $name stopped: $(cat "$WORK/$name.err")" >&2; exit 1; }
	grep '^LAT' "$WORK/$name.out" | tail -1 | awk '{ print $2 }'
}

bench_kind() { # KIND: rounds of the hooked (vm) and the other (plain) client
	local kind=$1 drive args r first second n
	if [ "$kind" = rbd ]; then
		export LOAD_KIND=rbd LOAD_CONF=$CEPH_CONF LOAD_POOL=$CEPH_POOL LOAD_IMAGE=bench
		drive="file=rbd:$CEPH_POOL/bench:conf=$CEPH_CONF,format=raw,if=none,id=d0"
	else
		export LOAD_KIND=iscsi LOAD_PORTAL=$ISCSI_PORTAL LOAD_TARGET=$ISCSI_IQN LOAD_LUN=$ISCSI_LUN
		drive="file=$ISCSI_URL,format=raw,if=none,id=d0"
	fi
	args=(-name "guest=bench-$kind" -drive "$drive" -device virtio-blk-pci,drive=d0,id=bench)
	start_client "vm_$kind" "$WORK/bin/qemu-system-x86_64" "${args[@]}"
	start_client "plain_$kind" "$WORK/bin/netdisk-client" "${args[@]}"
	wait_until 30 measured "$kind" ||
		{ echo "netdisk bench: vmprobe does not measure bench-$kind: $(tail -5 "$WORK/vmprobe.log")" >&2; exit 1; }
	segment "vm_$kind" 1 >/dev/null
	segment "plain_$kind" 1 >/dev/null
	wait_until 10 counted "$kind" ||
		{ echo "netdisk bench: vmprobe counts no read of bench-$kind" >&2; exit 1; }
	for ((r = 0; r < ROUNDS; r++)); do
		first=vm second=plain
		[ $((r % 2)) -eq 1 ] && first=plain second=vm
		echo "$r $first lat $(segment "${first}_$kind" "$SECS")" >>"$WORK/runs_$kind"
		echo "$r $second lat $(segment "${second}_$kind" "$SECS")" >>"$WORK/runs_$kind"
	done
	n=$(metric vmprobe_disk_latency_seconds_count "name=\"bench-$kind\".*operation=\"read\"")
	echo "# $kind: the hooked client's reads as vmprobe counts them: $n"
	# The part that is vmprobe's own: its programs' run time per request.
	bpftool -j prog show | python3 -c '
import json, sys
kind, reads = sys.argv[1], int(sys.argv[2])
names = {"rbd": ("rbd_readv", "rbd_done"), "iscsi": ("iscsi_submit", "iscsi_done")}[kind]
ns = sum(p.get("run_time_ns", 0) for p in json.load(sys.stdin) if p.get("name") in names)
print("BENCH netdisk_%s_bpf_run_per_request %.0f ns" % (kind, ns / max(reads, 1)))' "$kind" "$n"
	python3 "$REPO/bench/ratios.py" "$WORK/runs_$kind" "netdisk_${kind}_" plain vm lat:ns:more |
		tee "$WORK/summary_$kind"
	awk -v k="$kind" '
		$2 == "netdisk_" k "_lat_vm_kept_ratio" { f = $3 - 1 }
		$2 == "netdisk_" k "_lat_vm_kept_ratio_ci_lo" { lo = $3 - 1 }
		$2 == "netdisk_" k "_lat_vm_kept_ratio_ci_hi" { hi = $3 - 1 }
		$2 == "netdisk_" k "_lat_plain" { base = $3 }
		END {
			printf "BENCH netdisk_%s_added_fraction %.4f ratio\n", k, f
			printf "BENCH netdisk_%s_added_fraction_ci_lo %.4f ratio\n", k, lo
			printf "BENCH netdisk_%s_added_fraction_ci_hi %.4f ratio\n", k, hi
			printf "BENCH netdisk_%s_added_per_request %.0f ns\n", k, f * base
			v = hi <= 0.01 ? "met" : lo > 0.01 ? "NOT met" : "within noise"
			printf "# %s: vmprobe adds %.2f%% (95%% interval %.2f..%.2f%%) to a %.0f us request: goal <= 1%%: %s\n",
				k, f * 100, lo * 100, hi * 100, base / 1000, v
		}' "$WORK/summary_$kind"
}

# The floor: a bare uprobe (tracefs, no BPF program) on an empty function,
# hit once per call, against the same calls unhooked.
bench_trap() {
	local tr=/sys/kernel/tracing off r ev=vmprobe_bench/noop
	[ -d $tr/events ] || mount -t tracefs nodev $tr
	off=$(nm "$LOAD" | awk '$3 == "netdisk_load_noop" { print $1 }')
	export LOAD_KIND=call
	start_client trap "$WORK/bin/netdisk-client"
	echo "p:$ev $LOAD:0x$off" >>$tr/uprobe_events
	for ((r = 0; r < ROUNDS; r++)); do
		echo "$r bare lat $(segment trap "$SECS")" >>"$WORK/runs_trap"
		echo 1 >$tr/events/$ev/enable
		echo "$r uprobe lat $(segment trap "$SECS")" >>"$WORK/runs_trap"
		echo 0 >$tr/events/$ev/enable
	done
	echo "-:$ev" >>$tr/uprobe_events
	python3 "$REPO/bench/ratios.py" "$WORK/runs_trap" netdisk_trap_ bare none lat:ns:less |
		grep -E '_added |^#' | sed 's/lat_uprobe_added/uprobe_hit/'
}

stats_was=$(cat /proc/sys/kernel/bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
echo "# netdisk: a 4 KiB read, one in flight, $ROUNDS rounds of ${SECS}s per client"
bench_kind rbd
bench_kind iscsi
sysctl -qw kernel.bpf_stats_enabled="$stats_was"
bench_trap
echo "# A uprobe hit is a trap into the kernel; vmprobe takes two per rbd or iSCSI"
echo "# request (submit, completion), whatever its programs do."

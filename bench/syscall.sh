#!/bin/bash
# Host-tax bench: what vmprobe costs a process that is not a VM. A syscall
# loop (bench/syscall_loop.c: pread and pwrite on /dev/zero, /dev/null and a
# regular file; getppid, which vmprobe never hooks, as the control) counts
# calls a second, alternating in one run between: no probe; vmprobe serve
# on a host with no VM; vmprobe serve with a VM (a stand-in QEMU holding a
# drive in each AIO mode); and the floor, empty programs on the same
# syscall tracepoints (bench/floor.bpf.c): the hook's own cost, which no
# program there can go below; and vmprobe serve with the VM and the vCPU
# probe on (vcpu.enabled, off by default), whose program runs at every
# context switch of the host: pipe_switch, two processes on one CPU passing
# a byte to and fro, shows that cost. Each round runs every config once in a
# rotating order; ratios are paired within a round (bench/ratios.py).
# Goal (#16): the loop keeps >= 0.98 of its rate, with and without VMs.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-9} SECS=${SECS:-0.6} PORT=19598
LOOP=$REPO/build/bench/syscall_loop FLOOR=$REPO/build/bench/floor.bpf.o
for f in "$LOOP" "$FLOOR"; do
	[ -e "$f" ] || { echo "syscall bench: $f is not built (make bench builds it)" >&2; exit 1; }
done
. "$REPO/bench/lib.sh"
WORK=$(mktemp -d /tmp/vmprobe-bench-syscall.XXXXXX)
PROBE= VM=
cleanup() {
	bench_stop
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
printf 'listen: "127.0.0.1:%s"\n' $PORT >"$WORK/cfg.yaml"
printf 'listen: "127.0.0.1:%s"\nvcpu:\n  enabled: true\n' $PORT >"$WORK/cfg_vcpu.yaml"
head -c 4096 /dev/zero >"$WORK/file"

with() { # CONFIG: starts it and waits until it is in place
	case $1 in
	floor)
		"$LOOP" floor "$FLOOR" >"$WORK/probe.log" 2>&1 &
		PROBE=$!
		bench_until "the floor programs did not attach" grep -q ready "$WORK/probe.log" ;;
	vmprobe | vmprobe_novm | vmprobe_vcpu)
		[ $1 = vmprobe_novm ] || bench_vm_start bench-vm
		"$REPO/build/vmprobe" serve -c "$WORK/$([ $1 = vmprobe_vcpu ] && echo cfg_vcpu || echo cfg).yaml" \
			>"$WORK/probe.log" 2>&1 &
		PROBE=$!
		bench_until "vmprobe did not start" curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz"
		[ $1 = vmprobe_novm ] || bench_until "the VM was not counted" bench_vm_counted $PORT ;;
	esac
}

"$LOOP" run "$SECS" "$WORK/file" >/dev/null # warm up
CONFIGS=(none floor vmprobe_novm vmprobe vmprobe_vcpu)
for ((r = 0; r < ROUNDS; r++)); do
	for ((i = 0; i < ${#CONFIGS[@]}; i++)); do
		c=${CONFIGS[(i + r) % ${#CONFIGS[@]}]}
		[ $c = none ] || with $c
		# Assigned first: under set -e a failed run then ends the bench.
		out=$("$LOOP" run "$SECS" "$WORK/file")
		bench_stop
		awk -v r=$r -v c=$c '{ print r, c, $1, $2 }' <<<"$out" >>"$WORK/runs"
	done
done
echo "# syscall loop of a process that is not a VM, calls/s, ${SECS} s per kind," \
	"$ROUNDS rounds in rotating order"
python3 "$REPO/bench/ratios.py" "$WORK/runs" syscall_ none floor getppid:calls/s:more \
	pread_zero:calls/s:more pwrite_null:calls/s:more pread_file:calls/s:more \
	pwrite_file:calls/s:more pipe_switch:round_trips/s:more | tee "$WORK/summary"
awk 'function seen(c) { if (!(c in lo) || $3 + 0 < lo[c]) lo[c] = $3 + 0 }
	$2 ~ /_vmprobe_novm_kept_ratio$/ { seen("vmprobe_novm") }
	$2 ~ /_vmprobe_kept_ratio$/ { seen("vmprobe") }
	$2 ~ /^syscall_pipe_switch_vmprobe_vcpu_kept_ratio$/ { vcpu = $3 }
	$2 ~ /_floor_kept_ratio$/ { seen("floor") }
	END {
		printf "# goal: every kind keeps >= 0.98 of its rate: no VM on the host: lowest %.3f (%s);" \
			" with a VM: lowest %.3f (%s); the floor (empty programs on the same" \
			" tracepoints) keeps %.3f\n", lo["vmprobe_novm"],
			(lo["vmprobe_novm"] >= 0.98 ? "met" : "NOT met"), lo["vmprobe"],
			(lo["vmprobe"] >= 0.98 ? "met" : "NOT met"), lo["floor"]
		printf "# the vCPU probe (vcpu.enabled) on: context switches of a process that is" \
			" not a VM keep %.3f of their rate\n", vcpu
	}' "$WORK/summary"

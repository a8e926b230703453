#!/bin/bash
# Disk bench: fio IOPS, 4 KiB random O_DIRECT reads on a tmpfs-backed loop
# device, alternating in one run: no probe; vmprobe with every disk source
# on (a stand-in VM, tests/tools/tapguest, holds drives in all three AIO
# modes, so every source's hooks are attached and the native drive's image
# is in the map each completion checks); the same without host block
# latency; vmprobe on a host with no VM; and libbpf-tools' biolatency.
# Medians over interleaved rounds, as ratios. fio is not a VM: this is
# what vmprobe costs the host's other IO.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3} SECS=${SECS:-4} PORT=19599

for need in fio biolatency losetup; do
	command -v $need >/dev/null || { echo "# disk bench skipped: $need is not installed"; exit 0; }
done
TAPGUEST=$REPO/build/tests/tools/tapguest
[ -x "$TAPGUEST" ] || { echo "disk bench: $TAPGUEST is not built (make bench builds it)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/vmprobe-bench-disk.XXXXXX)
LOOP= PROBE= VM=
cleanup() {
	[ -n "$PROBE" ] && kill -INT "$PROBE" 2>/dev/null && wait "$PROBE" 2>/dev/null
	[ -n "$VM" ] && kill "$VM" 2>/dev/null && wait "$VM" 2>/dev/null
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	umount "$WORK" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
mount -t tmpfs -o size=600m tmpfs "$WORK"
truncate -s 512M "$WORK/disk.img"
truncate -s 1M "$WORK/thr.img" "$WORK/uring.img" "$WORK/native.img"
LOOP=$(losetup -f --show "$WORK/disk.img")
mkdir "$WORK/bin"
ln -s "$TAPGUEST" "$WORK/bin/qemu-system-x86_64"

iops() {
	fio --name=bench --filename="$LOOP" --direct=1 --rw=randread --bs=4k --ioengine=libaio \
		--iodepth=16 --runtime="$SECS" --time_based --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; print(int(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))'
}
wait_ready() { # CMD...: up to 30 s, else the bench fails loudly
	for ((i = 0; i < 300; i++)); do "$@" && return 0; sleep 0.1; done
	echo "disk bench: $PROBE_NAME did not start:" >&2; cat "$WORK/probe.log" >&2; exit 1
}
start_vm() { # a stand-in QEMU with one drive per AIO mode, no IO of its own
	"$WORK/bin/qemu-system-x86_64" -name guest=bench-vm \
		-drive "file=$WORK/thr.img,format=raw,if=none,id=thr,cache=none,aio=threads" \
		-drive "file=$WORK/uring.img,format=raw,if=none,id=uring,cache=none,aio=io_uring" \
		-drive "file=$WORK/native.img,format=raw,if=none,id=nat,cache=none,aio=native" \
		>"$WORK/vm.log" 2>&1 &
	VM=$!
}
vm_counted() { # every drive of the stand-in VM has its series
	curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/m.txt" &&
		for d in thr uring nat; do grep -q "^vmprobe_disk_operations_total{.*drive=\"$d\"" "$WORK/m.txt" || return 1; done
}
with_probe() { # NAME: starts it, waits until it is attached
	PROBE_NAME=$1
	case $1 in
	vmprobe | vmprobe_nohost | vmprobe_novm)
		printf 'listen: "127.0.0.1:%s"\nnetwork:\n  enabled: false\ndisk:\n  host_block_latency: %s\n' \
			$PORT "$([ $1 = vmprobe_nohost ] && echo false || echo true)" >"$WORK/cfg.yaml"
		[ $1 = vmprobe_novm ] || start_vm
		"$REPO/build/vmprobe" serve -c "$WORK/cfg.yaml" 2>"$WORK/probe.log" &
		PROBE=$!
		wait_ready curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz"
		[ $1 = vmprobe_novm ] || wait_ready vm_counted ;;
	biolatency)
		stdbuf -oL biolatency >"$WORK/probe.log" 2>&1 &
		PROBE=$!
		wait_ready grep -q Tracing "$WORK/probe.log" ;;
	esac
}
stop_probe() {
	[ -n "$PROBE" ] || return 0
	kill -INT "$PROBE"; wait "$PROBE" 2>/dev/null || true; PROBE=
	[ -n "$VM" ] || return 0
	kill "$VM"; wait "$VM" 2>/dev/null || true; VM=
}

declare -A runs med
iops >/dev/null # warm up
CONFIGS="none vmprobe vmprobe_nohost vmprobe_novm biolatency"
for ((r = 0; r < ROUNDS; r++)); do
	for p in $CONFIGS; do
		[ $p != none ] && with_probe $p
		runs[$p]+="$(iops) "
		stop_probe
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "# fio randread 4k O_DIRECT libaio qd16 on a tmpfs loop device; rounds:" \
	"$(for p in $CONFIGS; do printf '%s %s| ' $p "${runs[$p]}"; done)"
for p in $CONFIGS; do
	med[$p]=$(median <<<"${runs[$p]}")
	echo "BENCH disk_iops_$p ${med[$p]} iops"
done
awk -v n="${med[none]}" -v v="${med[vmprobe]}" -v vn="${med[vmprobe_nohost]}" \
	-v nv="${med[vmprobe_novm]}" -v b="${med[biolatency]}" 'BEGIN {
	rb = b / n
	split("vmprobe vmprobe_nohost vmprobe_novm", name, " ")
	kept[1] = v / n; kept[2] = vn / n; kept[3] = nv / n
	for (i = 1; i <= 3; i++)
		printf "BENCH disk_%s_kept_ratio %.3f ratio\n", name[i], kept[i]
	printf "BENCH disk_biolatency_kept_ratio %.3f ratio\n", rb
	if (rb < 1) {
		for (i = 1; i <= 3; i++) {
			loss[i] = (1 - kept[i]) / (1 - rb)
			printf "BENCH disk_loss_%s_vs_biolatency_ratio %.3f ratio\n", name[i], loss[i]
		}
		printf "# goal: vmprobe loses at most half of what biolatency loses (<= 0.50): every source on: %s; " \
			"no VM on the host: %s; (every source on, host block latency off: %s)\n",
			loss[1] <= 0.5 ? "met" : "NOT met", loss[3] <= 0.5 ? "met" : "NOT met", loss[2] <= 0.5 ? "met" : "NOT met"
	}
}'

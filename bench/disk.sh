#!/bin/bash
# Disk bench: fio IOPS, 4 KiB random O_DIRECT reads on a tmpfs-backed loop
# device, alternating in one run: no probe, vmprobe (every disk source on,
# host block latency on), vmprobe without host block latency, and
# libbpf-tools' biolatency. Medians over interleaved rounds, as ratios.
# fio is not a VM: this is what vmprobe costs the host's other IO.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3} SECS=${SECS:-4} PORT=19599

for need in fio biolatency losetup; do
	command -v $need >/dev/null || { echo "# disk bench skipped: $need is not installed"; exit 0; }
done
WORK=$(mktemp -d /tmp/vmprobe-bench-disk.XXXXXX)
LOOP= PROBE=
cleanup() {
	[ -n "$PROBE" ] && kill -INT "$PROBE" 2>/dev/null && wait "$PROBE" 2>/dev/null
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	umount "$WORK" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
mount -t tmpfs -o size=600m tmpfs "$WORK"
truncate -s 512M "$WORK/disk.img"
LOOP=$(losetup -f --show "$WORK/disk.img")

iops() {
	fio --name=bench --filename="$LOOP" --direct=1 --rw=randread --bs=4k --ioengine=libaio \
		--iodepth=16 --runtime="$SECS" --time_based --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; print(int(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))'
}
wait_ready() { # CMD...: up to 30 s, else the bench fails loudly
	for ((i = 0; i < 300; i++)); do "$@" && return 0; sleep 0.1; done
	echo "disk bench: $PROBE_NAME did not start:" >&2; cat "$WORK/probe.log" >&2; exit 1
}
with_probe() { # NAME: starts it, waits until it is attached
	PROBE_NAME=$1
	case $1 in
	vmprobe | vmprobe_nohost)
		printf 'listen: "127.0.0.1:%s"\nnetwork:\n  enabled: false\ndisk:\n  host_block_latency: %s\n' \
			$PORT "$([ $1 = vmprobe ] && echo true || echo false)" >"$WORK/cfg.yaml"
		"$REPO/build/vmprobe" serve -c "$WORK/cfg.yaml" 2>"$WORK/probe.log" &
		PROBE=$!
		wait_ready curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" ;;
	biolatency)
		stdbuf -oL biolatency >"$WORK/probe.log" 2>&1 &
		PROBE=$!
		wait_ready grep -q Tracing "$WORK/probe.log" ;;
	esac
}
stop_probe() {
	[ -n "$PROBE" ] || return 0
	kill -INT "$PROBE"; wait "$PROBE" 2>/dev/null || true; PROBE=
}

declare -A runs
iops >/dev/null # warm up
for ((r = 0; r < ROUNDS; r++)); do
	for p in none vmprobe vmprobe_nohost biolatency; do
		[ $p != none ] && with_probe $p
		runs[$p]+="$(iops) "
		stop_probe
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
none=$(median <<<"${runs[none]}") vm=$(median <<<"${runs[vmprobe]}")
vmn=$(median <<<"${runs[vmprobe_nohost]}") bio=$(median <<<"${runs[biolatency]}")
echo "# fio randread 4k O_DIRECT libaio qd16 on a tmpfs loop device; rounds: none ${runs[none]}|" \
	"vmprobe ${runs[vmprobe]}| vmprobe without host block ${runs[vmprobe_nohost]}| biolatency ${runs[biolatency]}"
echo "BENCH disk_iops_none $none iops"
echo "BENCH disk_iops_vmprobe $vm iops"
echo "BENCH disk_iops_vmprobe_nohost $vmn iops"
echo "BENCH disk_iops_biolatency $bio iops"
awk -v n="$none" -v v="$vm" -v vn="$vmn" -v b="$bio" 'BEGIN {
	rv = v / n; rvn = vn / n; rb = b / n
	printf "BENCH disk_vmprobe_kept_ratio %.3f ratio\n", rv
	printf "BENCH disk_vmprobe_nohost_kept_ratio %.3f ratio\n", rvn
	printf "BENCH disk_biolatency_kept_ratio %.3f ratio\n", rb
	if (rb < 1) {
		loss = (1 - rv) / (1 - rb); lossn = (1 - rvn) / (1 - rb)
		printf "BENCH disk_loss_vmprobe_vs_biolatency_ratio %.3f ratio\n", loss
		printf "BENCH disk_loss_vmprobe_nohost_vs_biolatency_ratio %.3f ratio\n", lossn
		printf "# goal: vmprobe loses at most half of what biolatency loses (<= 0.50): %s; without host block latency: %s\n",
			loss <= 0.5 ? "met" : "NOT met", lossn <= 0.5 ? "met" : "NOT met"
	}
}'

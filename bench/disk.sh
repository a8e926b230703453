#!/bin/bash
# Disk bench: fio IOPS, 4 KiB random O_DIRECT reads on a tmpfs-backed loop
# device, alternating in one run: no probe; vmprobe with every disk source
# on (a stand-in VM, tests/tools/tapguest, holds drives in all three AIO
# modes, so every source's hooks are attached and the native drive's image
# is in the map each completion checks); the same without host block
# latency; vmprobe on a host with no VM, with and without host block
# latency; and libbpf-tools' biolatency.
# fio is not a VM: this is what vmprobe costs the host's other IO.
#
# Two jobs per CPU keep every CPU busy: with one job a CPU idles about a
# third of the time and absorbs a probe's cost, so IOPS would not show it.
# Besides IOPS, the CPU time the whole host spent per IO (/proc/stat, busy
# time of all CPUs over the run / IOs) shows the cost directly.
# Each round runs every config once, the order rotating from round to
# round; ratios are taken within a round, and their medians reported
# (bench/ratios.py).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-7} SECS=${SECS:-3} JOBS=$((2 * $(nproc))) PORT=19599

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
trap 'exit 130' INT TERM
mount -t tmpfs -o size=600m tmpfs "$WORK"
truncate -s 512M "$WORK/disk.img"
truncate -s 1M "$WORK/thr.img" "$WORK/uring.img" "$WORK/native.img"
LOOP=$(losetup -f --show "$WORK/disk.img")
mkdir "$WORK/bin"
ln -s "$TAPGUEST" "$WORK/bin/qemu-system-x86_64"

# One fio run: "IOPS CPU-µs-per-IO".
iops() {
	local before after
	before=$(head -1 /proc/stat)
	fio --name=bench --filename="$LOOP" --direct=1 --rw=randread --bs=4k --ioengine=libaio \
		--iodepth=16 --numjobs=$JOBS --group_reporting --runtime="$SECS" --time_based \
		--output-format=json 2>/dev/null >"$WORK/fio.json"
	after=$(head -1 /proc/stat)
	python3 - "$before" "$after" "$WORK/fio.json" <<-'EOF'
		import json, os, sys
		a, b = ([int(x) for x in s.split()[1:]] for s in sys.argv[1:3])
		d = [y - x for x, y in zip(a, b)]
		busy = sum(d[:8]) - d[3] - d[4] - d[7]  # less idle, iowait, steal
		r = json.load(open(sys.argv[3]))["jobs"][0]["read"]
		print(int(r["iops"]), busy / os.sysconf("SC_CLK_TCK") * 1e6 / r["total_ios"])
	EOF
}
wait_ready() { # CMD...: up to 30 s, else the bench fails loudly
	local i
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
	vmprobe | vmprobe_nohost | vmprobe_novm | vmprobe_novm_nohost)
		printf 'listen: "127.0.0.1:%s"\nnetwork:\n  enabled: false\ndisk:\n  host_block_latency: %s\n' \
			$PORT "$([[ $1 = *nohost ]] && echo false || echo true)" >"$WORK/cfg.yaml"
		[[ $1 = vmprobe_novm* ]] || start_vm
		"$REPO/build/vmprobe" serve -c "$WORK/cfg.yaml" 2>"$WORK/probe.log" &
		PROBE=$!
		wait_ready curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz"
		[[ $1 = vmprobe_novm* ]] || wait_ready vm_counted ;;
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

iops >/dev/null # warm up
CONFIGS=(none vmprobe vmprobe_nohost vmprobe_novm vmprobe_novm_nohost biolatency)
for ((r = 0; r < ROUNDS; r++)); do
	for ((i = 0; i < ${#CONFIGS[@]}; i++)); do
		p=${CONFIGS[(i + r) % ${#CONFIGS[@]}]}
		[ $p != none ] && with_probe $p
		# Assigned first: under set -e a failed run then ends the bench.
		out=$(iops)
		read -r io cpu <<<"$out"
		stop_probe
		echo "$r $p iops $io" >>"$WORK/runs"
		echo "$r $p cpu_us_per_io $cpu" >>"$WORK/runs"
	done
done
echo "# fio randread 4k O_DIRECT libaio qd16, $JOBS jobs, on a tmpfs loop device, $SECS s a run," \
	"$ROUNDS rounds in rotating order"
python3 "$REPO/bench/ratios.py" "$WORK/runs" disk_ none biolatency iops:iops:more \
	cpu_us_per_io:us:less | tee "$WORK/summary"
awk '$2 == "disk_iops_loss_vmprobe_vs_biolatency_ratio" { l = $3 }
	$2 == "disk_iops_loss_vmprobe_novm_vs_biolatency_ratio" { nv = $3 }
	$2 == "disk_cpu_us_per_io_added_vmprobe_vs_biolatency_ratio" { c = $3 }
	$2 == "disk_cpu_us_per_io_added_vmprobe_novm_vs_biolatency_ratio" { cn = $3 }
	END {
	if (l == "" || c == "") { print "# goal: no ratio: biolatency lost or added nothing in this run"; exit }
	printf "# goal: vmprobe, every source on, loses at most half of what biolatency loses (<= 0.50):" \
		" IOPS %s (%s), CPU per IO %s (%s); no VM on the host: IOPS %s, CPU per IO %s\n",
		l, l <= 0.5 ? "met" : "NOT met", c, c <= 0.5 ? "met" : "NOT met", nv, cn
}' "$WORK/summary"

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
. "$REPO/bench/lib.sh"
WORK=$(mktemp -d /tmp/vmprobe-bench-disk.XXXXXX)
LOOP= PROBE= VM=
cleanup() {
	bench_stop
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	umount "$WORK" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mount -t tmpfs -o size=600m tmpfs "$WORK"
truncate -s 512M "$WORK/disk.img"
LOOP=$(losetup -f --show "$WORK/disk.img")

# One fio run: "IOPS CPU-µs-per-IO IOs".
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
		print(int(r["iops"]), busy / os.sysconf("SC_CLK_TCK") * 1e6 / r["total_ios"], r["total_ios"])
	EOF
}
with_probe() { # NAME: starts it, waits until it is attached
	case $1 in
	vmprobe | vmprobe_nohost | vmprobe_novm | vmprobe_novm_nohost)
		printf 'listen: "127.0.0.1:%s"\nnetwork:\n  enabled: false\ndisk:\n  host_block_latency: %s\n' \
			$PORT "$([[ $1 = *nohost ]] && echo false || echo true)" >"$WORK/cfg.yaml"
		[[ $1 = vmprobe_novm* ]] || bench_vm_start bench-vm
		"$REPO/build/vmprobe" serve -c "$WORK/cfg.yaml" 2>"$WORK/probe.log" &
		PROBE=$!
		bench_until "$1 did not start" curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz"
		[[ $1 = vmprobe_novm* ]] || bench_until "$1 did not count the VM" bench_vm_counted $PORT ;;
	biolatency)
		stdbuf -oL biolatency >"$WORK/probe.log" 2>&1 &
		PROBE=$!
		bench_until "biolatency did not start" grep -q Tracing "$WORK/probe.log" ;;
	esac
}
iops >/dev/null # warm up
CONFIGS=(none vmprobe vmprobe_nohost vmprobe_novm vmprobe_novm_nohost biolatency)
for ((r = 0; r < ROUNDS; r++)); do
	for ((i = 0; i < ${#CONFIGS[@]}; i++)); do
		p=${CONFIGS[(i + r) % ${#CONFIGS[@]}]}
		[ $p != none ] && with_probe $p
		# Assigned first: under set -e a failed run then ends the bench.
		out=$(iops)
		read -r io cpu _ <<<"$out"
		bench_stop
		echo "$r $p iops $io" >>"$WORK/runs"
		echo "$r $p cpu_us_per_io $cpu" >>"$WORK/runs"
	done
done
# BPF run time per IO (bpf_stats), one run each after the rounds (the stats'
# own clock reads would skew the IOPS above): the programs a probe loaded.
prog_ids() { bpftool prog show --json | python3 -c 'import json, sys; [print(p["id"]) for p in json.load(sys.stdin)]' | sort; }
run_ns() { # IDS...: their run time so far, ns
	bpftool prog show --json | python3 -c '
import json, sys
ids = {int(i) for i in sys.argv[1:]}
print(sum(p.get("run_time_ns", 0) for p in json.load(sys.stdin) if p["id"] in ids))' "$@"
}
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
for p in vmprobe biolatency; do
	before=$(prog_ids)
	with_probe $p
	mapfile -t ids < <(comm -13 <(echo "$before") <(prog_ids))
	sysctl -qw kernel.bpf_stats_enabled=1
	t0=$(run_ns "${ids[@]}")
	out=$(iops)
	t1=$(run_ns "${ids[@]}")
	sysctl -qw kernel.bpf_stats_enabled="$stats_was"
	bench_stop
	read -r _ _ ios <<<"$out"
	echo "$p $t0 $t1 $ios" >>"$WORK/bpf_ns"
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
awk '{ ns[$1] = ($3 - $2) / $4; printf "BENCH disk_bpf_ns_per_io_%s %.1f ns\n", $1, ns[$1] }
	END {
	if (ns["biolatency"] > 0)
		printf "BENCH disk_bpf_ns_per_io_vmprobe_vs_biolatency_ratio %.3f ratio\n" \
			"# goal: vmprobe (every source on) runs at most half of biolatency'"'"'s BPF time per IO" \
			" (<= 0.50): %s\n", ns["vmprobe"] / ns["biolatency"],
			(ns["vmprobe"] / ns["biolatency"] <= 0.5 ? "met" : "NOT met")
}' "$WORK/bpf_ns"

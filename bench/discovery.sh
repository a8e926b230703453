#!/bin/bash
# Discovery bench: how long from a VM's start until it is counted (its
# drive's series in /metrics), and from its exit until its series are
# gone, over 20 starts of a stand-in VM (tests/tools/tapguest with one
# drive) and, where installed, of QEMU (TCG, paused, one drive: it opens
# its drive 60-190 ms after its start here), with the exec/exit hooks
# (discovery.process_events: true) and with the /proc rescans alone
# (false), both at the default rescan interval. The VM has no tap: a tap's
# link events make vmprobe rescan at once either way. vmprobe runs in a
# network namespace of its own so that no link event of the host does
# the rescans' work. A start is the moment before fork and exec; /metrics
# is read every 5 ms. Also what the hooks cost per exec and thread exit.
# Goal: with the hooks, started -> counted <= 100 ms median, <= 250 ms worst.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STARTS=${STARTS:-20} PORT=19632 NS=vmpb-disc
TAPGUEST=$REPO/build/tests/tools/tapguest
[ -x "$TAPGUEST" ] || { echo "discovery bench: $TAPGUEST is not built (make bench builds it)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/vmprobe-bench-disc.XXXXXX)
PROBE=
cleanup() {
	[ -n "$PROBE" ] && kill -INT "$PROBE" 2>/dev/null && wait "$PROBE" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir "$WORK/bin"
ln -s "$TAPGUEST" "$WORK/bin/qemu-system-x86_64"
truncate -s 1M "$WORK/d.img"

run() { # EVENTS QEMU: the starts and exits of one config, one "start_ms exit_ms" line each
	printf 'listen: "127.0.0.1:%s"\ndiscovery:\n  process_events: %s\nnetwork:\n  enabled: false\n' \
		$PORT "$1" >"$WORK/cfg.yaml"
	ip netns exec "$NS" "$REPO/build/vmprobe" serve -c "$WORK/cfg.yaml" 2>"$WORK/probe.log" &
	PROBE=$!
	ip netns exec "$NS" python3 - "$WORK" "$PORT" "$STARTS" "$2" <<-'EOF'
		import random, subprocess, sys, time, urllib.request
		work, port, starts, qemu = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
		url = "http://127.0.0.1:%s/metrics" % port
		image = "file=%s/d.img,format=raw,if=none,id=d0,cache=none,aio=threads" % work
		# The real one, paused (-S) with no guest code: it opens its drive as it starts.
		extra = ["-accel", "tcg", "-m", "64", "-nodefaults", "-display", "none", "-S",
		         "-device", "virtio-blk-pci,drive=d0,id=vd0"] if qemu != "standin" else []
		label = "vd0" if extra else "d0"
		def metrics():
		    try:
		        return urllib.request.urlopen(url, timeout=2).read().decode()
		    except OSError:
		        return ""
		def wait(cond, secs):  # until cond(metrics()), polled every 5 ms
		    t0 = time.monotonic()
		    while time.monotonic() - t0 < secs:
		        if cond(metrics()):
		            return
		        time.sleep(0.005)
		    sys.exit("discovery bench: not seen within %d s" % secs)
		wait(lambda m: "vmprobe_build_info" in m, 30)
		for i in range(starts):
		    name = "bench-disc-%d" % i
		    drive = 'vmprobe_disk_latency_seconds_count{name="%s",drive="%s",operation="read"}' % (name, label)
		    time.sleep(random.uniform(0.1, 0.7))  # a phase of the rescans at random
		    t0 = time.monotonic()
		    vm = subprocess.Popen([qemu, "-name", "guest=" + name, "-drive", image] + extra,
		                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
		    wait(lambda m: drive in m, 10)
		    start = (time.monotonic() - t0) * 1e3
		    time.sleep(random.uniform(0.1, 0.7))
		    t1 = time.monotonic()
		    vm.kill()
		    wait(lambda m: ('name="%s"' % name) not in m, 10)
		    vm.wait()
		    print("%.1f %.1f" % (start, (time.monotonic() - t1) * 1e3), flush=True)
	EOF
	kill -INT "$PROBE"; wait "$PROBE" 2>/dev/null || true; PROBE=
}

# What the hooks cost every other process: their run time per exec and per
# thread exit (bpf_stats, which adds some ns of its own), over 2000 execs
# of /bin/true, each also an exit, while vmprobe runs with them; beside
# it, what the shell's fork, exec and exit of /bin/true take.
hook_cost() {
	local stats_was i t0
	printf 'listen: "127.0.0.1:%s"\nnetwork:\n  enabled: false\ndisk:\n  enabled: false\n' \
		$PORT >"$WORK/cfg.yaml"
	ip netns exec "$NS" "$REPO/build/vmprobe" serve -c "$WORK/cfg.yaml" 2>"$WORK/probe.log" &
	PROBE=$!
	for ((i = 0; i < 300; i++)); do
		ip netns exec "$NS" curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
		sleep 0.1
	done
	stats_was=$(cat /proc/sys/kernel/bpf_stats_enabled)
	sysctl -qw kernel.bpf_stats_enabled=1
	t0=$(date +%s%N)
	for ((i = 0; i < 2000; i++)); do /bin/true; done
	echo "BENCH discovery_fork_exec_exit_us $(( ($(date +%s%N) - t0) / 2000000 )) us"
	bpftool -j prog show >"$WORK/progs.json"
	sysctl -qw kernel.bpf_stats_enabled="$stats_was"
	kill -INT "$PROBE"; wait "$PROBE" 2>/dev/null || true; PROBE=
	python3 - "$WORK/progs.json" <<-'EOF'
		import json, sys
		progs = {p["name"]: p for p in json.load(open(sys.argv[1])) if p.get("run_cnt")}
		for name, what in (("proc_exec", "exec"), ("proc_exit", "thread_exit")):
		    p = progs.get(name)
		    if p:
		        print("BENCH discovery_hook_ns_per_%s %.1f ns" % (what, p["run_time_ns"] / p["run_cnt"]))
	EOF
}

# The stand-in, and Debian's QEMU (TCG) where it is installed.
KINDS=(standin)
command -v qemu-system-x86_64 >/dev/null && KINDS+=(qemu)
for kind in "${KINDS[@]}"; do
	qemu=$([ $kind = standin ] && echo "$WORK/bin/qemu-system-x86_64" || command -v qemu-system-x86_64)
	run true "$qemu" >"$WORK/$kind.events"
	run false "$qemu" >"$WORK/$kind.poll"
done
hook_cost >"$WORK/hooks"
python3 - "$WORK" "$STARTS" "${KINDS[@]}" <<-'EOF'
	import math, sys
	work, starts, kinds = sys.argv[1], sys.argv[2], sys.argv[3:]
	def dist(path, col):  # median, p90 (nearest rank), max of a column, in ms
	    v = sorted(float(l.split()[col]) for l in open(path))
	    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2, v[math.ceil(0.9 * len(v)) - 1], v[-1]
	print("# discovery: %s starts each of a stand-in VM (standin) and of QEMU under TCG (qemu),"
	      " one drive; rescans every 500 ms; events: discovery.process_events true, poll: false" % starts)
	for kind in kinds:
	    for col, what in ((0, "start_to_counted"), (1, "exit_to_dropped")):
	        for how in ("events", "poll"):
	            for stat, ms in zip(("median", "p90", "max"), dist("%s/%s.%s" % (work, kind, how), col)):
	                print("BENCH discovery_%s_%s_%s_%s %.1f ms" % (kind, what, how, stat, ms))
	print(open(work + "/hooks").read(), end="")
	med, _, worst = dist(work + "/standin.events", 0)
	print("# goal: with the hooks, the stand-in's start -> counted <= 100 ms median (%s),"
	      " <= 250 ms worst (%s)" % ("met" if med <= 100 else "NOT met", "met" if worst <= 250 else "NOT met"))
EOF

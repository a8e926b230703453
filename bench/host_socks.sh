#!/bin/bash
# Host-socket bench (#16): what the host's own TCP sockets cost vmprobe
# serve. A stand-in VM holds what every QEMU holds: its monitor's unix
# socket and a listening TCP socket (VNC). serve, at the default rescan
# (500 ms; every 8th scan a full sync walks each VM's fds), runs in two
# configs, alternating in one run: quiet (the host's few TCP sockets) and
# busy (SOCKS more, established over loopback, held by a helper). Measured:
# serve's CPU (every thread's run time, /proc/PID/task/*/schedstat) over
# SECS s, and, in a window of its own that is not timed, how often serve
# opened /proc/PID/net/tcp or tcp6 (strace). Those tables list every TCP
# socket of the namespace: before caf0521 every walk read them whole, at
# 17 ms a read with 9.3k sockets here.
# Goal: serve's CPU does not grow with the host's sockets (busy/quiet ~1),
# and no table is read once the VM's sockets are sorted.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5} SECS=${SECS:-16} SOCKS=${SOCKS:-10000} PORT=19597
. "$REPO/bench/lib.sh"
command -v strace >/dev/null || { echo "host socket bench: strace is not installed" >&2; exit 1; }
WORK=$(mktemp -d /tmp/vmprobe-bench-socks.XXXXXX)
PROBE= VM= HELPER=
cleanup() {
	bench_stop
	helper_stop
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
printf 'listen: "127.0.0.1:%s"\n' $PORT >"$WORK/cfg.yaml"

# SOCKS/2 loopback connections, both ends held; closed with a reset, so
# that no TIME_WAIT socket is left for the next quiet config.
helper_start() {
	python3 - "$SOCKS" >"$WORK/helper.log" 2>&1 <<-'EOF' &
		import resource, socket, struct, sys, time
		# Two fds a connection: as many as the hard limit allows.
		hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
		resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
		srv = socket.socket()
		srv.bind(("127.0.0.1", 0))
		srv.listen(4096)
		keep = []
		for _ in range(int(sys.argv[1]) // 2):
		    c = socket.create_connection(srv.getsockname())
		    a, _ = srv.accept()
		    for s in (c, a):
		        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
		    keep += [c, a]
		print("ready", flush=True)
		time.sleep(3600)
	EOF
	HELPER=$!
	bench_until "the socket helper did not start" grep -q ready "$WORK/helper.log"
}
helper_stop() {
	[ -n "$HELPER" ] || return 0
	kill "$HELPER" 2>/dev/null || true
	wait "$HELPER" 2>/dev/null || true
	HELPER=
}
tcp_sockets() { cat /proc/net/tcp /proc/net/tcp6 | grep -c ':'; }
# serve's threads' CPU: one that ends while read is left out, not an error;
# serve gone ends the bench.
cpu_ns() {
	[ -d /proc/"$PROBE"/task ] || { echo "host socket bench: serve exited" >&2; return 1; }
	{ cat /proc/"$PROBE"/task/*/schedstat 2>/dev/null || true; } |
		awk '{ s += $1 } END { print s + 0 }'
}

with() { # CONFIG: the host's sockets, the VM and serve, in place
	[ $1 = quiet ] || helper_start
	bench_vm_start bench-socks -qmp "unix:$WORK/qmp.sock,server=on,wait=off" -vnc 127.0.0.1:97
	"$REPO/build/vmprobe" serve -c "$WORK/cfg.yaml" >"$WORK/probe.log" 2>&1 &
	PROBE=$!
	bench_until "vmprobe did not start" curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz"
	bench_until "the VM was not counted" bench_vm_counted $PORT
	sleep 5 # past the first full sync: the VM's sockets are sorted
}

for ((r = 0; r < ROUNDS; r++)); do
	for c in $([ $((r % 2)) = 0 ] && echo quiet busy || echo busy quiet); do
		with $c
		t0=$(cpu_ns)
		sleep "$SECS"
		t1=$(cpu_ns)
		echo "$r $c cpu_ms_per_min $(((t1 - t0) * 60 / SECS / 1000000))" >>"$WORK/runs"
		echo "$r $c tcp_sockets $(tcp_sockets)" >>"$WORK/runs"
		if [ $r = 0 ]; then
			timeout "$SECS" strace -f -qq -e trace=openat -p "$PROBE" 2>"$WORK/strace.$c" || true
			echo "# $c: serve opened /proc/PID/net/tcp{,6} $(grep -c '/net/tcp' "$WORK/strace.$c")" \
				"times in $SECS s"
		fi
		bench_stop
		helper_stop
	done
done
echo "# serve with a VM holding a unix and a listening TCP socket, default rescan, $SECS s" \
	"per config, $ROUNDS rounds alternating; busy: $SOCKS more TCP sockets on the host"
python3 "$REPO/bench/ratios.py" "$WORK/runs" host_socks_ quiet none cpu_ms_per_min:ms:less \
	tcp_sockets:sockets:less | tee "$WORK/summary"
awk '$2 == "host_socks_cpu_ms_per_min_quiet" { q = $3 }
	$2 == "host_socks_cpu_ms_per_min_busy" { b = $3 }
	END {
		r = q > 0 ? b / q : 0
		printf "BENCH host_socks_cpu_busy_vs_quiet_ratio %.3f ratio\n", r
		printf "# goal: serve'"'"'s CPU does not grow with the host'"'"'s TCP sockets:" \
			" busy/quiet %.3f (%s)\n", r, (q > 0 && r <= 1.1) ? "met" : "NOT met"
	}' "$WORK/summary"

# Shared by the bench scripts that run vmprobe serve beside a stand-in VM
# (tests/tools/tapguest as qemu-system-x86_64). Needs REPO and WORK set.

# bench_until WHAT CMD...: CMD (retried) within 30 s, else the bench fails
# loudly with WHAT and $WORK/probe.log.
bench_until() {
	local i
	for ((i = 0; i < 300; i++)); do "${@:2}" && return 0; sleep 0.1; done
	echo "bench: $1:" >&2
	cat "$WORK/probe.log" >&2
	exit 1
}

# bench_vm_start NAME [ARG...]: a stand-in QEMU with one drive per AIO mode
# and no IO of its own, and ARGs on its command line; its pid in VM. Images
# in $WORK.
bench_vm_start() {
	local tapguest=$REPO/build/tests/tools/tapguest
	[ -x "$tapguest" ] || { echo "bench: $tapguest is not built (make bench builds it)" >&2; exit 1; }
	mkdir -p "$WORK/bin"
	ln -sf "$tapguest" "$WORK/bin/qemu-system-x86_64"
	truncate -s 1M "$WORK/thr.img" "$WORK/uring.img" "$WORK/native.img"
	"$WORK/bin/qemu-system-x86_64" -name "guest=$1" \
		-drive "file=$WORK/thr.img,format=raw,if=none,id=thr,cache=none,aio=threads" \
		-drive "file=$WORK/uring.img,format=raw,if=none,id=uring,cache=none,aio=io_uring" \
		-drive "file=$WORK/native.img,format=raw,if=none,id=nat,cache=none,aio=native" \
		"${@:2}" >"$WORK/vm.log" 2>&1 &
	VM=$!
}

# bench_vm_counted PORT: every drive of the stand-in VM has its series.
bench_vm_counted() {
	curl -sf "http://127.0.0.1:$1/metrics" >"$WORK/m.txt" || return 1
	local d
	for d in thr uring nat; do
		grep -q "^vmprobe_disk_latency_seconds_count{.*drive=\"$d\"" "$WORK/m.txt" || return 1
	done
}

# bench_stop: stops vmprobe (PROBE) and the stand-in VM (VM), if running.
bench_stop() {
	[ -z "${PROBE:-}" ] || { kill -INT "$PROBE"; wait "$PROBE" 2>/dev/null || true; PROBE=; }
	[ -z "${VM:-}" ] || { kill "$VM"; wait "$VM" 2>/dev/null || true; VM=; }
}

#!/bin/bash
# Discovery driven by process events: with /proc rescanned only once an
# hour, a stand-in VM (tests/tools/tapguest) started while vmprobe runs is
# counted, the drive it opens after its exec too, and it is dropped when it
# exits; with discovery.process_events off, the same hour passes without
# it being found, and the usual rescans alone find and drop it. The bounds are generous (10 s): how fast is for make bench
# (bench/discovery.sh).
# vmprobe runs in a network namespace of its own, so that no link event of
# the host (whose netlink messages make it rescan) can do the events' work.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "discovery from process events"
WORK=$(mktemp -d /tmp/vmprobe-disc.XXXXXX)
PORT=19631 NS=vmpd-ns VM=
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	[ -n "$VM" ] && kill "$VM" 2>/dev/null && wait "$VM" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
ip netns del "$NS" 2>/dev/null
ip netns add "$NS" && ip -n "$NS" link set lo up
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$VMPROBE" >"$WORK/vmprobe-in-ns"
chmod +x "$WORK/vmprobe-in-ns"
VMPROBE=$WORK/vmprobe-in-ns
# vmprobe.sh's scrapes, from inside that namespace.
curl() { ip netns exec "$NS" curl "$@"; }

QEMU=$(tapguest_dir)
truncate -s 1M "$WORK/d.img"
start_vm() { # NAME: a stand-in VM with one drive and no tap, in the background
	"$QEMU" -name "guest=$1" -drive "file=$WORK/d.img,format=raw,if=none,id=d0,cache=none,aio=threads" \
		>"$WORK/$1.log" 2>&1 &
	VM=$!
}
stop_vm() { kill "$VM"; wait "$VM" 2>/dev/null; VM=; }
value() { # NAME LABEL=VALUE...: a sample of a fresh scrape ("" if none)
	scrape "$WORK/m.txt" && metric "$WORK/m.txt" "$@"
}
listed() { [ -n "$(value vmprobe_vm_info name="$1")" ]; }
unlisted() { scrape "$WORK/m.txt" && [ -z "$(metric "$WORK/m.txt" vmprobe_vm_info name="$1")" ]; }
drive_counted() { [ -n "$(value vmprobe_disk_latency_seconds_count name="$1" drive=d0 operation=read)" ]; }
start_serve() { # RESCAN_MS EVENTS
	VMPROBE_RESCAN_MS=$1 VMPROBE_PROCESS_EVENTS=$2 vmprobe_start $PORT ||
		{ tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
}

check "vmprobe check reports the exec/exit hooks ok" \
	grep -qE '^ok +process exec/exit events' <("$REPO/build/vmprobe" check)

# Events on, the rescan an hour apart: only the exec and exit events can
# find and drop the VM.
start_serve 3600000 true
start_vm ev-a
check "events: a VM started is listed within 10 s" wait_for 10 listed ev-a
check "events: the drive it opens after its exec is counted within 10 s" wait_for 10 drive_counted ev-a
check "events: its exec event was read" test "$(value vmprobe_discovery_process_events_total event=exec)" -ge 1
stop_vm
check "events: a VM that exits is dropped within 10 s" wait_for 10 unlisted ev-a
check "events: its exit event was read" test "$(value vmprobe_discovery_process_events_total event=exit)" -ge 1
check_eq "events: the log names no failure" "" "$(grep -E '^vmprobe: (warn|error):' "$WORK/vmprobe.log")"
vmprobe_stop

# Events off, the rescan an hour apart: nothing else finds the VM, so what
# found it above were the events.
start_serve 3600000 false
check "events off: the log says VMs are found by rescans" grep -q 'process events off' "$WORK/vmprobe.log"
start_vm ev-b
sleep 3
check_fails "events off: a VM started is not found for 3 s before the next rescan" listed ev-b
stop_vm
vmprobe_stop

# Events off, the usual rescans: the fallback finds and drops the VM.
start_serve 500 false
start_vm ev-c
check "fallback: a VM started is listed within 10 s" wait_for 10 listed ev-c
check "fallback: its drive is counted within 10 s" wait_for 10 drive_counted ev-c
stop_vm
check "fallback: a VM that exits is dropped within 10 s" wait_for 10 unlisted ev-c
check_eq "fallback: no exec or exit event was read" "0 0" \
	"$(value vmprobe_discovery_process_events_total event=exec) $(value vmprobe_discovery_process_events_total event=exit)"
vmprobe_stop
tap_done

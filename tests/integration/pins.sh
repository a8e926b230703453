#!/bin/bash
# What vmprobe serve leaves in bpffs, and what the next serve does with it,
# with a stand-in VM (tests/tools/tapguest: a tap, and an aio=threads drive
# it reads with pread(2)) whose frames and reads are known exactly:
#  - persist: true pins maps, links and a stamp (PIN_DIR/PROBE/); after
#    SIGTERM or SIGKILL the programs go on counting, and the next serve
#    adopts them: totals equal the tap's counters and the reads, gap
#    included; on TCX and on clsact (filters replaced in place), and from
#    another build with the same layout (programs replaced);
#  - a configuration with other map sizes (another layout) starts from
#    zero with new maps and says so once; so does a serve after one
#    killed without persist;
#  - a VM gone while no serve ran is released: no hook stays attached;
#  - `serve --cleanup` and `vmprobe uninstall` remove everything; top
#    does not attach probes of its own beside programs left counting, nor
#    read a serve's counters of another layout;
#  - two serves never run at once, and uninstall waits for none;
#  - the tap's and the drive's _created (OpenMetrics, and protobuf's
#    created_timestamp) is when serve began counting them, the same after
#    every adoption, new when their counters start from zero or their slot
#    counts a new VM.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_cmds "serve's pins and their adoption" bpftool
tap_require_root "serve's pins and their adoption" tun
[ -x "$TAPGUEST" ] || { tap_skip "serve's pins and their adoption" "$TAPGUEST is not built"; tap_done; exit; }
[ -x "$PBCREATED" ] || { tap_fail "serve's pins and their adoption" "$PBCREATED is not built (make $PBCREATED)"; tap_done; exit; }

WORK=$(mktemp -d /tmp/vmprobe-pins.XXXXXX)
PORT=19598 TAP=vmpin-t0 PINS=/sys/fs/bpf/vmprobe
. "$REPO/tests/lib/pinvm.sh"
trap pinvm_cleanup EXIT
pinvm_tap || { tap_fail "a tap for the stand-in VM"; tap_done; exit; }
start_vm

# OpenMetrics with _created, and a log whose lines say when (logfmt's ts=).
PINVM_YAML="log_format: logfmt
$PINVM_CREATED"
# ... and when serve's log says it began (its last "counting tap|drive" line).
counting_logged_end() { log_time_end "counting $([ "$1" = tap ] && echo "tap $TAP" || echo "drive disk0")"; }
# The slot serve counts the tap or the drive in (state.json).
slot_of() { # tap|drive
	python3 - "$1" "$TAP" <<'PY'
import json, sys
what, tap = sys.argv[1], sys.argv[2]
def walk(o):
    if isinstance(o, dict):
        if (what == "tap" and o.get("tap") == tap and "slot" in o) or (what == "drive" and o.get("drive") == "disk0"):
            print(o["slot"]); sys.exit()
        o = list(o.values())
    if isinstance(o, list):
        for v in o:
            walk(v)
walk(json.load(open("/run/vmprobe/state.json")))
PY
}
# Every series of the tap and the drive, in OpenMetrics and in protobuf, says the same _created.
same_created() { # WHAT TAP_CREATED DRIVE_CREATED
	local f n
	scrape_om "$WORK/om.txt" && scrape_pb_created "$WORK/pb.txt" || { tap_fail "$1: OpenMetrics and protobuf scrapes"; return; }
	for f in "network_packet_size_bytes direction=rx" "network_packet_size_bytes direction=tx" \
		"network_tcp_retransmits direction=rx"; do
		n=vmprobe_${f%% *}
		check_near "$1: ${n}_created of the tap" "$2" "$(metric "$WORK/om.txt" "${n}_created" name=pin-vm interface=$TAP "${f#* }")" 0
	done
	check_near "$1: vmprobe_network_tcp_rtt_seconds_created of the tap" "$2" \
		"$(metric "$WORK/om.txt" vmprobe_network_tcp_rtt_seconds_created name=pin-vm interface=$TAP path=guest)" 0
	for f in disk_errors disk_latency_seconds disk_request_size_bytes; do
		check_near "$1: vmprobe_${f}_created of the drive" "$3" \
			"$(metric "$WORK/om.txt" "vmprobe_${f}_created" name=pin-vm drive=disk0 operation=write)" 0
	done
	check_near "$1: protobuf's created_timestamp of the tap's retransmits (counter)" "$2" \
		"$(metric "$WORK/pb.txt" vmprobe_network_tcp_retransmits_total name=pin-vm interface=$TAP direction=tx)" 0.001
	check_near "$1: protobuf's created_timestamp of the tap's frame sizes (histogram)" "$2" \
		"$(metric "$WORK/pb.txt" vmprobe_network_packet_size_bytes name=pin-vm interface=$TAP direction=rx)" 0.001
	check_near "$1: protobuf's created_timestamp of the drive's read errors (counter)" "$3" \
		"$(metric "$WORK/pb.txt" vmprobe_disk_errors_total name=pin-vm drive=disk0 operation=read)" 0.001
	check_near "$1: protobuf's created_timestamp of the drive's latency (histogram)" "$3" \
		"$(metric "$WORK/pb.txt" vmprobe_disk_latency_seconds name=pin-vm drive=disk0 operation=read)" 0.001
}

# 1. persist: what is pinned, and the programs outlive serve.
serve "persist: true" && counted ||
	{ tap_fail "serve (persist: true) starts and counts the VM" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
tap_ok "serve (persist: true) starts and counts the VM"
stream
exact "first serve"
check "net and disk pins carry a stamp" test -e $PINS/net/stamp -a -e $PINS/disk/stamp
check "the counters are pinned (net_stats, drive_stats)" test -e $PINS/net/net_stats -a -e $PINS/disk/drive_stats
if have_tcx; then
	check "the tap's TCX links are pinned" test -e $PINS/net/links/tap0_in -a -e $PINS/net/links/tap0_eg
fi
check "the disk hooks' links are pinned (sys_enter_pread64's)" test -e $PINS/disk/links/enter_pread64
TAP_BORN=$(created tap) DRIVE_BORN=$(created drive)
# _created is taken just before the "counting" log line: after serve's start, not after the line.
check_range "the tap's _created is when serve began counting it (after serve's start, by its log line)" \
	"$(metric "$WORK/om.txt" process_start_time_seconds)" "$(counting_logged_end tap)" "$TAP_BORN"
check_range "the drive's _created is when serve began counting it (after serve's start, by its log line)" \
	"$(metric "$WORK/om.txt" process_start_time_seconds)" "$(counting_logged_end drive)" "$DRIVE_BORN"
same_created "first serve" "$TAP_BORN" "$DRIVE_BORN"
check_near "a host-wide counter's _created is serve's start (process_start_time_seconds, within 1 s)" \
	"$(metric "$WORK/om.txt" process_start_time_seconds)" "$(metric "$WORK/om.txt" vmprobe_discovery_scans_created)" 1
if command -v promtool >/dev/null; then
	check "promtool check metrics is clean (text format, a VM counted)" bash -c "curl -sf '$VMPROBE_URL' | promtool check metrics"
else
	tap_skip "promtool check metrics is clean (text format, a VM counted)" "promtool is not installed"
fi
OLD_SLOTS="$(slot_of tap) $(slot_of drive)"

# 2. Restarts: SIGTERM, SIGKILL, each with a gap that has traffic and reads.
for sig in TERM KILL; do
	stop $sig
	check_eq "SIG$sig: with no serve, vmprobe's programs stay on the tap" \
		"vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
	check "SIG$sig: and its disk hooks stay attached" eval '[ "$(vmprobe_links | grep -cx enter_pread64)" = 1 ]'
	stream
	if serve "persist: true" && counted; then tap_ok "SIG$sig: the next serve starts"; else tap_fail "SIG$sig: the next serve starts" "$(cat "$WORK/vmprobe.log")"; fi
	check "SIG$sig: it adopts the earlier serve's programs and counters" adopted
	check_eq "SIG$sig: one program each way on the tap" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
	stream
	exact "after SIG$sig"
	same_created "after SIG$sig, adopted: the tap's and drive's first _created" "$TAP_BORN" "$DRIVE_BORN"
done

# 2b. Programs that differ with the same layout (another build): adopted,
# the TC programs swapped in place, the tracepoint links moved to ours.
# Stamped here as another build would: the code hash changed.
stop TERM
stream
check "another build's stamps (code hash changed)" eval 'pin_restamp $PINS/net/stamp && pin_restamp $PINS/disk/stamp'
if serve "persist: true" && counted; then tap_ok "another build: the next serve starts"; else tap_fail "another build: the next serve starts" "$(cat "$WORK/vmprobe.log")"; fi
check "another build: it adopts the counters" adopted
check "another build: the log says its programs are replaced" \
	grep -q "disk probe: adopting .*its BPF programs differ from ours and are replaced" "$WORK/vmprobe.log"
pins_info() { scrape "$WORK/m.txt" && metric "$WORK/m.txt" vmprobe_pins_info "$@"; }
check_eq "another build: vmprobe_pins_info says the disk probe adopted, programs replaced" 1 \
	"$(pins_info probe=disk state=adopted reason=programs_replaced)"
check_eq "another build: one program each way on the tap" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
check_eq "another build: each disk hook attached once (the old links went)" 1 "$(vmprobe_links | grep -cx enter_pread64)"
stream
exact "after another build"
check_eq "another build: the adopted tap keeps its _created" "$TAP_BORN" "$(created tap)"
check_eq "another build: the adopted drive keeps its _created" "$DRIVE_BORN" "$(created drive)"

# 3. Two serves never at once; uninstall does not run beside a serve.
"$VMPROBE" serve -c "$WORK/vmprobe.yaml" --listen 127.0.0.1:$((PORT + 1)) >"$WORK/second.log" 2>&1
check_num "a second serve exits 1" 1 "$?"
check "... saying which serve runs, and its command line" \
	grep -q "another vmprobe serve (pid $VMPROBE_PID: $VMPROBE serve -c $WORK/vmprobe.yaml) is running" "$WORK/second.log"
"$VMPROBE" uninstall >"$WORK/uninstall.log" 2>&1
check_num "uninstall exits 1 while serve runs" 1 "$?"
check "... saying so" grep -q "another vmprobe serve (pid $VMPROBE_PID: $VMPROBE serve" "$WORK/uninstall.log"
check_eq "and changes nothing" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
exact "beside a refused second serve"

# 4. clsact: a serve on the other hook takes the tap over (its counters go
# on); the next one replaces its filters in place.
stop TERM
if serve "persist: true
network:
  tc_hook: clsact"; then tap_ok "a serve on clsact starts"; else tap_fail "a serve on clsact starts" "$(cat "$WORK/vmprobe.log")"; fi
check "it adopts the counters" adopted
stream
exact "serve on clsact after one on TCX"
check_eq "clsact after TCX: the tap taken over keeps its _created" "$TAP_BORN" "$(created tap)"
stop TERM
stream
check_eq "clsact: with no serve, one vmprobe filter each way stays" \
	"vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
serve "persist: true
network:
  tc_hook: clsact"
check "clsact: the next serve adopts" adopted
check "clsact: its filters are taken over, not attached anew" \
	grep -q "counting tap $TAP .*: adopted, its counters go on" "$WORK/vmprobe.log"
check_eq "clsact: one filter each way" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
stream
exact "clsact, after a restart"
check_eq "clsact, after a restart: the tap keeps its _created" "$TAP_BORN" "$(created tap)"
check_eq "clsact, after a restart: the drive keeps its _created" "$DRIVE_BORN" "$(created drive)"

# 4b. Back on TCX: the serve takes the tap over from the clsact filters,
# which go, and so does the clsact qdisc the first serve on clsact made.
if have_tcx; then
	stop TERM
	check_eq "clsact: the qdisc the first serve on clsact made is there" 1 \
		"$(tc qdisc show dev $TAP | grep -c clsact)"
	stream
	serve "persist: true"
	check "TCX after clsact: the serve adopts the counters" adopted
	check_eq "TCX after clsact: one program each way" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
	check_eq "TCX after clsact: the clsact qdisc vmprobe made is gone with its filters" "" \
		"$(tc qdisc show dev $TAP | grep clsact)"
	stream
	exact "serve on TCX after one on clsact"
	# Back on clsact, as step 5 began before: a layout change after a clsact serve.
	stop TERM
	stream
	serve "persist: true
network:
  tc_hook: clsact"
	check "clsact again: the serve adopts the counters" adopted
	stream
	exact "serve on clsact again"
else
	tap_skip "a serve on TCX after one on clsact" "this kernel has no TCX (Linux 6.6+)"
fi

# 5. Another map layout (other sizes) starts from zero, and says so once:
# new maps, not the old ones read another way. (test_pins shows that a
# field added to a pinned struct, or moved, is another layout too.)
map_id() { bpftool -j map show pinned "$PINS/$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'; }
stop TERM
old_ids="$(map_id net/net_stats) $(map_id disk/drive_stats)"
stream
serve "persist: true
max_vms: 17"
for p in net disk netdisk; do
	check_eq "another map layout: the log says once that the $p probe's pins are removed, and why" 1 \
		"$(grep -cE "(^|[^a-z])$p probe: removing the pins .*map layout is not this version's.*counters start from zero" \
			"$WORK/vmprobe.log")"
done
check_eq "another map layout: vmprobe_pins_info says the net probe's pins were removed for it" 1 \
	"$(pins_info probe=net state=removed reason=layout)"
new_ids="$(map_id net/net_stats) $(map_id disk/drive_stats)"
none_common() { # "IDS" "IDS": two ids each, and none in both
	[ "$(wc -w <<<"$1 $2")" = 4 ] && [ -z "$(comm -12 <(tr ' ' '\n' <<<"$1" | sort) <(tr ' ' '\n' <<<"$2" | sort))" ]
}
check "another map layout: net_stats and drive_stats are new maps (ids $old_ids, now $new_ids)" \
	none_common "$old_ids" "$new_ids"
check_eq "another map layout: one program each way" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
check_num "the VM's frames count from zero" 0 "$(tx)"
check_num "the VM's reads count from zero" 0 "$(reads)"
# Counters from zero: a new _created, when this serve began counting them.
reborn() { # WHAT tap|drive OLD
	local now
	now=$(created "$2")
	check_range "$1: the $2's _created is new, after the old one and this serve's start" \
		"$(awk -v a="$3" -v b="$(metric "$WORK/om.txt" process_start_time_seconds)" \
			'BEGIN { printf "%.6f", (a > b ? a : b) }')" 9999999999 "$now"
	check_range "$1: ... when serve began counting the $2 (by its log line)" \
		"$(metric "$WORK/om.txt" process_start_time_seconds)" "$(counting_logged_end "$2")" "$now"
}
reborn "another map layout" tap "$TAP_BORN"
reborn "another map layout" drive "$DRIVE_BORN"

# 6. A serve without persist that is killed: the next start removes its pins.
stop TERM
serve "" --cleanup
# top beside a serve whose counters are laid out otherwise (a serve of
# another version, before its restart): drive_stats' pin replaced by a map
# of 8-byte values (serve keeps its own; its pins go at the next start).
# top says so and exits 1, rather than misread them.
rm $PINS/disk/drive_stats &&
	bpftool map create $PINS/disk/drive_stats type array key 4 value 8 entries 4 name drive_stats
"$VMPROBE" top -b -n 1 >"$WORK/top.log" 2>&1
check_num "top beside counters of another layout exits 1" 1 "$?"
check "... naming the map, the sizes and what to do" \
	grep -q "serve's $PINS/disk/drive_stats holds values of 8 bytes, this vmprobe's are [0-9]*: serve is another version of vmprobe; restart it" "$WORK/top.log"
stop KILL
check "a killed serve without persist leaves its stamp" test -e $PINS/net/stamp
serve "persist: true"
check "the next serve removes its pins: it did not persist them" \
	grep -q "net probe: removing the pins .*did not persist them" "$WORK/vmprobe.log"
check_num "and counts from zero" 0 "$(reads)"

# 7. A VM gone while no serve ran: released, and no hook stays attached.
GONE_SLOTS="$(slot_of tap) $(slot_of drive)" TAP_BORN=$(created tap) DRIVE_BORN=$(created drive)
stop TERM
kill "$VM"; wait "$VM" 2>/dev/null; VM=
serve "persist: true"
gone() { ! grep -q pin-vm <(curl -sf "$VMPROBE_URL"); }
check "the gone VM's series are not served" gone
check "its slot is released" grep -q "network probe: released 1 slots" "$WORK/vmprobe.log"
check_eq "no vmprobe hook stays attached with no VM (no tap program, tracepoint or drop hook)" "" \
	"$(vmprobe_links | sort -u | xargs)"
check_eq "no link is pinned" "" "$(find $PINS/net/links $PINS/disk/links -mindepth 1 2>/dev/null)"

# 8. serve --cleanup adopts, then removes everything as it exits.
start_vm
check "a new VM is counted" wait_for 10 counted
wait_for 10 eval '[ "$(slot_of tap) $(slot_of drive)" = "$GONE_SLOTS" ]'
check_eq "the new VM (the same name) is counted in the gone VM's tap and drive slots" \
	"$GONE_SLOTS" "$(slot_of tap) $(slot_of drive)"
reborn "a new VM in the gone VM's slots" tap "$TAP_BORN"
reborn "a new VM in the gone VM's slots" drive "$DRIVE_BORN"
same_created "a new VM in the gone VM's slots" "$(created tap)" "$(created drive)"
stop TERM
check_eq "persist leaves the tap's programs" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
serve "persist: true" --cleanup
check "serve --cleanup adopts" adopted
stop TERM
check "serve --cleanup removes /sys/fs/bpf/vmprobe as it exits" test ! -e $PINS
check_eq "... and every vmprobe program and hook" "" "$(progs; vmprobe_links)"

# 9. vmprobe uninstall after a persistent serve.
serve "persist: true"
stop KILL
check_eq "SIGKILL leaves the programs" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
"$VMPROBE" top -b -n 1 >"$WORK/top.log" 2>&1
check_num "top exits 1 rather than attach probes beside the programs left counting" 1 "$?"
check "... and says what to do" grep -q "start it to read them, or remove them with vmprobe uninstall" "$WORK/top.log"
check_eq "... leaving them as they were" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
"$VMPROBE" uninstall >"$WORK/uninstall.log" 2>&1
check_num "vmprobe uninstall exits 0" 0 "$?"
check "... saying what it did" grep -q "removed what vmprobe serve left" "$WORK/uninstall.log"
check "and removes /sys/fs/bpf/vmprobe" test ! -e $PINS
check_eq "and every vmprobe program and hook" "" "$(progs; vmprobe_links)"
"$VMPROBE" uninstall >"$WORK/uninstall.log" 2>&1
check "a second uninstall finds nothing" grep -q "nothing of vmprobe serve was left" "$WORK/uninstall.log"
tap_done

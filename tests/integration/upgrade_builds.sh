#!/bin/bash
# Upgrades and downgrades between really different builds of vmprobe, with
# a stand-in VM (tests/lib/pinvm.sh) whose frames and reads are known
# exactly. Beside this tree's build/vmprobe (A), two more are built from a
# copy of the tree elsewhere (another checkout, as a package build is):
#  - B: another version and revision, the same BPF sources. A -> B and
#    B -> A adopt the programs and counters as they are (the same BPF
#    objects, byte for byte, wherever they were built: the programs are
#    not even replaced); totals equal the tap's counters and the reads,
#    gaps included.
#  - L (Makefile's test-only TEST_UPGRADE_VARIANT: net_slots values carry
#    one more field, the disk programs other instructions): A -> L and
#    L -> A do not adopt the net probe's maps: its pins are removed, said
#    in one log line and by vmprobe_pins_info, and the tap is counted from
#    zero, exactly from then on; the disk probe, whose layout did not
#    change, adopts, its hooks move to the new programs, its reads go on.
# The tap's and the drive's _created stay what they were where their
# counters are adopted, and the tap's is new where it counts from zero.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

WHAT="upgrades between different builds"
tap_require_cmds "$WHAT" bpftool make clang tar
tap_require_root "$WHAT" tun
[ -x "$TAPGUEST" ] || { tap_skip "$WHAT" "$TAPGUEST is not built"; tap_done; exit; }

WORK=$(mktemp -d /tmp/vmprobe-upgb.XXXXXX)
PORT=19602 TAP=vmupb-t0 PINS=/sys/fs/bpf/vmprobe LBUILD=
. "$REPO/tests/lib/pinvm.sh"
A=$VMPROBE SRC=$WORK/src
B=$SRC/build/vmprobe L=$SRC/build-layout/vmprobe
# Versions as vmprobe_build_info says them (A's from scripts/version.sh).
VA=$("$A" --version | awk '{ print $2 }') VB="$(cat "$REPO/VERSION")+upgrade.b" VL="$(cat "$REPO/VERSION")+upgrade.l"
cleanup() {
	[ -n "$LBUILD" ] && kill "$LBUILD" 2>/dev/null && wait "$LBUILD" 2>/dev/null
	pinvm_cleanup
}
trap cleanup EXIT

# The two builds, from a copy of the tree (only vmprobe, -j2): L in the
# background while B builds and the first serve runs.
mkdir -p "$SRC"
tar -C "$REPO" --exclude=./build --exclude=./.git -cf - . | tar -C "$SRC" -xf -
make -C "$SRC" -s -j2 BUILD=build-layout TEST_UPGRADE_VARIANT=1 BUILD_VERSION="$VL" REVISION=upgrade-l \
	build-layout/vmprobe >"$WORK/build-l.log" 2>&1 &
LBUILD=$!
if make -C "$SRC" -s -j2 BUILD_VERSION="$VB" REVISION=upgrade-b build/vmprobe >"$WORK/build-b.log" 2>&1; then
	tap_ok "build B (version $VB) from a copy of the tree"
else
	tap_fail "build B (version $VB) from a copy of the tree" "$(tail -20 "$WORK/build-b.log")"; tap_done; exit
fi
same_objs() { # DIR: the BPF objects in DIR that are byte-identical to A's
	local o
	for o in "$REPO"/build/bpf/*.bpf.o; do cmp -s "$o" "$1/${o##*/}" && basename "$o" .bpf.o; done | xargs
}
all_objs=$(cd "$REPO/build/bpf" && ls -- *.bpf.o | sed 's/\.bpf\.o$//' | xargs)
check_eq "B's BPF objects are A's, byte for byte, though built elsewhere (if not: build/ predates the Makefile's -fdebug-prefix-map; rebuild it)" \
	"$all_objs" "$(same_objs "$SRC/build/bpf")"

pinvm_tap || { tap_fail "a tap for the stand-in VM"; tap_done; exit; }
start_vm
PINVM_YAML=$PINVM_CREATED
# Each serve's first lines: the probes' adoption or removal of pins.
said() { grep -E "(^|[^a-z])(net|disk) probe: (adopting|removing)" "$WORK/vmprobe.log" | sed 's/^/# /'; }
pins_info() { scrape "$WORK/m.txt" && metric "$WORK/m.txt" vmprobe_pins_info "$@"; }
# The programs called PROG that links hold: their FIELD (id; tag, the hash of the instructions).
link_progs() { # PROG FIELD
	python3 - "$1" "$2" <<'PY'
import json, subprocess, sys
progs = {p["id"]: p for p in json.loads(subprocess.check_output(["bpftool", "-j", "prog", "show"]))}
for l in json.loads(subprocess.check_output(["bpftool", "-j", "link", "show"])):
    p = progs.get(l.get("prog_id"), {})
    if p.get("name") == sys.argv[1]:
        print(p[sys.argv[2]])
PY
}
version_of_serve() { scrape "$WORK/m.txt" && grep -o '^vmprobe_build_info{version="[^"]*"' "$WORK/m.txt" | cut -d'"' -f2; }

VMPROBE=$A serve "persist: true" && counted ||
	{ tap_fail "A (persist: true) starts and counts the VM" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
tap_ok "A (persist: true) starts and counts the VM"
stream
exact "A"

# Same layout, another version: adopted as they are, both ways.
adopt() { # FROM TO BIN VERSION SIGNAL: restart from FROM to TO (BIN, VERSION) after SIGNAL
	local from=$1 to=$2 bin=$3 v=$4 sig=$5 p old_id born
	old_id=$(link_progs exit_pread64 id) born="$(created tap) $(created drive)"
	stop "$sig"
	stream
	if VMPROBE=$bin serve "persist: true" && counted; then tap_ok "$from -> $to: $to starts"; else
		tap_fail "$from -> $to: $to starts" "$(cat "$WORK/vmprobe.log")"; fi
	said
	check_eq "$from -> $to: the serve is $to (vmprobe_build_info)" "$v" "$(version_of_serve)"
	for p in net disk; do
		check "$from -> $to: the $p probe adopts $from's programs and counters, as they are" \
			grep -qE "(^|[^a-z])$p probe: adopting the programs and counters of vmprobe [^ ]+ \(pid [0-9]+\)$" "$WORK/vmprobe.log"
		check_eq "$from -> $to: vmprobe_pins_info says so for $p" 1 "$(pins_info probe=$p state=adopted reason=)"
	done
	check_eq "$from -> $to: one program each way on the tap" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
	check_eq "$from -> $to: the pread hook keeps $from's program (the same BPF object)" "$old_id" \
		"$(link_progs exit_pread64 id | xargs)"
	stream
	exact "$from -> $to, the gap included"
	check_eq "$from -> $to: the tap's and the drive's _created are $from's" "$born" "$(created tap) $(created drive)"
}
adopt A B "$B" "$VB" TERM
# (The stamp keeps 31 bytes of a version: a development one may be longer.)
check_eq "B adopted from A's version" 1 "$(pins_info probe=net previous_version="${VA:0:31}")"
adopt B A "$A" "$VA" KILL
check_eq "A adopted from B's version" 1 "$(pins_info probe=net previous_version="$VB")"

# Another layout of the net probe's maps: started clean, and said; the
# disk probe adopts, and its programs are replaced. The tap is quiet when
# the serve starts: counting starts afresh from its counters then.
if wait "$LBUILD"; then tap_ok "build L (version $VL, TEST_UPGRADE_VARIANT) from a copy of the tree"; else
	tap_fail "build L (version $VL, TEST_UPGRADE_VARIANT)" "$(tail -20 "$WORK/build-l.log")"; tap_done; exit; fi
LBUILD=
check_eq "L's BPF objects are A's but net's and disk's" "$(xargs -n1 <<<"$all_objs" | grep -vxE 'net|disk' | xargs)" \
	"$(same_objs "$SRC/build-layout/bpf")"
map_id() { bpftool -j map show pinned "$PINS/$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'; }
value_size() { bpftool -j map show pinned "$PINS/$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["bytes_value"])'; }
relayout() { # FROM TO BIN VERSION SLOT_BYTES: restart from FROM to TO (BIN, VERSION), other net layout
	local from=$1 to=$2 bin=$3 v=$4 old_id old_tag tap_born drive_born
	tap_born=$(created tap) drive_born=$(created drive)
	stop TERM
	old_id=$(map_id net/net_stats) old_tag=$(link_progs exit_pread64 tag)
	stream
	tap_base
	if VMPROBE=$bin serve "persist: true" && counted; then tap_ok "$from -> $to: $to starts"; else
		tap_fail "$from -> $to: $to starts" "$(cat "$WORK/vmprobe.log")"; fi
	said
	check_eq "$from -> $to: the serve is $to (vmprobe_build_info)" "$v" "$(version_of_serve)"
	check_eq "$from -> $to: one log line says the net probe's pins are removed, for their layout" 1 \
		"$(grep -cE "(^|[^a-z])net probe: removing the pins left in $PINS/net by vmprobe [^ ]+ \(pid [0-9]+\): their map layout is not this version's .*; its counters start from zero" \
			"$WORK/vmprobe.log")"
	check_eq "$from -> $to: vmprobe_pins_info says so" 1 "$(pins_info probe=net state=removed reason=layout)"
	check_num "$from -> $to: net_slots holds $to's values ($5 bytes)" "$5" "$(value_size net/net_slots)"
	check "$from -> $to: net_stats is a new map (was id $old_id)" test "$(map_id net/net_stats)" != "$old_id"
	check "$from -> $to: the disk probe adopts, its layout unchanged, and says its programs are replaced" \
		grep -qE "(^|[^a-z])disk probe: adopting the programs and counters of vmprobe [^ ]+ \(pid [0-9]+\); its BPF programs differ from ours and are replaced$" "$WORK/vmprobe.log"
	check_eq "$from -> $to: vmprobe_pins_info says so" 1 "$(pins_info probe=disk state=adopted reason=programs_replaced)"
	check "$from -> $to: the pread hook holds one program, $to's (tag was $old_tag, now $(link_progs exit_pread64 tag | xargs))" \
		test -n "$old_tag" -a "$(link_progs exit_pread64 tag | wc -w)" = 1 -a "$(link_progs exit_pread64 tag)" != "$old_tag"
	check_eq "$from -> $to: one program each way on the tap" "vmprobe_tap_egr vmprobe_tap_ing" "$(progs)"
	check_num "$from -> $to: the tap's frames count from zero" 0 "$(tx)"
	stream
	exact "$from -> $to, the tap from $to's start, the reads all along"
	check_eq "$from -> $to: the drive's _created is $from's" "$drive_born" "$(created drive)"
	check_range "$from -> $to: the tap's is new, from $to's start" \
		"$(metric "$WORK/om.txt" process_start_time_seconds)" 9999999999 "$(created tap)"
	check "$from -> $to: ... after $from's ($tap_born)" test -n "$tap_born" -a "$(created tap)" != "$tap_born"
}
relayout A L "$L" "$VL" 24
relayout L A "$A" "$VA" 16

vmprobe_stop
check "vmprobe uninstall removes what the last serve left" "$VMPROBE" uninstall
check_eq "no vmprobe program is left on the tap" "" "$(progs)"
tap_done

#!/bin/bash
# vmprobe top and hist with real QEMU guests (TCG): a busy one doing disk
# IO and receiving datagrams, an idle one. While `serve` runs they read its
# pinned maps and add no TC filter; hist's bucket counts, as text and as
# JSON, equal the /metrics histogram deltas over the same interval (the
# guest is paused at both edges so nothing happens in between); top -b
# prints one table per interval, top --json one line of the documented
# keys per (fractional) interval; top driven in tmux shows the VMs, changes order on a sort key,
# quits on q and on SIGTERM with the terminal restored. Without serve they
# load their own probes and remove their filters on exit; serve removes its
# pins on exit.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

for need in qemu-system-x86_64 tmux; do
	if ! command -v $need >/dev/null; then
		tap_skip "top and hist with QEMU guests" "$need is not installed"
		tap_done; exit
	fi
done
tap_require_root "top and hist with QEMU guests"

WORK=$(mktemp -d /tmp/vmprobe-top.XXXXXX)
PORT=19585 TAP=vmpt-t0 TAP2=vmpt-t1 TMUX_SOCK=vmprobe-test-$$ UDP_PID=
cleanup() {
	tmux -L "$TMUX_SOCK" kill-server 2>/dev/null
	[ -n "$UDP_PID" ] && kill "$UDP_PID" 2>/dev/null
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	ip link del "$TAP" 2>/dev/null
	ip link del "$TAP2" 2>/dev/null
	umount "$WORK/img" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
for t in "$TAP" "$TAP2"; do
	ip link del "$t" 2>/dev/null
	ip tuntap add dev "$t" mode tap
	sysctl -qw "net.ipv6.conf.$t.disable_ipv6=1"
	ip link set "$t" up
done
ip addr add 10.77.9.1/24 dev "$TAP"
# UDP datagrams to the busy guest: frames into it (rx), and ARP out of it.
cat >"$WORK/udp.py" <<'PY'
import socket, sys, time
n, rate = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
i = 0
while n == 0 or i < n:
    s.sendto(b"x" * 100, ("10.77.9.2", 9))
    i += 1
    time.sleep(1 / rate)
PY
udp_send() { # COUNT (0: forever) PER_SECOND
	python3 "$WORK/udp.py" "$@"
}

guest_build_or_fail
guest_make_initrd "$WORK/busy.initrd" - <<'SH'
echo WORKLOAD-START
while :; do
	dd if=/dev/zero of=/dev/vda bs=4096 count=32 oflag=direct 2>/dev/null
	dd if=/dev/vda of=/dev/null bs=16384 count=16 iflag=direct 2>/dev/null
	sleep 0.2
done
SH
guest_make_initrd "$WORK/idle.initrd" - <<<'sleep 600'
mkdir -p "$WORK/img"
mount -t tmpfs -o size=32m tmpfs "$WORK/img"
truncate -s 16M "$WORK/img/root.img"

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
GUEST_IP=10.77.9.2/24 guest_start "web-busy" "$TAP" "$WORK/busy.initrd" \
	-drive "file=$WORK/img/root.img,format=raw,if=none,id=d0,cache=none,aio=threads" \
	-device virtio-blk-pci,drive=d0,id=root || { tap_fail "busy guest starts"; tap_done; exit; }
BUSY=$GUEST_PID BUSY_QMP=$GUEST_QMP BUSY_LOG=$GUEST_LOG
GUEST_IP= guest_start "idle-vm" "$TAP2" "$WORK/idle.initrd" || { tap_fail "idle guest starts"; tap_done; exit; }
tap_ok "two QEMU guests start"
check "the busy guest runs its workload" wait_for 90 grep -q WORKLOAD-START "$BUSY_LOG"
python3 "$WORK/udp.py" 0 20 &
UDP_PID=$!

filters() { vmprobe_progs "$1" | wc -l; } # TAP: vmprobe's programs on it (ingress + egress)
counted() { [ "$(filters "$TAP")" = 2 ] && [ "$(filters "$TAP2")" = 2 ] && grep -q '"slot":0' /run/vmprobe/state.json; }
check "serve counts both taps" wait_for 10 counted
for m in net/net_stats net/net_ifaces disk/drive_stats disk/dev_stats; do
	check "serve pins $m under /sys/fs/bpf/vmprobe" test -e /sys/fs/bpf/vmprobe/$m
done
check "serve writes its VM table to /run/vmprobe/state.json" grep -q '"name":"web-busy"' /run/vmprobe/state.json

# hist against /metrics: the guest is paused from before the first scrape
# until hist has its baseline, and from before hist's last read until the
# second scrape; the datagrams stop so the tap is quiet too. Pausing makes
# QEMU flush its drives, which a loaded host may take seconds to complete:
# each scrape and hist's last read wait until the VM's counters are still.
kill "$UDP_PID"; wait "$UDP_PID" 2>/dev/null; UDP_PID=
still() { # the VM's latency and frame-size buckets the same 0.5 s apart
	scrape "$WORK/q0.txt" && sleep 0.5 && scrape "$WORK/q1.txt" &&
		cmp -s <(grep 'name="web-busy"' "$WORK/q0.txt" | grep -E '_(latency_seconds|packet_size_bytes)_bucket') \
			<(grep 'name="web-busy"' "$WORK/q1.txt" | grep -E '_(latency_seconds|packet_size_bytes)_bucket')
}
guest_qmp "$BUSY_QMP" stop >/dev/null
wait_for 30 still
scrape "$WORK/s0.txt"
# The same interval twice: as text, and as JSON (-o json; its banner goes to stderr).
"$VMPROBE" hist web-busy -d 12 -n 1 >"$WORK/hist.txt" 2>&1 &
HIST_PID=$!
"$VMPROBE" hist web-busy -d 12 -n 1 -o json >"$WORK/hist.json" 2>"$WORK/hist-json.err" &
HIST_JSON_PID=$!
wait_for 5 grep -q '^Tracing' "$WORK/hist.txt"
wait_for 5 grep -q '^Tracing' "$WORK/hist-json.err"
guest_qmp "$BUSY_QMP" cont >/dev/null
udp_send 10 10
sleep 0.5
guest_qmp "$BUSY_QMP" stop >/dev/null
during=$(filters "$TAP")
# Still before hist's last read (12 s after it started): else the comparison
# below is not of one interval, and says so.
wait_for 10 still
check "the VM's counters were still before hist's last read" kill -0 "$HIST_PID"
wait "$HIST_PID"
check_eq "hist exits 0" 0 "$?"
wait "$HIST_JSON_PID"
check_eq "hist -o json exits 0" 0 "$?"
scrape "$WORK/s1.txt"
guest_qmp "$BUSY_QMP" cont >/dev/null
check_eq "hist while serve runs adds no TC filter (vmprobe filters on the tap)" 2 "$during"
check "hist reads serve's counters" grep -q "^Tracing VM web-busy (vmprobe serve's counters)" "$WORK/hist.txt"
python3 - "$WORK/hist.txt" "$WORK/s0.txt" "$WORK/s1.txt" >"$WORK/cmp.txt" <<'PY'
import re, sys
hist, cur = {}, None
for line in open(sys.argv[1]):
    m = re.match(r'^(drive|tap) (\S+), (\w+) .*: (\d+)$', line)
    if m:
        cur = (m.group(1), m.group(2), m.group(3)); hist[cur] = []; continue
    m = re.match(r'^\s*\S+ -> (\S+)\s*: (\d+)', line)
    if m and cur:
        hist[cur].append((float(m.group(1)), int(m.group(2))))
def buckets(path):
    b = {}
    for line in open(path):
        m = re.match(r'(vmprobe_disk_latency_seconds|vmprobe_network_packet_size_bytes)_bucket\{(.*)\} (\d+)$', line)
        if not m: continue
        l = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if l["name"] != "web-busy": continue
        key = ("drive", l["drive"], l["operation"]) if "drive" in l else ("tap", l["interface"], l["direction"])
        b[(key, l["le"])] = int(m.group(3))
    return b
b0, b1 = buckets(sys.argv[2]), buckets(sys.argv[3])
for (key, le), v in sorted(b1.items()):
    scale = 1e6 if key[0] == "drive" else 1  # hist shows usecs, /metrics seconds
    lim = float("inf") if le == "+Inf" else float(le) * scale
    # hist rounds its edges to 3 decimals; edges are a factor 2 apart.
    got = sum(c for hi, c in hist.get(key, []) if hi <= lim * (1 + 1e-3))
    print("%s %s %s le=%s metrics=%d hist=%d" % (key + (le, v - b0.get((key, le), 0), got)))
PY
bad=$(awk '{ split($5, a, "="); split($6, b, "="); if (a[2] != b[2]) print }' "$WORK/cmp.txt")
check_eq "hist: every bucket equals the /metrics delta over the interval (disk latency, frame sizes)" "" "$bad"
# hist --json: one line, the documented keys, and the same buckets by family and labels.
check_eq "hist -o json prints one line (one interval)" 1 "$(wc -l <"$WORK/hist.json")"
python3 - "$WORK/hist.json" "$WORK/s0.txt" "$WORK/s1.txt" "$TAP" >"$WORK/cmp-json.txt" <<'PY'
import json, re, sys
o = json.loads(open(sys.argv[1]).read())
bad = []
def keys(where, obj, want):
    if set(obj) != set(want): bad.append("%s keys %s" % (where, sorted(obj)))
keys("interval", o, ["time", "interval_seconds", "counters", "vm", "histograms"])
keys("vm", o["vm"], ["name", "namespace", "pid"])
if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", o["time"]): bad.append("time " + o["time"])
if o["counters"] != "serve" or o["vm"]["name"] != "web-busy": bad.append("counters/vm %s" % o)
if not 4 <= o["interval_seconds"] < 30: bad.append("interval_seconds %s" % o["interval_seconds"])
fams = {"vmprobe_disk_latency_seconds": {"drive", "operation"},
        "vmprobe_network_packet_size_bytes": {"interface", "direction"},
        "vmprobe_network_tcp_rtt_seconds": {"interface", "path"}}
got = {}
for h in o["histograms"]:
    keys("histogram", h, ["family", "labels", "count", "buckets"])
    if set(h["labels"]) != fams.get(h["family"]): bad.append("labels %s" % h)
    les = [b["le"] for b in h["buckets"]]
    if les != sorted(les, key=lambda le: float(le)) or any(b["count"] <= 0 for b in h["buckets"]):
        bad.append("buckets %s" % h)
    if sum(b["count"] for b in h["buckets"]) != h["count"]: bad.append("count %s" % h)
    got[(h["family"], tuple(sorted(h["labels"].items())))] = h
def buckets(path):
    b = {}
    for line in open(path):
        m = re.match(r'(vmprobe_\w+)_bucket\{(.*)\} (\d+)$', line)
        if not m or m.group(1) not in fams: continue
        l = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if l.pop("name") != "web-busy": continue
        le = l.pop("le")
        b[(m.group(1), tuple(sorted(l.items())), le)] = int(m.group(3))
    return b
b0, b1 = buckets(sys.argv[2]), buckets(sys.argv[3])
seen = 0
for (fam, labels, le), v in sorted(b1.items()):
    lim = float("inf") if le == "+Inf" else float(le)
    h = got.get((fam, labels))
    cum = sum(b["count"] for b in h["buckets"] if float(b["le"]) <= lim) if h else 0
    if cum != v - b0.get((fam, labels, le), 0):
        bad.append("%s %s le=%s metrics=%d json=%d" % (fam, labels, le, v - b0.get((fam, labels, le), 0), cum))
    seen += 1
for k, h in got.items():
    if h["count"] and (k[0], k[1], "+Inf") not in b1: bad.append("not in /metrics: %s" % (k,))
print("\n".join(bad) if bad else "ok %d buckets" % seen)
PY
check_eq "hist -o json: the documented keys, and every bucket equals the /metrics delta" "" \
	"$(grep -vE '^ok [1-9][0-9]* buckets$' "$WORK/cmp-json.txt")"
check "hist -o json saw the disk writes and the datagrams" python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
c = {(h["family"], tuple(sorted(h["labels"].items()))): h["count"] for h in o["histograms"]}
assert c[("vmprobe_disk_latency_seconds", (("drive", "root"), ("operation", "write")))] > 0
assert c[("vmprobe_network_packet_size_bytes", (("direction", "rx"), ("interface", sys.argv[2])))] > 0
' "$WORK/hist.json" "$TAP"
check "hist saw the workload: disk writes" grep -qE '^drive root write le=\+Inf metrics=[1-9]' "$WORK/cmp.txt"
check "hist saw the workload: disk reads" grep -qE '^drive root read le=\+Inf metrics=[1-9]' "$WORK/cmp.txt"
check "hist saw the datagrams: frames into the guest" grep -qE "^tap $TAP rx le=\+Inf metrics=[1-9]" "$WORK/cmp.txt"
check "hist prints biolatency-style rows in usecs" grep -qE '^ +usecs : count +distribution' "$WORK/hist.txt"
rc=0; "$VMPROBE" hist web-busy --disk nosuch >/dev/null 2>&1 || rc=$?
check_eq "hist on a drive the VM does not have exits 1" 1 "$rc"
rc=0; "$VMPROBE" hist no-such-vm -d 1 >/dev/null 2>&1 || rc=$?
check_eq "hist on an unknown VM exits 1" 1 "$rc"

python3 "$WORK/udp.py" 0 20 &
UDP_PID=$!
"$VMPROBE" top -b -n 2 -d 1 >"$WORK/top.txt" 2>&1 &
TOP_PID=$!
sleep 0.5
during=$(filters "$TAP")
wait "$TOP_PID"
check_eq "top -b -n 2 exits 0" 0 "$?"
check_eq "top while serve runs adds no TC filter" 2 "$during"
check_eq "top -b -n 2 prints two tables" 2 "$(grep -c '^VM ' "$WORK/top.txt")"
check_eq "each table has the busy VM's row" 2 "$(grep -c '^web-busy ' "$WORK/top.txt")"
check_eq "each table has the idle VM's row" 2 "$(grep -c '^idle-vm ' "$WORK/top.txt")"
check "top fits 80 columns" awk 'length > 80 { exit 1 }' "$WORK/top.txt"
# Each column is a pair: RX/TX packets/s, RX/TX bits/s, RD/WR IOPS, ...
pair() { # FILE VM COLUMN HALF
	awk -v vm="$2" -v col="$3" -v half="$4" '$1 == vm { split($col, p, "/"); v = p[half] } END { print v }' "$1"
}
check_range "top: the busy VM's rx packets/s match the 20/s datagrams" 10 60 "$(pair "$WORK/top.txt" web-busy 2 1)"
check_range "top: the busy VM does disk writes" 1 100000 "$(pair "$WORK/top.txt" web-busy 4 2)"
check_eq "top: the idle VM has no traffic" "0/0 0/0" "$(awk '$1 == "idle-vm" { v = $2 " " $3 } END { print v }' "$WORK/top.txt")"

# top --json, with a fractional interval: a line per interval, the documented keys.
rc=0; "$VMPROBE" top --json -n 3 -d 0.5 >"$WORK/top.json" 2>"$WORK/top-json.err" || rc=$?
check_eq "top --json -n 3 -d 0.5 exits 0, nothing on stderr" "0 " "$rc $(cat "$WORK/top-json.err")"
check_eq "top --json prints three lines" 3 "$(wc -l <"$WORK/top.json")"
python3 - "$WORK/top.json" >"$WORK/top-json.txt" <<'PY'
import json, math, re, sys
bad = []
def keys(where, obj, want):
    if set(obj) != set(want): bad.append("%s keys %s" % (where, sorted(obj)))
q = ["p50", "p99"]
for line in open(sys.argv[1]):
    o = json.loads(line)
    keys("interval", o, ["time", "interval_seconds", "counters", "sort", "vms"])
    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", o["time"]): bad.append("time")
    if not 0.5 <= o["interval_seconds"] < 10: bad.append("interval_seconds %s" % o["interval_seconds"])
    if (o["counters"], o["sort"]) != ("serve", "rxbit"): bad.append("counters/sort")
    if [v["name"] for v in o["vms"]] != ["web-busy", "idle-vm"]: bad.append("order %s" % o["vms"])
    for v in o["vms"]:
        keys("vm", v, ["name", "namespace", "pid", "network", "disk"])
        keys("network", v["network"], ["rx_packets_per_second", "tx_packets_per_second",
             "rx_bits_per_second", "tx_bits_per_second", "tcp_rtt_seconds"])
        keys("tcp_rtt_seconds", v["network"]["tcp_rtt_seconds"], ["network", "guest"])
        for p in ("network", "guest"): keys("rtt " + p, v["network"]["tcp_rtt_seconds"][p], q)
        keys("disk", v["disk"], ["read_operations_per_second", "write_operations_per_second",
             "read_bytes_per_second", "write_bytes_per_second", "latency_seconds"])
        keys("latency", v["disk"]["latency_seconds"], q)
        for x in v["disk"]["latency_seconds"].values():
            if x is not None and math.log2(x) != round(math.log2(x)): bad.append("not a power of two: %s" % x)
    busy, idle = o["vms"]
    print("busy_rx_pps %s" % busy["network"]["rx_packets_per_second"])
    if idle["network"]["rx_bits_per_second"] != 0 or idle["disk"]["latency_seconds"]["p99"] is not None:
        bad.append("idle %s" % idle)
print("\n".join(bad) if bad else "ok")
PY
check_eq "top --json: the documented keys; an idle VM's zeros and nulls; p50/p99 powers of two" ok \
	"$(tail -1 "$WORK/top-json.txt")"
check_range "top --json: the busy VM's rx packets/s match the 20/s datagrams (last interval)" 10 60 \
	"$(grep '^busy_rx_pps ' "$WORK/top-json.txt" | tail -1 | cut -d' ' -f2)"

# Full screen in tmux.
tmux -L "$TMUX_SOCK" new-session -d -x 80 -y 24 -s top bash --norc
pane() { tmux -L "$TMUX_SOCK" capture-pane -p -t top; }
pane_has() { pane | grep -q "$1"; }
order() { pane | awk '/^(web-busy|idle-vm) / { printf "%s ", $1 }'; }
tmux -L "$TMUX_SOCK" send-keys -t top "$VMPROBE top -d 1" Enter
check "top in tmux shows the busy VM's row" wait_for 10 pane_has '^web-busy '
check_eq "top sorts by rx bits/s by default: busy first" "web-busy idle-vm " "$(order)"
check "top's header names the sort" pane_has 'sort rxbit'
tmux -L "$TMUX_SOCK" send-keys -t top n
check "key n sorts by name" wait_for 5 pane_has 'sort name'
check_eq "sorted by name: idle-vm before web-busy" "idle-vm web-busy " "$(order)"
tmux -L "$TMUX_SOCK" send-keys -t top w
check "key w sorts by write IOPS" wait_for 5 pane_has 'sort wiops'
tmux -L "$TMUX_SOCK" send-keys -t top '<'
check "key < steps to the previous sort (riops)" wait_for 5 pane_has 'sort riops'
tmux -L "$TMUX_SOCK" send-keys -t top q
check "q quits top (the shell prompt is back)" wait_for 5 bash -c "! tmux -L '$TMUX_SOCK' list-panes -t top -F '#{pane_current_command}' | grep -q vmprobe"
tmux -L "$TMUX_SOCK" send-keys -t top "stty -a >'$WORK/stty.txt'" Enter
check "after q the terminal is restored (icanon echo)" wait_for 5 grep -qE '(^|[ ;])icanon .*[ ;]echo( |;|$)' "$WORK/stty.txt"
rm -f "$WORK/stty.txt"
tmux -L "$TMUX_SOCK" send-keys -t top "clear; $VMPROBE top -d 1" Enter
check "top runs again" wait_for 10 pane_has '^web-busy '
shell=$(tmux -L "$TMUX_SOCK" display-message -p -t top '#{pane_pid}')
kill -TERM "$(pgrep -P "$shell")"
check "SIGTERM ends top (the shell prompt is back)" wait_for 5 bash -c "! pgrep -P $shell >/dev/null"
tmux -L "$TMUX_SOCK" send-keys -t top "stty -a >'$WORK/stty.txt'" Enter
check "after SIGTERM the terminal is restored (icanon echo)" wait_for 5 grep -qE '(^|[ ;])icanon .*[ ;]echo( |;|$)' "$WORK/stty.txt"

# serve gone: pins removed; top and hist bring their own probes and take them away.
vmprobe_stop
check_eq "serve exits 0" 0 "$?"
check "serve removed its pins and state file" \
	bash -c '! test -e /sys/fs/bpf/vmprobe && ! test -e /run/vmprobe/state.json'
check_eq "no vmprobe filter left on the tap" 0 "$(filters "$TAP")"
"$VMPROBE" top -b -n 2 -d 1 >"$WORK/top2.txt" 2>&1 &
TOP_PID=$!
own_filters() { [ "$(filters "$TAP")" = 2 ]; }
check "without serve, top attaches its own filters" wait_for 5 own_filters
wait "$TOP_PID"
check_eq "without serve, top -b -n 2 exits 0" 0 "$?"
check_range "without serve, top sees the datagrams" 10 60 "$(pair "$WORK/top2.txt" web-busy 2 1)"
check_eq "top removed its filters on exit" 0 "$(filters "$TAP")"
"$VMPROBE" hist web-busy --net "$TAP" -d 1 -n 2 >"$WORK/hist2.txt" 2>&1
check_eq "without serve, hist --net exits 0" 0 "$?"
check "without serve, hist uses its own probes" grep -q '(own probes)' "$WORK/hist2.txt"
check_eq "hist --net prints rx and tx per interval (2 intervals)" 4 \
	"$(grep -cE "^tap $TAP, (rx|tx) frame sizes, frames: [1-9]" "$WORK/hist2.txt")"
check_eq "hist removed its filters on exit" 0 "$(filters "$TAP")"

# One vmprobe with filters of its own at a time: a second would remove
# the first's as left by an ended one.
"$VMPROBE" top -b -n 20 -d 1 >"$WORK/top3.txt" 2>&1 &
TOP_PID=$!
check "a top with its own probes runs" wait_for 5 own_filters
rc=0; "$VMPROBE" hist web-busy -d 1 -n 1 >"$WORK/hist3.txt" 2>&1 || rc=$?
check_eq "meanwhile a hist that would load its own probes exits 1" 1 "$rc"
check "and says which vmprobe holds them (pid $TOP_PID)" \
	grep -q "another vmprobe (pid $TOP_PID: $VMPROBE top -b -n 20 -d 1) has probes of its own attached" "$WORK/hist3.txt"
rc=0; timeout 10 "$VMPROBE" serve --listen 127.0.0.1:$((PORT + 1)) >"$WORK/serve3.log" 2>&1 || rc=$?
check_eq "meanwhile serve refuses to start (exit 1)" 1 "$rc"
check "and names the top (pid $TOP_PID) and its command line" \
	grep -q "(pid $TOP_PID: $VMPROBE top -b -n 20 -d 1) has probes of its own attached" "$WORK/serve3.log"
check_eq "the first top's filters are untouched" 2 "$(filters "$TAP")"
kill -TERM "$TOP_PID"; wait "$TOP_PID"
check_eq "top removed its filters on SIGTERM" 0 "$(filters "$TAP")"
"$VMPROBE" hist web-busy --net "$TAP" -d 1 -n 1 >"$WORK/hist4.txt" 2>&1
check_eq "once it ended, hist loads its own probes again" 0 "$?"
tap_done

#!/bin/bash
# End to end with a known network delay: a real QEMU guest (TCG) reaches a
# peer network namespace through tests/tools/delayline, D ms each way
# (tests/lib/delay.sh draws the topology), and vmprobe serves /metrics for
# the guest's tap. Three phases, each scraped before and after:
#   a) the guest opens a connection to the peer: 10 request/response
#      exchanges (6 bytes up, 20000 down);
#   b) the peer opens 5 connections to an echo server in the guest, 5
#      exchanges of 1000 bytes each; the connect times measure the delay;
#   c) the guest opens a bulk connection (200 kB each way) and the delay line
#      drops the 5th data segment of each direction: one retransmission by
#      the guest, one by the peer.
# Ground truth: the peer's connect times (2D), the guest's ping, the delay
# line's deliberate drops, TCP's own counters (/proc/net/snmp) in the guest
# and in the peer namespace, and the tap's statistics.
# vmprobe's TCP families, per phase: connections opened by each side; the
# network-path RTT centred on 2D (its median in 2D's log2 bucket, nothing
# below it); guest-path samples far below 2D; retransmits against each
# end's RetransSegs. `vmprobe top` shows the same medians; a real
# Prometheus computes histogram_quantile per path; promtool is clean.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

for need in qemu-system-x86_64 python3 prometheus promtool; do
	if ! command -v $need >/dev/null; then
		tap_skip "end to end TCP through a delay line" "$need is not installed"
		tap_done; exit
	fi
done
tap_require_root "end to end TCP through a delay line" tun

WORK=$(mktemp -d /tmp/vmprobe-tcp.XXXXXX)
PORT=19587 PROM_PORT=19597 TAP=vmpt-k0 D=20
DELAY_NS=vmprobe-tcp-peer DELAY_BR=vmpbr-k DELAY_TAP_A=vmpt-ka DELAY_TAP_B=vmpt-kb
DELAY_PEER_IP=10.78.0.1/24 PEER=10.78.0.1 GUEST=10.78.0.2
. "$REPO/tests/lib/delay.sh"
PEER_PID= PROM_PID= TOP_PID=
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	[ -n "$TOP_PID" ] && kill "$TOP_PID" 2>/dev/null
	[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
	[ -n "$PEER_PID" ] && kill "$PEER_PID" 2>/dev/null && wait "$PEER_PID" 2>/dev/null
	delay_teardown
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip link del "$TAP" 2>/dev/null

guest_build_or_fail "kernel from Debian's archive"
if [ ! -x "$DELAYLINE" ]; then
	tap_fail "the delay line is built" "missing $DELAYLINE: make build/tests/tools/delayline"
	tap_done; exit
fi

# Phase c's bulk connection is the only one on port 5003: its 5th data
# segment each way is dropped.
if ! delay_setup $D --drop-port 5003 --drop-tcp-data-from-a 5 --drop-tcp-data-from-b 5; then
	tap_fail "delay line between a bridge and netns $DELAY_NS starts" "$(cat "$WORK/delayline.err")"
	tap_done; exit
fi
tap_ok "delay line ($D ms each way) between a bridge and netns $DELAY_NS starts"
ip tuntap add dev "$TAP" mode tap
delay_attach "$TAP"

# The peer: 5001 answers each line N with N bytes; 5003 reads to EOF, then
# sends 200000 bytes. One log line per connection.
cat >"$WORK/peer.py" <<'PY'
import socket, sys, threading

def log(*a):
    print(*a, flush=True)

def reqresp(c):
    n = inb = out = 0
    for line in c.makefile("rb"):
        inb += len(line)
        c.sendall(b"r" * int(line))
        n += 1
        out += int(line)
    c.close()
    log("5001 requests=%d in=%d out=%d" % (n, inb, out))

def bulk(c):
    inb = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        inb += len(b)
    c.sendall(b"s" * 200000)
    c.close()
    log("5003 in=%d out=200000" % inb)

def serve(port, handler):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], port))
    s.listen()
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()

for port, handler in ((5001, reqresp), (5003, bulk)):
    threading.Thread(target=serve, args=(port, handler), daemon=True).start()
log("listening")
threading.Event().wait()
PY
ip netns exec "$DELAY_NS" python3 -u "$WORK/peer.py" $PEER >"$WORK/peer.log" 2>&1 &
PEER_PID=$!
wait_for 5 grep -q listening "$WORK/peer.log" || {
	tap_fail "peer servers start in netns $DELAY_NS" "$(cat "$WORK/peer.log")"
	tap_done; exit
}

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
prometheus_start_tap $PROM_PORT $PORT

# The guest waits at each barrier until the host writes a line to its second
# serial port (/dev/ttyS1, a unix socket on the host), so the host scrapes
# exactly between phases. ttyS1 stays open: input arriving while it is
# closed would be lost. SNMP lines are the guest TCP stack's own counters.
guest_make_initrd "$WORK/initrd" - <<SH
exec 3</dev/ttyS1
go() { echo "VMPROBE-WAIT \$1"; read -r line <&3; echo "VMPROBE-GOT \$1"; }
snmp() {
	awk -v p="\$1" '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) c[\$i] = i; h = 1 }
		else print "SNMP", p, "RetransSegs=" \$c["RetransSegs"], "ActiveOpens=" \$c["ActiveOpens"], "PassiveOpens=" \$c["PassiveOpens"] }' /proc/net/snmp
}
ping -c 1 -W 5 $PEER >/dev/null # ARP through the delay line
ping -c 5 -i 0.2 $PEER | grep round-trip
nc -ll -p 5002 -e /bin/cat &
dd if=/dev/zero of=/tmp/bulk bs=1000 count=200 2>/dev/null
snmp a; go a
i=0
while [ \$i -lt 10 ]; do echo 20000; sleep 0.1; i=\$((i + 1)); done | nc $PEER 5001 >/tmp/a.out
echo "A-BYTES \$(wc -c </tmp/a.out)"
snmp b; go b
snmp c; go c
nc $PEER 5003 </tmp/bulk >/tmp/c.out
echo "C-BYTES \$(wc -c </tmp/c.out)"
snmp end; go end
SH

# barrier NAME: waits until the guest stops at `go NAME`.
barrier() {
	wait_for 60 grep -aq "VMPROBE-WAIT $1" "$GUEST_LOG"
}
# release NAME: lets the guest go on from `go NAME`; resends until it has.
release() {
	local i
	for ((i = 0; i < 5; i++)); do
		python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"go\n"); time.sleep(0.1)' \
			"$WORK/ctl.sock" || return
		wait_for 2 grep -aq "VMPROBE-GOT $1" "$GUEST_LOG" && return
	done
	return 1
}
# Counter FIELD of TCP's /proc/net/snmp in the guest at barrier NAME.
guest_snmp() { # NAME FIELD
	grep -a "^SNMP $1 " "$GUEST_LOG" | grep -o "$2=[0-9]*" | cut -d= -f2
}
peer_snmp() { # FIELD
	ip netns exec "$DELAY_NS" awk -v f="$1" '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 }
		else print $c[f] }' /proc/net/snmp
}
# Scrape at a barrier: /metrics into $WORK/m-NAME.txt, the peer's TCP
# counters into PEER_RETRANS[NAME].
declare -A PEER_RETRANS
snapshot() { # NAME
	scrape "$WORK/m-$1.txt"
	PEER_RETRANS[$1]=$(peer_snmp RetransSegs)
}

GUEST_IP=$GUEST/24 guest_start "tcp delay" "$TAP" "$WORK/initrd" \
	-chardev "socket,id=ctl,path=$WORK/ctl.sock,server=on,wait=off" -serial chardev:ctl ||
	{ tap_fail "QEMU guest starts"; tap_done; exit; }
tap_ok "QEMU guest starts behind the delay line"
lbl=(name="tcp delay" "interface=$TAP")
counted() { scrape && [ -n "$(metric "$WORK/metrics.txt" vmprobe_network_packet_size_bytes_count "${lbl[@]}" direction=tx)" ]; }
check "vmprobe counts the guest's tap" wait_for 5 counted

# vmprobe's TCP families between two scrapes (missing series count as 0).
delta() { # FILE0 FILE1 NAME [LABEL=VALUE...]
	awk -v a="$(metric "$1" "${@:3}")" -v b="$(metric "$2" "${@:3}")" 'BEGIN { print b - a }'
}
# "count=N p50<=X min<=Y max<=Z" of the samples a histogram gained between
# two scrapes: X the upper bound (seconds) of the bucket holding the median,
# Y and Z of the lowest and highest buckets that gained any.
hist_delta() { # FILE0 FILE1 NAME [LABEL=VALUE...]
	python3 - "$@" <<'PY'
import re, sys
f0, f1, name, want = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
lab = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
def buckets(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r'^' + name + r'_bucket\{(.*)\} (\S+)$', line.strip())
        if not m:
            continue
        labels = dict(lab.findall(m.group(1)))
        if all(labels.get(w.split("=", 1)[0]) == w.split("=", 1)[1] for w in want):
            out[float(labels["le"])] = float(m.group(2))
    return out
b0, b1 = buckets(f0), buckets(f1)
d = sorted((le, b1[le] - b0.get(le, 0)) for le in b1)
n = d[-1][1] if d else 0
p50 = next((le for le, c in d if n and c >= n / 2), None)
lo = next((le for le, c in d if c > 0), None)
hi = next((le for i, (le, c) in enumerate(d) if c == n and (i == 0 or d[i - 1][1] < n)), None) if n else None
print("count=%d p50<=%s min<=%s max<=%s" % (n, p50, lo, hi))
PY
}
# One TAP comment line with what vmprobe's TCP families gained in a phase.
tcp_report() { # PHASE FILE0 FILE1
	echo "# phase $1: rtt network $(hist_delta "$2" "$3" vmprobe_network_tcp_rtt_seconds "${lbl[@]}" path=network)," \
		"guest $(hist_delta "$2" "$3" vmprobe_network_tcp_rtt_seconds "${lbl[@]}" path=guest);" \
		"retransmits tx +$(delta "$2" "$3" vmprobe_network_tcp_retransmits_total "${lbl[@]}" direction=tx)" \
		"rx +$(delta "$2" "$3" vmprobe_network_tcp_retransmits_total "${lbl[@]}" direction=rx);" \
		"opened by guest +$(delta "$2" "$3" vmprobe_network_tcp_connections_opened_total "${lbl[@]}" opened_by=guest)" \
		"peer +$(delta "$2" "$3" vmprobe_network_tcp_connections_opened_total "${lbl[@]}" opened_by=peer)"
}
# One field of hist_delta: hd FIELD FILE0 FILE1 PATH
hd() {
	hist_delta "$2" "$3" vmprobe_network_tcp_rtt_seconds "${lbl[@]}" path="$4" |
		grep -o "$1[=<]*[^ ]*" | sed 's/^[a-z0-9]*[=<]*//'
}
# Log2 buckets, powers of two of a second: 2D = 40 ms (and what the ends
# add, to about 55 ms here) lies in (2^-5, 2^-4] s; "far below 2D" is the
# bucket under it at most, <= 2^-5 s.
BUCKET_2D=0.0625 BELOW_2D=0.03125
twoD=$((2 * D))
# Tolerance of a round trip through the delay line: never below 2D (each
# frame is held D ms from the moment it is read), and above by what the
# ends add: the TCG guest's kernel answering, and the delay line and QEMU
# waiting for one of the 2 host cores.
slack=10

# --- the guest's own view of the delay: ping (after an ARP warm-up).
check "the guest reaches the peer through the delay line (ping)" barrier a
rtt=$(grep -ao 'round-trip min/avg/max = [0-9./]*' "$GUEST_LOG" | cut -d= -f2 | cut -d/ -f2)
echo "# guest ping: $(grep -ao 'round-trip min/avg/max = [0-9./]* ms' "$GUEST_LOG")"
check_range "guest ping RTT avg (ms) = 2D=$twoD (+$slack)" $twoD $((twoD + slack)) "$rtt"

# --- a) a connection opened by the guest, 10 request/response exchanges.
snapshot a
release a
check "phase a: the guest's connection completes" barrier b
snapshot b
check_num "phase a: the guest received 10 responses of 20000 bytes" 200000 \
	"$(grep -ao 'A-BYTES [0-9]*' "$GUEST_LOG" | cut -d' ' -f2)"
check "phase a: the peer answered 10 requests" grep -q '^5001 requests=10 in=60 out=200000' "$WORK/peer.log"
check_num "phase a: the guest opened one connection (its ActiveOpens)" 1 \
	$(($(guest_snmp b ActiveOpens) - $(guest_snmp a ActiveOpens)))
tcp_report a "$WORK/m-a.txt" "$WORK/m-b.txt"
# Retransmits against each end's own RetransSegs. From the peer, frames
# reach the tap one segment each (the delay line's tap has no offloads):
# equal. From the guest, a resent range can leave as one GSO frame covering
# several segments: at least one frame when the guest resent, at most its
# segments.
check_retransmits() { # PHASE FILE0 FILE1 GUEST_RT PEER_RT
	local tx rx
	tx=$(delta "$2" "$3" vmprobe_network_tcp_retransmits_total "${lbl[@]}" direction=tx)
	rx=$(delta "$2" "$3" vmprobe_network_tcp_retransmits_total "${lbl[@]}" direction=rx)
	check_range "phase $1: tx retransmits (frames) within the guest's RetransSegs +$4" \
		$(($4 > 0 ? 1 : 0)) "$4" "$tx"
	check_num "phase $1: rx retransmits = the peer's RetransSegs" "$5" "$rx"
}
check_opened() { # PHASE FILE0 FILE1 GUEST PEER
	check_num "phase $1: connections opened by the guest" "$4" \
		"$(delta "$2" "$3" vmprobe_network_tcp_connections_opened_total "${lbl[@]}" opened_by=guest)"
	check_num "phase $1: connections opened by the peer" "$5" \
		"$(delta "$2" "$3" vmprobe_network_tcp_connections_opened_total "${lbl[@]}" opened_by=peer)"
}
A=("$WORK/m-a.txt" "$WORK/m-b.txt")
check_opened a "${A[@]}" 1 0
check_range "phase a: network-path samples, at least one per request" 10 1000 "$(hd count "${A[@]}" network)"
check_eq "phase a: network-path median in 2D's bucket (le=$BUCKET_2D)" $BUCKET_2D "$(hd p50 "${A[@]}" network)"
check_eq "phase a: no network-path sample below 2D's bucket" $BUCKET_2D "$(hd min "${A[@]}" network)"
check_range "phase a: guest-path samples (the handshake's ACK at least)" 1 1000 "$(hd count "${A[@]}" guest)"
check_range "phase a: guest-path median far below 2D (s)" 0 $BELOW_2D "$(hd p50 "${A[@]}" guest)"
check_retransmits a "${A[@]}" $(($(guest_snmp b RetransSegs) - $(guest_snmp a RetransSegs))) \
	$((PEER_RETRANS[b] - PEER_RETRANS[a]))

# --- b) connections opened by the peer to the guest's echo server, with
# `vmprobe top` watching over one second of it.
"$VMPROBE" top -b -n 1 -d 1 >"$WORK/top.txt" 2>&1 &
TOP_PID=$!
ip netns exec "$DELAY_NS" python3 - $GUEST 5002 5 5 1000 >"$WORK/phase-b.txt" 2>&1 <<'PY'
import socket, statistics, sys, time
addr, port, conns, rounds, size = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
connects, exchanges, echoed = [], [], 0
for i in range(conns):
    s = socket.socket()
    s.settimeout(10)
    t = time.monotonic()
    s.connect((addr, port))
    connects.append((time.monotonic() - t) * 1000)
    for r in range(rounds):
        msg = bytes([65 + r]) * size
        t = time.monotonic()
        s.sendall(msg)
        got = b""
        while len(got) < size:
            b = s.recv(size - len(got))
            if not b:
                break
            got += b
        exchanges.append((time.monotonic() - t) * 1000)
        echoed += got == msg
    s.close()
    time.sleep(0.1)
print("connect_ms median=%.2f min=%.2f max=%.2f" % (statistics.median(connects), min(connects), max(connects)))
print("exchange_ms median=%.2f min=%.2f max=%.2f" % (statistics.median(exchanges), min(exchanges), max(exchanges)))
print("echoed count=%d" % echoed)
PY
snapshot c
field() { grep -o "^$1 .*" "$WORK/phase-b.txt" | grep -o "$2=[0-9.]*" | cut -d= -f2; }
echo "# phase b: $(tr '\n' ' ' <"$WORK/phase-b.txt")"
check_num "phase b: the guest echoed 25 messages of 1000 bytes on 5 connections" 25 "$(field echoed count)"
check_range "phase b: median TCP connect time from the peer (ms) = 2D=$twoD (+$slack)" \
	$twoD $((twoD + slack)) "$(field connect_ms median)"
check_range "phase b: no connect faster than 2D (ms)" $twoD 1000 "$(field connect_ms min)"
release b
check "the guest goes on after phase b" barrier c
check_num "phase b: the guest accepted 5 connections (its PassiveOpens)" 5 \
	$(($(guest_snmp c PassiveOpens) - $(guest_snmp b PassiveOpens)))
tcp_report b "$WORK/m-b.txt" "$WORK/m-c.txt"
B=("$WORK/m-b.txt" "$WORK/m-c.txt")
check_opened b "${B[@]}" 0 5
# The guest's answers: its kernel's SYN-ACKs and ACKs, busybox nc and cat
# under TCG for the echoes; all far below the 40 ms of the path.
check_range "phase b: guest-path samples, at least one per handshake" 5 1000 "$(hd count "${B[@]}" guest)"
check_range "phase b: every guest-path sample far below 2D (highest bucket, s)" 0 $BELOW_2D "$(hd max "${B[@]}" guest)"
check_range "phase b: network-path samples, at least one per handshake" 5 1000 "$(hd count "${B[@]}" network)"
check_eq "phase b: network-path median in 2D's bucket (le=$BUCKET_2D)" $BUCKET_2D "$(hd p50 "${B[@]}" network)"
check_eq "phase b: no network-path sample below 2D's bucket" $BUCKET_2D "$(hd min "${B[@]}" network)"
check_retransmits b "${B[@]}" $(($(guest_snmp c RetransSegs) - $(guest_snmp b RetransSegs))) \
	$((PEER_RETRANS[c] - PEER_RETRANS[b]))
wait "$TOP_PID"
# top's columns are fixed width (the name has a space): NET50/99 is 61-69.
toprow=$(grep -a '^tcp delay' "$WORK/top.txt")
echo "# top: $toprow"
check_eq "top: network-path RTT p50 is 2D's bucket edge (62.5 ms)" 62m "$(cut -c61-69 <<<"$toprow" | tr -d ' ' | cut -d/ -f1)"
check "top: guest-path RTT p50 is far below 2D" bash -c "[[ '$(cut -c71-79 <<<"$toprow" | tr -d ' ' | cut -d/ -f1)' =~ ^([0-9]+u|1m|2m|4m|8m|17m)$ ]]"

# --- c) a bulk connection opened by the guest; the delay line drops the
# 5th data segment each way.
release c
check "phase c: the bulk transfer completes" barrier end
snapshot end
check_num "phase c: the guest received 200000 bytes" 200000 \
	"$(grep -ao 'C-BYTES [0-9]*' "$GUEST_LOG" | cut -d' ' -f2)"
check "phase c: the peer received 200000 bytes" grep -q '^5003 in=200000 out=200000' "$WORK/peer.log"
check_num "phase c: the delay line dropped one guest data segment (A->B)" 1 "$(delay_counter 'A->B' dropped_on_purpose)"
check_num "phase c: the delay line dropped one peer data segment (B->A)" 1 "$(delay_counter 'B->A' dropped_on_purpose)"
sed 's/^/# /' "$WORK/delayline.err"
guest_rt=$(($(guest_snmp end RetransSegs) - $(guest_snmp c RetransSegs)))
peer_rt=$((PEER_RETRANS[end] - PEER_RETRANS[c]))
check_range "phase c: the guest retransmitted (RetransSegs +$guest_rt)" 1 100 "$guest_rt"
check_range "phase c: the peer retransmitted (RetransSegs +$peer_rt)" 1 100 "$peer_rt"
echo "# retransmissions in phases a, b (guest, peer): " \
	"$(($(guest_snmp c RetransSegs) - $(guest_snmp a RetransSegs)))," \
	"$((PEER_RETRANS[c] - PEER_RETRANS[a]))"
tcp_report c "$WORK/m-c.txt" "$WORK/m-end.txt"
C=("$WORK/m-c.txt" "$WORK/m-end.txt")
check_opened c "${C[@]}" 1 0
check_retransmits c "${C[@]}" "$guest_rt" "$peer_rt"
check_eq "phase c: network-path median in 2D's bucket (le=$BUCKET_2D)" $BUCKET_2D "$(hd p50 "${C[@]}" network)"

# --- the packet counters still match the tap's own, with TCP in GSO frames.
if scrape_with_tap $TAP "$WORK/final.txt"; then tap_ok "the tap stays quiet for a scrape"; else tap_fail "the tap stays quiet for a scrape"; fi
check_tap_totals "" "$WORK/final.txt" "tcp delay" $TAP
check "promtool check metrics is clean" bash -c "promtool check metrics <'$WORK/final.txt'"
# Prometheus scrapes every second: let it take the final counts, then ask
# for the median of all of the run's samples per path.
sleep 2
q50() { promql "histogram_quantile(0.5, sum by (path, le) (vmprobe_network_tcp_rtt_seconds_bucket{interface=\"$TAP\", path=\"$1\"}))"; }
check_range "Prometheus: histogram_quantile(0.5) of the network path lies in 2D's bucket" \
	$BELOW_2D $BUCKET_2D "$(q50 network)"
check_range "Prometheus: histogram_quantile(0.5) of the guest path is far below 2D" \
	0 $BELOW_2D "$(q50 guest)"
check_num "the delay line lost no frame to overflow" 0 \
	"$(($(delay_counter 'A->B' overflow) + $(delay_counter 'B->A' overflow)))"

release end
rc=0; guest_wait_done "$GUEST_LOG" 30 || rc=$?
check_num "the guest workload ends cleanly" 0 "$rc"
tap_done

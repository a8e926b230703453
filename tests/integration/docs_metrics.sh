#!/bin/bash
# The README's metric table is true to the code: it is what `vmprobe
# metrics --markdown` prints, and it matches what a real `vmprobe serve`
# exposes on /metrics with a stand-in VM (a tap, a drive, a TCP socket of
# QEMU's own, a vCPU thread) that has traffic, disk reads, drops, host TCP
# segments and vCPU waits, the vCPU probe, BPF run-time stats and the
# families off by default on: the same families both ways, each with the
# README's type and help text (less the table's "Off by default" note), every sample's labels among the README's,
# a sample of every family, and the VM's name on every per-VM family.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

readme_table=$(sed -n '/^<!-- vmprobe metrics --markdown -->$/,/^<!-- end of vmprobe metrics --markdown -->$/p' \
	"$REPO/README.md" | sed '1d;$d')
check_eq "README's metric table is vmprobe metrics --markdown" "$("$VMPROBE" metrics --markdown)" "$readme_table"

tap_require_root "the README's metric table against a live /metrics" tun
WORK=$(mktemp -d /tmp/vmprobe-docs.XXXXXX)
PORT=19586 TCP_PORT=19587 TAP=vmpt-m0 GUEST= SERVER=
STATS=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
	[ -n "$GUEST" ] && kill -CONT "$GUEST" 2>/dev/null && kill "$GUEST" 2>/dev/null
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
	vmprobe_stop >/dev/null 2>&1
	sysctl -qw kernel.bpf_stats_enabled="$STATS"
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null
ip tuntap add dev "$TAP" mode tap
sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=1"
ip link set "$TAP" up
sysctl -qw kernel.bpf_stats_enabled=1
truncate -s 1M "$WORK/d0.img"

vmprobe_start $PORT "vcpu:
  enabled: true
exposition:
  enabled_families: [$("$VMPROBE" metrics | grep 'Off by default' | cut -d' ' -f1 | paste -sd,)]" || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
# A peer of QEMU's TCP socket (as a migration or NBD peer would be) that
# sends a segment every 0.1 s.
python3 - "$TCP_PORT" >"$WORK/peer.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
while True:
    c.send(b"x" * 100); time.sleep(0.1)
PY
SERVER=$!
check "the TCP peer listens" wait_for 10 grep -q listening "$WORK/peer.log"
QEMU=$(tapguest_dir)
# The stand-in guest gets its TCP socket as fd 3, across exec, as QEMU holds one.
(exec 3<>"/dev/tcp/127.0.0.1/$TCP_PORT" && exec "$QEMU" -name guest=docs-vm,debug-threads=on -uuid 00000000-0000-0000-0000-00000000d0c5 \
	-netdev tap,id=n0,ifname="$TAP" -device virtio-net-pci,netdev=n0,id=net0 \
	-drive "file=$WORK/d0.img,format=raw,if=none,id=d0,cache=none,aio=threads" \
	-device virtio-blk-pci,drive=d0,id=disk0) >"$WORK/guest.log" 2>&1 &
GUEST=$!
has() { scrape && [ -n "$(metric "$WORK/metrics.txt" "$@")" ]; }
check "serve counts the stand-in's tap" wait_for 10 has vmprobe_network_packets_total name=docs-vm direction=rx
# Disk reads (SIGUSR2: the stand-in reads its drive as aio=threads does);
# frames into a guest that stopped draining its tap: FULL_RING drops.
kill -USR2 "$GUEST"
kill -STOP "$GUEST"
"$TAPGUEST" inject "$TAP" 1500 100 >/dev/null
kill -CONT "$GUEST"
check "the stand-in's drive is read" wait_for 10 has vmprobe_disk_operations_total name=docs-vm operation=read
check "the stand-in's tap dropped frames" wait_for 10 has vmprobe_network_drops_total name=docs-vm direction=rx
check "the stand-in's TCP socket gets samples" wait_for 30 has vmprobe_host_tcp_srtt_seconds_count name=docs-vm
check "BPF run-time stats are exported" wait_for 10 has vmprobe_bpf_program_runs_total
check "the stand-in's vCPU thread is measured" wait_for 10 has vmprobe_vcpu_wait_seconds_count name=docs-vm
scrape

# What /metrics has against the README's table, one finding a line.
python3 - "$REPO/README.md" "$WORK/metrics.txt" docs-vm >"$WORK/cmp.txt" <<'PY'
import re, sys
readme, scrape, vm = sys.argv[1], sys.argv[2], sys.argv[3]
table, inside = {}, False
for line in open(readme, encoding="utf-8"):
    line = line.rstrip("\n")
    if line == "<!-- vmprobe metrics --markdown -->": inside = True; continue
    if line == "<!-- end of vmprobe metrics --markdown -->": break
    m = re.match(r"^\| `([a-z_:]+)` \| (\w+) \| `?([a-z_,]*)`? \| (.*) \|$", line)
    if inside and m:
        table[m.group(1)] = (m.group(2), set(filter(None, m.group(3).split(","))), m.group(4))
types, helps, samples = {}, {}, {}
unesc = lambda s: re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), s)
lab = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
for line in open(scrape, encoding="utf-8"):
    line = line.rstrip("\n")
    m = re.match(r"^# (TYPE|HELP) (\S+) (.*)$", line)
    if m:
        (types if m.group(1) == "TYPE" else helps)[m.group(2)] = m.group(3)
        continue
    m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? \S+", line)
    if not m:
        continue
    name = m.group(1)
    fam = next((name[:-len(s)] for s in ("_bucket", "_sum", "_count", "_created")
                if name.endswith(s) and types.get(name[:-len(s)]) == "histogram"), name)
    samples.setdefault(fam, []).append(dict(lab.findall(m.group(3) or "")))
for f in sorted(set(types) - set(table)): print("undocumented", f)
for f in sorted(set(table) - set(types)): print("not-exposed", f)
for f in sorted(set(table) & set(types)):
    typ, labels, meaning = table[f]
    if typ != types[f]: print("type", f, "README", typ, "/metrics", types[f])
    off = " Off by default (exposition.enabled_families)."
    if meaning.removesuffix(off) != unesc(helps.get(f, "")): print("help", f)
    if not samples.get(f): print("no-sample", f)
    for s in samples.get(f, []):
        extra = set(s) - labels - {"le"}
        if extra: print("labels", f, ",".join(sorted(extra)))
    if "name" in labels and not any(s.get("name") == vm for s in samples.get(f, [])):
        print("not-for-vm", f)
PY
for what in "undocumented:every family /metrics exposes is in the README's table" \
	"not-exposed:every family in the README's table is exposed" \
	"type:each family's type is the README's" "help:each family's help text is the README's" \
	"no-sample:each family has samples" "labels:each sample's labels are among the README's" \
	"not-for-vm:each per-VM family has the stand-in VM's samples"; do
	check_eq "${what#*:}" "" "$(grep "^${what%%:*} " "$WORK/cmp.txt" | sort -u)"
done
check_num "the table says which families are off by default: the 4 counters a histogram repeats" 4 \
	"$(grep -c 'Off by default (exposition.enabled_families)' <<<"$readme_table")"
check "the comparison saw the table and the scrape" test "$(grep -c '^# TYPE' "$WORK/metrics.txt")" -gt 40
tap_done

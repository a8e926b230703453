#!/bin/bash
# vmprobe beside prometheus-libvirt-exporter (Debian 12's, 0.2.0) on the
# same libvirt domains, in the same run: a private libvirtd
# (tests/lib/libvirt.sh) runs DOMS domains (QEMU under TCG, 128 MiB, one
# vCPU), each with two virtio disks (raw images on tmpfs, cache=none, one
# aio=threads and one io_uring) and a tap. Each guest writes and reads both
# disks, pings the host and fetches a page from it over TCP, then idles:
# both exporters then see every series they will have, and no guest keeps
# a CPU of this 2-CPU host busy while they are scraped.
#
# bench/exporters.py then scrapes both, alternating, with the Accept
# headers of Prometheus 2.42 with and without native histograms (gzip) and
# as plain text: scrape time, bytes, and series per domain. Twice: vmprobe
# with its default configuration (every latency and size distribution, but
# not the counters that repeat a histogram's _count and _sum), and with
# those counters turned on. Goals (issue 17): vmprobe's scrape time <=
# 0.05x the exporter's; with native histograms and the default budget,
# series per VM <= 2x the exporter's.
#
# `make bench-libvirt` (root; about 1 minute once the test guest is
# built). DOMS=N changes the number of domains, ROUNDS=N the scrapes of
# each kind.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DOMS=${DOMS:-6} ROUNDS=${ROUNDS:-30}
VM_PORT=19631 EX_PORT=19632 WEB_PORT=19633

EXPORTER=/usr/bin/prometheus-libvirt-exporter
[ -x "$EXPORTER" ] || { echo "# libvirt bench skipped: $EXPORTER is not installed (make test-deps)"; exit 0; }
. "$REPO/tests/lib/guest.sh"
. "$REPO/tests/lib/libvirt.sh"
if ! why=$(libvirt_require 2>&1); then
	echo "# libvirt bench skipped: $why"
	exit 0
fi

WORK=$(mktemp -d /tmp/vmprobe-bench-libvirt.XXXXXX)
PROBE= EXP= WEB=
stop_probe() {
	[ -z "$PROBE" ] || { kill -INT "$PROBE"; wait "$PROBE" 2>/dev/null || true; PROBE=; }
}
cleanup() {
	set +e # everything is undone, whatever fails
	stop_probe
	[ -z "$EXP" ] || { kill "$EXP"; wait "$EXP" 2>/dev/null || true; }
	[ -z "$WEB" ] || { kill "$WEB"; wait "$WEB" 2>/dev/null || true; }
	libvirt_stop >/dev/null 2>&1
	for ((i = 0; i < DOMS; i++)); do ip link del "vmpb-lv$i" 2>/dev/null || true; done
	umount "$WORK/img" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# until SECS WHAT CMD...: CMD (retried) within SECS, else the bench fails naming WHAT.
until_ok() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do "${@:3}" && return 0; sleep 0.1; done
	echo "bench: $2 (within $1 s)" >&2
	exit 1
}

guest_build >"$WORK/build.log" 2>&1 || { echo "bench: building the guest failed:" >&2; tail -5 "$WORK/build.log" >&2; exit 1; }
mkdir -p "$WORK/img" "$WORK/www"
mount -t tmpfs -o size=$((DOMS * 40))m tmpfs "$WORK/img"
head -c 200000 /dev/urandom >"$WORK/www/page"
python3 -m http.server -d "$WORK/www" -b 0.0.0.0 $WEB_PORT >/dev/null 2>&1 &
WEB=$!

guest_make_initrd "$WORK/initrd" - <<SH
for r in 1 2 3; do
	dd if=/dev/zero of=/dev/vda bs=4096 count=64 oflag=direct 2>/dev/null
	dd if=/dev/vda of=/dev/null bs=65536 count=16 iflag=direct 2>/dev/null
	dd if=/dev/zero of=/dev/vdb bs=16384 count=32 oflag=direct conv=fsync 2>/dev/null
	dd if=/dev/vdb of=/dev/null bs=4096 count=64 iflag=direct 2>/dev/null
	gw=\$(ip -4 addr show eth0 | sed -n 's|.*inet \([0-9.]*\)\.2/.*|\1.1|p')
	ping -c 3 -W 2 "\$gw" >/dev/null 2>&1
	wget -q -O /dev/null "http://\$gw:$WEB_PORT/page"
done
echo PHASE-DONE
sleep 3600
SH
libvirt_start "$WORK/lv" >"$WORK/libvirt.log" 2>&1 || { echo "bench: libvirtd does not start:" >&2; tail -5 "$WORK/libvirt.log" >&2; exit 1; }

NAMES=() LOGS=()
for ((i = 0; i < DOMS; i++)); do
	tap=vmpb-lv$i
	ip link del "$tap" 2>/dev/null || true
	guest_tap_add "$tap"
	ip addr add "10.81.$i.1/24" dev "$tap"
	truncate -s 16M "$WORK/img/d$i-a.raw" "$WORK/img/d$i-b.raw"
	disks="<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none' io='threads'/>
<source file='$WORK/img/d$i-a.raw'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none' io='io_uring'/>
<source file='$WORK/img/d$i-b.raw'/><target dev='vdb' bus='virtio'/></disk>"
	GUEST_MEM=128 GUEST_IP="10.81.$i.2/24" \
		libvirt_define_guest "bench-lv$i" "$tap" "$GUEST_KERNEL" "$WORK/initrd" "$disks" \
		>"$WORK/define$i.log" 2>&1 ||
		{ echo "bench: domain bench-lv$i does not start:" >&2; tail -5 "$WORK/define$i.log" >&2; exit 1; }
	NAMES+=("$LV_DOM") LOGS+=("$LV_LOG")
done

"$EXPORTER" --libvirt.uri="$LV_URI" --web.listen-address="127.0.0.1:$EX_PORT" >"$WORK/exporter.log" 2>&1 &
EXP=$!

# vmprobe with CONFIG's extra YAML; returns when every domain's drives and tap are measured.
start_probe() {
	printf 'listen: "127.0.0.1:%s"\n%s\n' $VM_PORT "$1" >"$WORK/vmprobe.yaml"
	"$REPO/build/vmprobe" serve -c "$WORK/vmprobe.yaml" >"$WORK/vmprobe.log" 2>&1 &
	PROBE=$!
	until_ok 60 "vmprobe measures every domain's drives and tap (see $WORK/vmprobe.log)" all_measured
}
all_measured() {
	local n
	n=$(curl -sf "http://127.0.0.1:$VM_PORT/metrics" |
		grep -cE '^vmprobe_(drive|interface)_info\{name="bench-lv[0-9]+".*measured="true"') || return 1
	[ "$n" -eq $((DOMS * 3)) ]
}
all_done() {
	local l
	for l in "${LOGS[@]}"; do grep -q PHASE-DONE "$l" || return 1; done
}
exporter_up() {
	[ "$(curl -sf "http://127.0.0.1:$EX_PORT/metrics" | grep -o 'domain="bench-lv[0-9]*"' | sort -u | wc -l)" -eq "$DOMS" ]
}

start_probe ""
until_ok 600 "every guest ends its workload" all_done
until_ok 30 "the exporter reports every domain (see $WORK/exporter.log)" exporter_up
echo "# libvirt: $DOMS domains (TCG, 128 MiB, 2 disks and a tap each) under a private libvirtd," \
	"$(nproc) CPUs; prometheus-libvirt-exporter $(dpkg-query -W -f='${Version}' prometheus-libvirt-exporter)"
python3 "$REPO/bench/exporters.py" "$ROUNDS" default "http://127.0.0.1:$VM_PORT/metrics" \
	"http://127.0.0.1:$EX_PORT/metrics" "${NAMES[@]}" | tee "$WORK/default.out"
stop_probe
start_probe "exposition:
  enabled_families: [vmprobe_disk_operations_total, vmprobe_disk_bytes_total,
                     vmprobe_network_packets_total, vmprobe_network_bytes_total]"
python3 "$REPO/bench/exporters.py" "$ROUNDS" repeated "http://127.0.0.1:$VM_PORT/metrics" \
	"http://127.0.0.1:$EX_PORT/metrics" "${NAMES[@]}" | tee "$WORK/repeated.out"

# The goals.
cat "$WORK/default.out" "$WORK/repeated.out" | python3 -c '
import sys
v = {l.split()[1]: float(l.split()[2]) for l in sys.stdin if l.startswith("BENCH ")}
def goal(what, key, limit):
    x = v[key]
    print("# goal %s <= %g: %.3f, %s" % (what, limit, x, "met" if x <= limit else "NOT met"))
for style in ("prom", "prom_native", "text"):
    goal("scrape time vmprobe/exporter, default configuration, Accept %s" % style,
         "libvirt_default_scrape_time_vmprobe_over_exporter_" + style, 0.05)
goal("series per VM vmprobe/exporter, default budget, native histograms",
     "libvirt_default_series_per_vm_vmprobe_native_over_exporter", 2)
print("# series per VM vmprobe/exporter with the repeated counters on (enabled_families), native histograms: %.3f"
      % v["libvirt_repeated_series_per_vm_vmprobe_native_over_exporter"])
'

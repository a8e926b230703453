#!/bin/bash
# Regenerates the real seeds of the fuzz corpora (tests/fuzz/corpus/NAME/)
# from this host, as the parsers meet them: the /proc files of real QEMU
# processes (one started here with taps, -drive, JSON -blockdev and
# -device, an -add-fd fd set and qcow2 chains; one started by a private
# libvirtd, which passes its tap as an fd, before and after a disk and a
# NIC are hot-plugged), libvirt's status XML of that domain, the qcow2
# images' headers, and the HTTP requests curl, wget and Prometheus 2.42
# send (recorded by a listener standing in for vmprobe). Seeds that come
# from files in the tree (config/default.yaml, tests/fixtures) are copied
# by seed_fixtures below. What no program here can give (a KubeVirt pod's
# cgroup path, exporter-toolkit's web configurations) is written by hand
# in the corpus, after the documented formats, and left alone here.
#
# Usage: tests/fuzz/seed.sh [fixtures|qemu|libvirt|http|proc_name ...]
# (default: all). Root; QEMU, qemu-img, libvirt (tests/lib/libvirt.sh),
# prometheus, curl, wget. It starts QEMU, libvirtd, taps and listens on
# ports: run it under flock /tmp/vmprobe-itest.lock. Files it writes are
# overwritten in place.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
. tests/lib/guest.sh
. tests/lib/libvirt.sh

C=tests/fuzz/corpus
W=$(mktemp -d /tmp/vmprobe-seed.XXXXXX)
TAP=vmfz-t0 LVTAP=vmfz-t1 HOTTAP=vmfz-t2 PORT=19631 PROM_PORT=19632
QEMU_PID=
die() { echo "seed.sh: $*" >&2; exit 1; }
cleanup() {
	[ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null && wait "$QEMU_PID" 2>/dev/null
	libvirt_stop >/dev/null 2>&1
	jobs -p | xargs -r kill 2>/dev/null
	wait 2>/dev/null
	for t in $TAP $LVTAP $HOTTAP; do ip link del "$t" 2>/dev/null; done
	rm -rf "$W"
	return 0
}
trap cleanup EXIT
# The taps QEMU and libvirt are given (made once, for the parts that need them).
taps_up() {
	local t
	for t in $TAP $LVTAP $HOTTAP; do
		[ -e /sys/class/net/$t ] && continue
		ip tuntap add dev "$t" mode tap && ip link set "$t" up || die "cannot make tap $t"
	done
}
for t in $TAP $LVTAP $HOTTAP; do ip link del "$t" 2>/dev/null; done
mkdir -p $C/{cmdline,fdinfo,identity,stat,status,libvirt,qcow2,http,negotiate,config}

# The parsers' inputs already in the tree.
fixtures_seeds() {
	local f
	cp config/default.yaml $C/config/default.yaml
	for f in tests/fixtures/cmdline/*.txt; do
		tr '\n' '\0' <"$f" >"$C/cmdline/fixture-$(basename "$f" .txt)"
	done
	for f in tests/fixtures/fdinfo/* tests/fixtures/proc/4242/fdinfo/*; do
		cp "$f" "$C/fdinfo/fixture-$(basename "$(dirname "$f")")-$(basename "$f")"
	done
	cp tests/fixtures/libvirt/web01.xml $C/libvirt/fixture-web01.xml
}

# proc_seeds PID WHAT NAME: cmdline, stat, status, cgroup (after the VM's
# name and a NUL) and the fdinfo of its tun fds, image fds (with QEMU's
# locks) and of one eventfd.
proc_seeds() {
	local pid=$1 what=$2 name=$3 fd link kind eventfd=
	cp /proc/$pid/cmdline "$C/cmdline/$what"
	cp /proc/$pid/stat "$C/stat/$what"
	cp /proc/$pid/status "$C/status/$what"
	{ printf '%s\0' "$name"; cat /proc/$pid/cgroup; } >"$C/identity/$what"
	for fd in /proc/$pid/fd/*; do
		link=$(readlink "$fd" 2>/dev/null) || continue
		case $link in
		/dev/net/tun) kind=tun ;;
		*.qcow2 | *.raw) kind=image-$(basename "$link") ;;
		anon_inode:\[eventfd\]) kind=eventfd; [ -n "$eventfd" ] && continue; eventfd=1 ;;
		*) continue ;;
		esac
		cp "/proc/$pid/fdinfo/${fd##*/}" "$C/fdinfo/$what-$kind-fd${fd##*/}"
	done
}

# A QEMU paused before its guest runs (-S): it has opened every drive and
# tap by then. Its command line is written as libvirt and hand-written
# scripts write them: JSON and key=value, escaped commas, an fd set.
qemu_seeds() {
	taps_up
	qemu-img create -q -f qcow2 "$W/base.qcow2" 16M &&
		(cd "$W" && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2) &&
		qemu-img create -q -f qcow2 -b "$W/top.qcow2" -F qcow2 "$W/snap.qcow2" &&
		qemu-img create -q -f raw "$W/data,1.raw" 8M &&
		qemu-img create -q -f raw "$W/fdset.raw" 8M || die "qemu-img failed"
	: >"$W/cd.raw"
	printf 'seed' >"$W/key"
	qemu-system-x86_64 -name guest=seed-vm,debug-threads=on -S -accel tcg -machine pc \
		-m 64 -nodefaults -display none -no-user-config \
		-uuid 3a1c2f4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b -pidfile "$W/qemu.pid" \
		-object "{\"qom-type\":\"secret\",\"id\":\"masterKey0\",\"format\":\"raw\",\"file\":\"$W/key\"}" \
		-netdev tap,id=hostnet0,ifname=$TAP,script=no,downscript=no \
		-device virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:12:34:56 \
		-blockdev "{\"driver\":\"file\",\"filename\":\"$W/snap.qcow2\",\"node-name\":\"libvirt-1-storage\",\"aio\":\"io_uring\",\"auto-read-only\":true,\"discard\":\"unmap\"}" \
		-blockdev '{"node-name":"libvirt-1-format","read-only":false,"driver":"qcow2","file":"libvirt-1-storage"}' \
		-device '{"driver":"virtio-blk-pci","drive":"libvirt-1-format","id":"ua-rootdisk","bootindex":1}' \
		-drive "file=$W/data,,1.raw,format=raw,if=none,id=drive-data,cache=none,aio=threads" \
		-device virtio-blk-pci,drive=drive-data,id=data \
		-add-fd fd=9,set=3,opaque=seed-fdset -add-fd fd=10,set=3 \
		-drive file=/dev/fdset/3,format=raw,if=none,id=fdsetdisk \
		-device virtio-blk-pci,drive=fdsetdisk,id=fdsetdisk \
		-drive "file=$W/cd.raw,format=raw,media=cdrom,readonly=on,if=ide" \
		9<>"$W/fdset.raw" 10<"$W/fdset.raw" &
	QEMU_PID=$!
	for _ in $(seq 100); do [ -s "$W/qemu.pid" ] && break; sleep 0.1; done
	kill -0 "$QEMU_PID" || { echo "QEMU did not start" >&2; exit 1; }
	sleep 1
	proc_seeds "$QEMU_PID" qemu-direct seed-vm
	kill "$QEMU_PID"
	wait "$QEMU_PID" 2>/dev/null || true
	QEMU_PID=
	# A header, its backing name and what follows up to 4 KiB.
	head -c 4096 "$W/snap.qcow2" >$C/qcow2/backing-absolute
	head -c 4096 "$W/top.qcow2" >$C/qcow2/backing-relative
	head -c 4096 "$W/base.qcow2" >$C/qcow2/no-backing
}

# A libvirt domain (TCG, a real guest kernel idling), its status XML and
# QEMU's /proc files as libvirt 9.0 starts it, then with a disk and a NIC
# hot-plugged.
libvirt_seeds() {
	local xml
	taps_up
	guest_build >"$W/build.log" 2>&1 || die "guest_build failed: $(tail -3 "$W/build.log")"
	guest_make_initrd "$W/initrd" - <<<'sleep 600' || die "guest_make_initrd failed"
	libvirt_start "$W/lv" >"$W/lv.log" 2>&1 || die "libvirt_start failed: $(tail -3 "$W/lv.log")"
	qemu-img create -q -f qcow2 "$W/lv-base.qcow2" 16M &&
		qemu-img create -q -f qcow2 -b "$W/lv-base.qcow2" -F qcow2 "$W/lv-root.qcow2" &&
		qemu-img create -q -f raw "$W/lv-hot.raw" 8M || die "qemu-img failed"
	xml="<disk type='file' device='disk'><driver name='qemu' type='qcow2' io='native' cache='none'/>
	<source file='$W/lv-root.qcow2'/><target dev='vda' bus='virtio'/><alias name='ua-root'/></disk>"
	GUEST_IP= libvirt_define_guest seed-lv "$LVTAP" "$GUEST_KERNEL" "$W/initrd" "$xml" \
		>"$W/define.log" 2>&1 || die "libvirt_define_guest failed: $(tail -3 "$W/define.log")"
	sleep 1
	cp "$LV_XML" $C/libvirt/domstatus
	proc_seeds "$LV_PID" libvirt seed-lv
	$VIRSH attach-disk seed-lv "$W/lv-hot.raw" vdb --live --targetbus virtio --driver qemu \
		--subdriver raw --cache none >/dev/null || die "attach-disk failed"
	libvirt_nic_xml "$HOTTAP" 52:54:00:fe:dc:ba >"$W/nic.xml"
	$VIRSH attach-device seed-lv "$W/nic.xml" --live >/dev/null || die "attach-device failed"
	sleep 1
	cp "$LV_XML" $C/libvirt/domstatus-hotplugged
	proc_seeds "$LV_PID" libvirt-hotplugged seed-lv
	libvirt_stop
}

# What HTTP clients of /metrics send, recorded raw by a listener that
# answers like vmprobe. Prometheus asks with basic authentication
# (prometheus:secret, as tests/fuzz/fuzz_http.c's server has it), once as
# by default and once with native histograms on (its protobuf Accept).
http_seeds() {
	python3 - "$PORT" "$C/http" <<'PY' &
import socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
srv = socket.create_server(("127.0.0.1", port))
seen = {}
while True:
    c, _ = srv.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    agent = [l.split(b":", 1)[1].strip().split(b"/")[0].decode().lower()
             for l in data.split(b"\r\n") if l.lower().startswith(b"user-agent:")]
    accept = [l for l in data.split(b"\r\n") if l.lower().startswith(b"accept:")]
    key = (agent[0] if agent else "none", data.split(b" ")[0].decode(), tuple(accept),
           b"authorization" in data.lower())
    if key not in seen:
        seen[key] = "%s-%d" % (key[0], len(seen))
        open("%s/%s" % (out, seen[key]), "wb").write(data)
    body = b"up 1\n"
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    c.close()
PY
	local listener=$! n=0
	sleep 1
	rm -f $C/http/curl-* $C/http/wget-* $C/http/prometheus-*
	local url=http://127.0.0.1:$PORT
	curl -s -o /dev/null "$url/metrics"
	curl -s -o /dev/null --compressed -u prometheus:secret "$url/metrics"
	curl -s -o /dev/null -H 'Accept: application/openmetrics-text; version=1.0.0' "$url/metrics"
	curl -s -o /dev/null -I "$url/healthz"
	curl -s -o /dev/null -X POST -d 'x=1' "$url/metrics"
	wget -q -O /dev/null "$url/"
	local job="    basic_auth: {username: prometheus, password: secret}" flags
	for flags in "" --enable-feature=native-histograms; do
		cat >"$W/prom.yml" <<YAML
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: vmprobe
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
$job
YAML
		n=$((n + 1))
		prometheus --config.file="$W/prom.yml" --storage.tsdb.path="$W/tsdb$n" \
			--web.listen-address=127.0.0.1:$PROM_PORT ${flags:+"$flags"} >"$W/prom.log" 2>&1 &
		# Until its first scrape is recorded (a new Accept: a new file).
		for _ in $(seq 600); do
			[ "$(find $C/http -name 'prometheus-*' | wc -l)" -ge $n ] && break
			sleep 0.1
		done
		kill $!
		wait $! 2>/dev/null
		[ "$(find $C/http -name 'prometheus-*' | wc -l)" -ge $n ] ||
			die "Prometheus ${flags:-(default)} did not scrape in 60 s"
	done
	kill $listener
	# Their Accept and Accept-Encoding values, for the negotiation alone.
	python3 - "$C/http" "$C/negotiate" <<'PY'
import os, sys
src, out = sys.argv[1], sys.argv[2]
for f in sorted(os.listdir(src)):
    for line in open(os.path.join(src, f), "rb").read().split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() in (b"accept", b"accept-encoding"):
            open(os.path.join(out, "%s-%s" % (f, name.lower().decode())), "wb").write(value.strip())
PY
}

# A process's own name as /proc/PID/stat and status show it: prctl() makes
# it anything, ')' and spaces too; a zombie; init and a kernel thread.
proc_name_seeds() {
	cp /proc/1/stat $C/stat/init
	cp /proc/2/stat $C/stat/kthreadd
	cp /proc/1/status $C/status/init
	python3 - "$C" <<'PY'
import ctypes, os, sys, time
out = sys.argv[1]
libc = ctypes.CDLL(None)
pid = os.fork()
if pid == 0:
    libc.prctl(15, b"x) Z 1 (qemu", 0, 0, 0)  # PR_SET_NAME
    time.sleep(2)
    os._exit(0)
time.sleep(0.5)
for f in ("stat", "status"):
    open("%s/%s/tricky-name" % (out, f), "wb").write(open("/proc/%d/%s" % (pid, f), "rb").read())
time.sleep(2)
open("%s/stat/zombie" % out, "wb").write(open("/proc/%d/stat" % pid, "rb").read())
os.waitpid(pid, 0)
PY
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(fixtures qemu libvirt http proc_name)
for part in "${parts[@]}"; do
	case $part in
	fixtures | qemu | libvirt | http | proc_name) "${part}_seeds" ;;
	*) die "unknown part $part (fixtures, qemu, libvirt, http, proc_name)" ;;
	esac
done
echo "seeds written under $C"

#!/bin/bash
# The chart's rules and dashboard against a real Prometheus that scrapes a
# real vmprobe measuring a real QEMU guest (TCG) with a NIC and a drive,
# placed as KubeVirt places it (domain NAMESPACE_NAME, QEMU in a kubepods
# cgroup). Prometheus loads the rules taken from the rendered chart and
# also scrapes a stand-in for KubeVirt's kubevirt_vmi_* series. Every
# expression of the rules, the dashboard and docs/kubevirt.md must run
# without error, and return data where vmprobe exports its metric family;
# an expression whose family is not exported yet is reported as SKIP,
# naming it (tests/k8s/promql_check.py).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"
. "$REPO/tests/k8s/lib.sh"

what="the chart's rules and dashboard on a real Prometheus"
for need in qemu-system-x86_64 prometheus promtool nbdkit; do
	if ! command -v $need >/dev/null; then
		tap_skip "$what" "$need is not installed"
		tap_done; exit
	fi
done
tap_require_root "$what" tun
if ! k8s_tools; then
	tap_skip "$what" "$K8S_TOOLS_ERR"
	tap_done; exit
fi

WORK=$(mktemp -d /tmp/vmprobe-rules-e2e.XXXXXX)
PORT=19584 PROM_PORT=19592 KV_PORT=19593 TAP=vmpt-r0
PROM_PID= KV_PID= TCP_PID= NBD_PID=
CG=$(kubepods_cgroup vmprobe-rules-e2e)
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	for p in $PROM_PID $KV_PID $TCP_PID $NBD_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	ip link del "$TAP" 2>/dev/null
	[ -n "$CG" ] && rmdir "$CG" "${CG%/*}" 2>/dev/null
	umount "$WORK/img" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ip link del "$TAP" 2>/dev/null

guest_build_or_fail

render "$WORK/all.yaml" "${ALL_ON[@]}"
rules_of "$WORK/all.yaml" "$WORK/rules.json"
tojson "$WORK/all.yaml" | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    if d["kind"] == "ConfigMap" and "vmprobe.json" in d.get("data", {}):
        open(sys.argv[1], "w").write(d["data"]["vmprobe.json"])' "$WORK/dashboard.json"

ip tuntap add dev "$TAP" mode tap
sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=1"
ip addr add 10.77.4.1/24 dev "$TAP"
ip link set "$TAP" up
mkdir -p "$WORK/img"
mount -t tmpfs -o size=64m tmpfs "$WORK/img"
truncate -s 32M "$WORK/img/data.img"

vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

# KubeVirt's own series for the same VM (virt-handler exports them with
# the VMI's namespace and name), as counters that grow.
cat >"$WORK/kubevirt.py" <<'PY'
import http.server, sys, time
ns, name = sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        t = int(time.time() * 1000)
        l = 'namespace="%s",name="%s",node="e2e-node"' % (ns, name)
        body = "\n".join([
            '# TYPE kubevirt_vmi_info gauge',
            'kubevirt_vmi_info{%s,phase="running",os="linux",workload="server",instance_type="u1.small"} 1' % l,
            '# TYPE kubevirt_vmi_network_receive_bytes_total counter',
            'kubevirt_vmi_network_receive_bytes_total{%s,interface="default"} %d' % (l, t),
            '# TYPE kubevirt_vmi_network_transmit_bytes_total counter',
            'kubevirt_vmi_network_transmit_bytes_total{%s,interface="default"} %d' % (l, t),
            '# TYPE kubevirt_vmi_storage_iops_read_total counter',
            'kubevirt_vmi_storage_iops_read_total{%s,drive="data"} %d' % (l, t // 100),
            '# TYPE kubevirt_vmi_storage_read_times_seconds_total counter',
            'kubevirt_vmi_storage_read_times_seconds_total{%s,drive="data"} %f' % (l, t / 1e5),
            '# TYPE kubevirt_vmi_vcpu_wait_seconds_total counter',
            'kubevirt_vmi_vcpu_wait_seconds_total{%s,id="0",state="running"} %f' % (l, t / 1e6),
            ""]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY

NS=vmprobe-e2e VM=web-1
if [ -n "$CG" ] && mkdir -p "$CG" 2>/dev/null; then
	kube=1
else
	kube=0
	tap_skip "the VM carries the namespace label (KubeVirt layout)" "no writable cgroup hierarchy to put QEMU under kubepods"
fi
python3 "$WORK/kubevirt.py" $KV_PORT "$NS" "$VM" >"$WORK/kubevirt.log" 2>&1 &
KV_PID=$!

# The node label is what the chart's ServiceMonitor adds from the pod's node.
cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$WORK/rules.json"]
scrape_configs:
  - job_name: vmprobe
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
        labels: {node: e2e-node}
  - job_name: kubevirt
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:$KV_PORT"]
YAML
check "promtool check config accepts the Prometheus config with the chart's rules" \
	promtool check config "$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
	--web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
check "Prometheus starts with the chart's rules" wait_for 30 curl -sf "http://127.0.0.1:$PROM_PORT/-/ready"

# A TCP server on the host for the guest's short connections (RTT samples).
python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.4.1", 19596)); s.listen(16)
while True:
    c, _ = s.accept(); c.recv(100); c.sendall(b"ok\n"); c.close()
' 2>"$WORK/tcpserver.log" &
TCP_PID=$!

# The guest: steady pings to the host, a TCP connection a second and
# direct IO on its drive, for 40 s.
guest_make_initrd "$WORK/initrd" - <<'SH'
ping -c 1 -W 5 10.77.4.1 >/dev/null
echo WORKLOAD-START
ping -q -c 800 -i 0.05 -s 600 10.77.4.1 >/dev/null &
i=0
while [ $i -lt 40 ]; do
	dd if=/dev/zero of=/dev/vda bs=4096 count=32 oflag=direct 2>/dev/null
	dd if=/dev/vda of=/dev/null bs=65536 count=8 iflag=direct 2>/dev/null
	echo hello | nc -w 2 10.77.4.1 19596 >/dev/null 2>&1
	sleep 1
	i=$((i + 1))
done
wait
echo WORKLOAD-DONE
sleep 300
SH
[ $kube -eq 1 ] && echo $BASHPID >"$CG/cgroup.procs"
# What vmprobe cannot measure, so that its alert runs on data: a drive on
# QEMU's built-in NBD client and a NIC with no tap (slirp).
NBD_PORT=$((40000 + RANDOM % 10000))
nbdkit -f -i 127.0.0.1 -p "$NBD_PORT" memory 8M >"$WORK/nbdkit.log" 2>&1 &
NBD_PID=$!
# The NIC as KubeVirt names its device: the VMI's interface "default".
GUEST_IP=10.77.4.2/24 GUEST_NIC_ID=ua-default guest_start "${NS}_$VM" "$TAP" "$WORK/initrd" \
	-drive "file=$WORK/img/data.img,format=raw,if=none,id=drive-ua-data,cache=none,aio=threads" \
	-device virtio-blk-pci,drive=drive-ua-data,id=ua-data \
	-drive "file=nbd://127.0.0.1:$NBD_PORT,format=raw,if=none,id=drive-ua-scratch" \
	-device virtio-blk-pci,drive=drive-ua-scratch,id=ua-scratch \
	-netdev user,id=slirp0 -device virtio-net-pci,netdev=slirp0,id=ua-slirp
rc=$?
[ $kube -eq 1 ] && echo $BASHPID >"${CG%/kubepods.slice/*}/cgroup.procs"
[ $rc -eq 0 ] || { tap_fail "QEMU guest starts"; tap_done; exit; }
tap_ok "QEMU guest with a NIC and a drive starts"

check "the guest's workload starts" wait_for 90 grep -q WORKLOAD-START "$GUEST_LOG"
# Frames the guest cannot take: paused through QEMU's monitor, it does not
# drain its RX ring and the tap drops (FULL_RING), so the drop rules, alert
# and panel run on data rather than on a series that never appeared.
td0=$(tapstat "$TAP" tx_dropped)
guest_qmp "$GUEST_QMP" stop >/dev/null
"$REPO/build/tests/tools/tapguest" inject "$TAP" 3000 200 >/dev/null
guest_qmp "$GUEST_QMP" cont >/dev/null
check "the paused guest's tap dropped frames" test "$(tapstat "$TAP" tx_dropped)" -gt "$td0"
sleep 30 # half the workload: 30 samples of every series, rules evaluated 30 times
scrape "$WORK/metrics.txt"
if [ $kube -eq 1 ]; then
	check_num "vmprobe names the VM by KubeVirt's namespace and name" 1 \
		"$(metric "$WORK/metrics.txt" vmprobe_vm_info namespace="$NS" name="$VM")"
	export VAR_namespace=$NS VAR_vm=$VM
fi
# ~30 connections by now, one a second; the server's accept log is not needed.
check_range "vmprobe counts the guest's TCP connections (opened by the guest)" 10 45 \
	"$(metric "$WORK/metrics.txt" vmprobe_network_tcp_connections_opened_total name="$VM" interface=default opened_by=guest)"
check_num "the interface is labelled by KubeVirt's name (ua-default), its tap kept in the info series" 1 \
	"$(metric "$WORK/metrics.txt" vmprobe_interface_info name="$VM" interface=default tap="$TAP" measured=true)"
check_num "vmprobe says the NBD drive is not measured" 1 \
	"$(metric "$WORK/metrics.txt" vmprobe_drive_info name="$VM" drive=scratch backend=nbd measured=false)"
check_num "vmprobe says the slirp NIC is not measured" 1 \
	"$(metric "$WORK/metrics.txt" vmprobe_interface_info name="$VM" interface=slirp type=user measured=false)"
check "vmprobe counts the guest's drive (drive label without KubeVirt's ua- prefix)" \
	test -n "$(metric "$WORK/metrics.txt" vmprobe_disk_operations_total name="$VM" drive=data operation=write)"

curl -sf "http://127.0.0.1:$KV_PORT/metrics" >"$WORK/kubevirt.txt"
export VAR_node=e2e-node RATE_INTERVAL=1m
python3 "$REPO/tests/k8s/promql_check.py" "http://127.0.0.1:$PROM_PORT" "$WORK/metrics.txt,$WORK/kubevirt.txt" \
	"$WORK/rules.json" "$WORK/dashboard.json" "$REPO/docs/kubevirt.md" >"$WORK/verdicts.txt" 2>"$WORK/check.err"
check_eq "the PromQL checker ran to the end" "" "$(cat "$WORK/check.err")"
while IFS=$'\t' read -r v what why; do
	case $v in
	OK) tap_ok "$what" ;;
	SKIP) tap_skip "$what" "$why" ;;
	*) tap_fail "$what" "$why" ;;
	esac
done <"$WORK/verdicts.txt"

# The KubeVirt join of docs/kubevirt.md attaches KubeVirt's labels to
# vmprobe's series of the same VM.
if [ $kube -eq 1 ]; then
	got=$(curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode \
		'query=sum by (namespace, name) (rate(vmprobe_network_bytes_total[1m])) * on (namespace, name) group_left (instance_type) max by (namespace, name, instance_type) (kubevirt_vmi_info)' |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(" ".join(sorted("%s/%s %s" % (s["metric"]["namespace"], s["metric"]["name"], s["metric"]["instance_type"]) for s in r)))')
	check_eq "vmprobe's series join kubevirt_vmi_info on namespace and name" "$NS/$VM u1.small" "$got"
	got=$(curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode \
		'query=sum by (namespace, name, interface) (rate(vmprobe_network_bytes_total{direction="rx"}[1m])) / on (namespace, name, interface) sum by (namespace, name, interface) (rate(kubevirt_vmi_network_receive_bytes_total[1m]))' |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(" ".join(sorted("%s/%s %s" % (s["metric"]["namespace"], s["metric"]["name"], s["metric"]["interface"]) for s in r)))')
	check_eq "vmprobe's series join kubevirt_vmi_network_* on namespace, name and interface" \
		"$NS/$VM default" "$got"
fi
tap_done

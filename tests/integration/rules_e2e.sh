#!/bin/bash
# The chart's rules and dashboard against a real Prometheus that scrapes a
# real vmprobe measuring a real QEMU guest (TCG) with a NIC and a drive,
# placed as KubeVirt places it (domain NAMESPACE_NAME, QEMU in a kubepods
# cgroup). Prometheus loads the rules taken from the rendered chart and
# also scrapes a stand-in for KubeVirt's kubevirt_vmi_* and
# kube-state-metrics' node series; both jobs carry a cluster label, as
# where one Prometheus scrapes several clusters. A week of the baselines'
# hourly series for the guest's drive and interface is backfilled
# (promtool tsdb create-blocks-from openmetrics), so that the baseline
# rules, z-scores and anomaly operands run on the guest's live series.
# Every expression of the rules, the dashboard and docs/kubevirt.md must
# run without error, and return data where vmprobe exports its metric
# family; an expression whose family is not exported yet is reported as
# SKIP, naming it (tests/k8s/promql_check.py). Every dashboard variable
# resolves to the guest's cluster, node, namespace, name, interface and
# drive. A second Prometheus with native histograms (it keeps no _bucket
# series) must give the quantile rules and the heatmaps from them.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"
. "$REPO/tests/k8s/lib.sh"

what="the chart's rules and dashboard on a real Prometheus"
tap_require_cmds "$what" qemu-system-x86_64 prometheus promtool nbdkit
tap_require_root "$what" tun
if ! k8s_tools; then
	tap_skip "$what" "$K8S_TOOLS_ERR"
	tap_done; exit
fi

WORK=$(mktemp -d /tmp/vmprobe-rules-e2e.XXXXXX)
PORT=19584 PROM_PORT=19592 KV_PORT=19593 NH_PORT=19594 TAP=vmpt-r0
PROM_PID= NH_PID= KV_PID= TCP_PID= NBD_PID=
CG=$(kubepods_cgroup vmprobe-rules-e2e)
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	for p in $PROM_PID $NH_PID $KV_PID $TCP_PID $NBD_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
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
# the VMI's namespace and name), as counters that grow; virt-controller's
# VMI count of the node; kube-state-metrics' node labels and condition, for
# this node and for a second KubeVirt node that has no vmprobe.
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
            '# TYPE kubevirt_vmi_phase_count gauge',
            'kubevirt_vmi_phase_count{node="e2e-node",phase="Running",os="linux",workload="server",flavor="small",instance_type="u1.small"} 1',
            '# TYPE kube_node_labels gauge',
            'kube_node_labels{node="e2e-node",label_kubevirt_io_schedulable="true"} 1',
            'kube_node_labels{node="e2e-node-2",label_kubevirt_io_schedulable="true"} 1',
            '# TYPE kube_node_status_condition gauge',
            'kube_node_status_condition{node="e2e-node",condition="Ready",status="true"} 1',
            'kube_node_status_condition{node="e2e-node-2",condition="Ready",status="true"} 1',
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
        labels: {node: e2e-node, cluster: e2e-cluster}
  - job_name: kubevirt
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:$KV_PORT"]
        labels: {cluster: e2e-cluster}
YAML
check "promtool check config accepts the Prometheus config with the chart's rules" \
	promtool check config "$WORK/prometheus.yml"

# A week of the baselines' hourly series (1 ms +- 0.2 ms, no drops), every
# 5 minutes until 20 hours ago, with the labels the live rules give the
# guest's drive and interface: each day's same hour is 23h30m, 47h30m, ...
# before the rules' evaluations during this test.
VM_NAME=$VM
[ $kube -eq 1 ] || VM_NAME=${NS}_$VM
python3 - "$WORK/history.om" "$PORT" "$kube" "$NS" "$VM_NAME" <<'PY'
import sys, time
out, port, kube, ns, name = sys.argv[1:]
who = 'cluster="e2e-cluster",node="e2e-node",instance="127.0.0.1:%s",%sname="%s"' % (
    port, 'namespace="%s",' % ns if kube == "1" else "", name)
series = []
for op in ("read", "write"):
    l = '%s,drive="data",operation="%s",quantile="0.99"' % (who, op)
    series += [("vm_drive:vmprobe_disk_latency_seconds:p99_avg1h", l, 0.001),
               ("vm_drive:vmprobe_disk_latency_seconds:p99_stddev1h", l, 0.0002)]
for path in ("guest", "network"):
    l = '%s,interface="default",path="%s",quantile="0.99"' % (who, path)
    series += [("vm_interface:vmprobe_network_tcp_rtt_seconds:p99_avg1h", l, 0.001),
               ("vm_interface:vmprobe_network_tcp_rtt_seconds:p99_stddev1h", l, 0.0002)]
for d in ("rx", "tx"):
    l = '%s,interface="default",direction="%s"' % (who, d)
    series += [("vm_interface:vmprobe_network_drops:ratio_avg1h", l, 0),
               ("vm_interface:vmprobe_network_drops:ratio_stddev1h", l, 0)]
now = int(time.time()) // 300 * 300
with open(out, "w") as f:
    for n in sorted({n for n, _, _ in series}):
        f.write("# TYPE %s gauge\n" % n)
        for t in range(now - 8 * 86400, now - 20 * 3600, 300):
            for m, l, v in series:
                if m == n:
                    f.write("%s{%s} %s %d\n" % (m, l, v, t))
    f.write("# EOF\n")
PY
check "promtool backfills a week of the baselines' hourly series" \
	promtool tsdb create-blocks-from openmetrics "$WORK/history.om" "$WORK/tsdb"
prom_start() { # PORT TSDB [FLAGS...]: a Prometheus with this config
	local port=$1 tsdb=$2; shift 2
	prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$tsdb" \
		--web.listen-address="127.0.0.1:$port" "$@" >"$WORK/prometheus-$port.log" 2>&1 &
}
prom_start $PROM_PORT "$WORK/tsdb"
PROM_PID=$!
check "Prometheus starts with the chart's rules" wait_for 30 curl -sf "http://127.0.0.1:$PROM_PORT/-/ready"
prom_start $NH_PORT "$WORK/tsdb-native" --enable-feature=native-histograms
NH_PID=$!
check "Prometheus with native histograms starts with the chart's rules" \
	wait_for 30 curl -sf "http://127.0.0.1:$NH_PORT/-/ready"

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
guest_paused "$REPO/build/tests/tools/tapguest" inject "$TAP" 3000 200 >/dev/null
check "the paused guest's tap dropped frames" test "$(tapstat "$TAP" tx_dropped)" -gt "$td0"
sleep 30 # half the workload: 30 samples of every series, rules evaluated 30 times
scrape "$WORK/metrics.txt"
if [ $kube -eq 1 ]; then
	check_num "vmprobe names the VM by KubeVirt's namespace and name" 1 \
		"$(metric "$WORK/metrics.txt" vmprobe_vm_info namespace="$NS" name="$VM")"
	export VAR_namespace=$NS
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
	test -n "$(metric "$WORK/metrics.txt" vmprobe_disk_latency_seconds_count name="$VM" drive=data operation=write)"

curl -sf "http://127.0.0.1:$KV_PORT/metrics" >"$WORK/kubevirt.txt"
export VAR_cluster=e2e-cluster VAR_node=e2e-node VAR_vm=$VM_NAME VAR_interface=default VAR_drive=data RATE_INTERVAL=1m
export NATIVE_PROM=http://127.0.0.1:$NH_PORT
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

# VmprobeMissingOnNode's condition on real series: the KubeVirt node
# without vmprobe, not this one.
missing=$(python3 -c '
import json, sys
print([r["expr"] for g in json.load(open(sys.argv[1]))["groups"] for r in g["rules"]
       if r.get("alert") == "VmprobeMissingOnNode"][0])' "$WORK/rules.json")
check_eq "VmprobeMissingOnNode's condition holds for the KubeVirt node without vmprobe only" "e2e-cluster/e2e-node-2" \
	"$(curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$missing" |
		python3 -c 'import json,sys; print(" ".join(sorted("%s/%s" % (s["metric"].get("cluster"), s["metric"]["node"]) for s in json.load(sys.stdin)["data"]["result"])))')"

# The KubeVirt join of docs/kubevirt.md attaches KubeVirt's labels to
# vmprobe's series of the same VM.
if [ $kube -eq 1 ]; then
	got=$(curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode \
		'query=sum by (namespace, name) (rate(vmprobe_network_packet_size_bytes_sum[1m])) * on (namespace, name) group_left (instance_type) max by (namespace, name, instance_type) (kubevirt_vmi_info)' |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(" ".join(sorted("%s/%s %s" % (s["metric"]["namespace"], s["metric"]["name"], s["metric"]["instance_type"]) for s in r)))')
	check_eq "vmprobe's series join kubevirt_vmi_info on namespace and name" "$NS/$VM u1.small" "$got"
	got=$(curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode \
		'query=sum by (namespace, name, interface) (rate(vmprobe_network_packet_size_bytes_sum{direction="rx"}[1m])) / on (namespace, name, interface) sum by (namespace, name, interface) (rate(kubevirt_vmi_network_receive_bytes_total[1m]))' |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(" ".join(sorted("%s/%s %s" % (s["metric"]["namespace"], s["metric"]["name"], s["metric"]["interface"]) for s in r)))')
	check_eq "vmprobe's series join kubevirt_vmi_network_* on namespace, name and interface" \
		"$NS/$VM default" "$got"
fi
tap_done

#!/bin/bash
# The chart's Prometheus Adapter rules (prometheusAdapter.enabled): the
# adapter's config.yaml from the rendered ConfigMap, checked for syntax,
# then run against a real Prometheus (2.42) scraping a real vmprobe that
# measures a real QEMU guest (TCG) placed as KubeVirt places it (domain
# NAMESPACE_NAME, QEMU in a kubepods cgroup), with a stand-in for
# kube-state-metrics' kube_pod_info of its virt-launcher pod. The adapter
# is not to be had here (neither Debian nor npm packages it): its
# discovery and query building are modelled by tests/k8s/adapter_rules.py
# (see there), which expands every rule's seriesQuery and metricsQuery as
# the adapter does; every metric must be registered for the VMI, its pod
# and its namespace, and its query return a value for the running VM.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"
. "$REPO/tests/k8s/lib.sh"

what="the chart's Prometheus Adapter rules"
tap_require_cmds "$what" qemu-system-x86_64 prometheus promtool
k8s_tools_or_skip "$what"
ADAPTER="python3 $REPO/tests/k8s/adapter_rules.py"
WORK=$(mktemp -d /tmp/vmprobe-adapter.XXXXXX)
PORT=19881 PROM_PORT=19882 KSM_PORT=19883 TCP_PORT=19884 NPROM_PORT=19885 TAP=vmpt-ad0
PROM_PID= NPROM_PID= KSM_PID= TCP_PID= CG=
cleanup() {
	guest_stop >/dev/null 2>&1
	vmprobe_stop >/dev/null 2>&1
	for p in $PROM_PID $NPROM_PID $KSM_PID $TCP_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	ip link del "$TAP" 2>/dev/null
	[ -n "$CG" ] && rmdir "$CG" "${CG%/*}" 2>/dev/null
	umount "$WORK/img" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# The adapter's config.yaml, as the ConfigMap carries it, in JSON.
adapter_config() { # OUT HELM_ARGS...
	local out=$1; shift
	render "$WORK/chart.yaml" --set prometheusAdapter.enabled=true "$@" &&
		tojson "$WORK/chart.yaml" | python3 -c '
import json, sys
cms = [d for d in json.load(sys.stdin) if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-adapter")]
if len(cms) != 1:
    sys.exit("expected one adapter ConfigMap, found %d" % len(cms))
open(sys.argv[1], "w").write(cms[0]["data"]["config.yaml"])' "$out.yaml" &&
		tojson "$out.yaml" >"$out"
}

tap_skip "the real prometheus-adapter binary runs the rules" \
	"not packaged in Debian 12 nor on npm (and Go modules are not a source here): its behaviour is modelled by tests/k8s/adapter_rules.py"
out=$($ADAPTER selftest 2>&1)
check_eq "the model answers as the adapter's own unit tests expect (label matchers, group by, name.as)" \
	"" "$(grep -v '^ok' <<<"$out")"
render "$WORK/default.yaml"
check_eq "off by default: no adapter ConfigMap" "" "$(grep -- '-adapter$' "$WORK/default.yaml")"
check "the chart renders the adapter's config.yaml (prometheusAdapter.enabled)" adapter_config "$WORK/adapter.json"
check "helm lint --strict with prometheusAdapter.enabled" "$HELM" lint --strict "$CHART" --set prometheusAdapter.enabled=true
check "the ConfigMap is valid against the Kubernetes API schema" \
	grep -q "^ok ConfigMap/vmprobe-adapter" <<<"$(validate "$WORK/chart.yaml" 2>&1)"
check "the config has only fields the adapter knows, and templates it can expand" $ADAPTER check "$WORK/adapter.json"
NRATES=9 NQUANT=4
check_eq "one rule per metric and resource kind: ($NRATES rates + $NQUANT latencies x 2 quantiles) x (VMI, pod)" \
	$(( (NRATES + NQUANT * 2) * 2 )) "$($ADAPTER check "$WORK/adapter.json" | wc -l)"
$ADAPTER parse "$WORK/adapter.json" >"$WORK/parse.json"
check "promtool parses every seriesQuery and every expanded metricsQuery" promtool check rules "$WORK/parse.json"
# The checker refuses what the adapter refuses.
python3 - "$WORK/adapter.json" "$WORK" <<'PY'
import copy, json, sys
cfg = json.load(open(sys.argv[1]))[0]
def bad(name, edit):
    c = copy.deepcopy(cfg); edit(c["rules"][0])
    json.dump([c], open("%s/bad-%s.json" % (sys.argv[2], name), "w"))
bad("field", lambda r: r.update(seriesQery=r["seriesQuery"]))
bad("template", lambda r: r.update(metricsQuery=r["metricsQuery"].replace("<<.GroupBy>>", "<<.GroupBy")))
bad("action", lambda r: r.update(metricsQuery=r["metricsQuery"].replace("<<.GroupBy>>", "<<.GroupBi>>")))
bad("resource", lambda r: r["resources"]["overrides"].update(pod={"resource": "virtualmachine"}))
PY
check_fails "the checker refuses an unknown field (seriesQery)" $ADAPTER check "$WORK/bad-field.json"
check_fails "the checker refuses an unclosed << action" $ADAPTER check "$WORK/bad-template.json"
check_fails "the checker refuses an unknown template field (.GroupBi)" $ADAPTER check "$WORK/bad-action.json"
check_fails "the checker refuses a resource without its group (virtualmachine)" $ADAPTER check "$WORK/bad-resource.json"
check "values: another window and quantile set render and check" adapter_config "$WORK/q.json" \
	--set prometheusAdapter.window=5m --set-json 'prometheusAdapter.quantiles=["0.9","0.999"]'
check "... as metrics _p90_ and _p999_ over 5m" bash -c "grep -q vmprobe_disk_read_latency_p999_seconds '$WORK/q.json' &&
	grep -q vmprobe_disk_read_latency_p90_seconds '$WORK/q.json' && grep -q '\[5m\]' '$WORK/q.json'"
check_fails "values.schema.json refuses a quantile of 1" render "$WORK/x.yaml" --set prometheusAdapter.enabled=true \
	--set-json 'prometheusAdapter.quantiles=["1"]'
adapter_config "$WORK/vmi.json" --set prometheusAdapter.pods=false
check_eq "pods=false leaves the VMI rules only" "" "$(grep -o kube_pod_info "$WORK/vmi.json" | head -1)"

# The running VM, placed as KubeVirt places it.
tap_require_root "$what against a real Prometheus" tun
CG=$(kubepods_cgroup vmprobe-adapter) && mkdir -p "$CG" 2>/dev/null ||
	{ tap_skip "$what against a real Prometheus" "no writable cgroup hierarchy to put QEMU under kubepods (no namespace label)"; tap_done; exit; }
guest_build_or_fail
ip link del "$TAP" 2>/dev/null
guest_tap_add "$TAP"
ip addr add 10.77.5.1/24 dev "$TAP"
mkdir -p "$WORK/img"
mount -t tmpfs -o size=64m tmpfs "$WORK/img"
truncate -s 32M "$WORK/img/data.img"
vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

NS=vmprobe-adapter VM=web-1 POD=virt-launcher-web-1-x7k2p OTHER=virt-launcher-web-2-q9z4m
# kube-state-metrics' kube_pod_info: the VM's virt-launcher pod (owner:
# its VMI), a pod of another VMI, and a pod that is no VM's.
cat >"$WORK/ksm.py" <<'PY'
import http.server, sys
ns, vm, pod, other = sys.argv[2:6]
info = [(pod, "VirtualMachineInstance", vm), (other, "VirtualMachineInstance", "web-2"),
        ("web-5d8f7-abcde", "ReplicaSet", "web-5d8f7")]
body = "# TYPE kube_pod_info gauge\n" + "".join(
    'kube_pod_info{namespace="%s",pod="%s",uid="u-%s",node="e2e-node",created_by_kind="%s",created_by_name="%s"} 1\n'
    % (ns, p, p, k, n) for p, k, n in info)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$WORK/ksm.py" $KSM_PORT "$NS" "$VM" "$POD" "$OTHER" >"$WORK/ksm.log" 2>&1 &
KSM_PID=$!
# As the chart's ServiceMonitor and kube-prometheus-stack's scrape them:
# honor_labels keeps the VM's and the pod's namespace.
# A second one with native histograms: it keeps vmprobe's histograms as
# native ones only, which the latency metrics read then.
KSM_JOB="    honor_labels: true
  - job_name: kube-state-metrics
    honor_labels: true
    static_configs:
      - targets: [\"127.0.0.1:$KSM_PORT\"]"
prometheus_start $NPROM_PORT $PORT "$KSM_JOB" --enable-feature=native-histograms ||
	{ tap_fail "Prometheus (native histograms) starts" "$(tail -5 "$WORK/prometheus-$NPROM_PORT.log")"; tap_done; exit; }
NPROM_PID=$PROM_PID NP=$PROM_URL
prometheus_start $PROM_PORT $PORT "$KSM_JOB" ||
	{ tap_fail "Prometheus starts" "$(tail -5 "$WORK/prometheus-$PROM_PORT.log")"; tap_done; exit; }
P=$PROM_URL

# A TCP server on the host for the guest's connections (RTT both ways).
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.5.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.recv(100); c.sendall(b"ok\n"); c.close()
' $TCP_PORT 2>"$WORK/tcpserver.log" &
TCP_PID=$!
# The guest's workload: pings, a TCP connection and direct reads and
# writes on its drive every second, for 5 minutes at most (the test stops
# it sooner).
guest_make_initrd "$WORK/initrd" - <<SH
ping -c 1 -W 5 10.77.5.1 >/dev/null
echo WORKLOAD-START
ping -q -c 3000 -i 0.1 -s 600 10.77.5.1 >/dev/null &
i=0
while [ \$i -lt 300 ]; do
	dd if=/dev/zero of=/dev/vda bs=4096 count=32 oflag=direct 2>/dev/null
	dd if=/dev/vda of=/dev/null bs=65536 count=8 iflag=direct 2>/dev/null
	echo hello | nc -w 2 10.77.5.1 $TCP_PORT >/dev/null 2>&1
	sleep 1
	i=\$((i + 1))
done
SH
echo $BASHPID >"$CG/cgroup.procs"
GUEST_IP=10.77.5.2/24 GUEST_NIC_ID=ua-default guest_start "${NS}_$VM" "$TAP" "$WORK/initrd" \
	-drive "file=$WORK/img/data.img,format=raw,if=none,id=drive-ua-data,cache=none,aio=threads" \
	-device virtio-blk-pci,drive=drive-ua-data,id=ua-data
rc=$?
echo $BASHPID >"${CG%/kubepods.slice/*}/cgroup.procs"
[ $rc -eq 0 ] || { tap_fail "QEMU guest starts"; tap_done; exit; }
check "the guest's workload starts" wait_for 90 grep -q WORKLOAD-START "$GUEST_LOG"
# Frames the paused guest cannot take, so that drops exist too.
guest_paused "$TAPGUEST" inject "$TAP" 3000 200 >/dev/null

# Every metric registered for the VMI, its pod and its namespace: its
# series exist once the workload has run (guest-path RTT needs the
# guest's answers, drops the paused guest's).
metrics_of() { $ADAPTER discover "$WORK/adapter.json" "$P" | awk -v r="$1" '$1 == r { print $2 }' | sort; }
want=$(python3 -c '
import json, sys
print("\n".join(sorted({r["name"]["as"] for r in json.load(open(sys.argv[1]))[0]["rules"]})))' "$WORK/adapter.json")
all_registered() { [ "$(metrics_of virtualmachineinstances.kubevirt.io)" = "$want" ]; }
check "every metric is registered for virtualmachineinstances.kubevirt.io" wait_for 120 all_registered
check_eq "... and for pods" "$want" "$(metrics_of pods)"
check_eq "... and for namespaces" "$want" "$(metrics_of namespaces)"
check_eq "the other VMI's pod is known, the ReplicaSet's pod is not (kube_pod_info's owner)" \
	"$POD $OTHER" "$(curl -sf "$P/api/v1/series" --data-urlencode 'match[]=kube_pod_info{created_by_kind="VirtualMachineInstance"}' |
		python3 -c 'import json,sys; print(" ".join(sorted(s["pod"] for s in json.load(sys.stdin)["data"])))')"
check_eq "the VM's series carry KubeVirt's namespace and name" "1" \
	"$(promql "count(vmprobe_vm_info{namespace=\"$NS\",name=\"$VM\"})")"

# Each metric's query, built as the adapter builds it for one VMI (the
# HPA's Object metric), for the VM's pod and another (a Pods metric: the
# pods of the VirtualMachinePool's selector), and for the namespace: a
# number for the running VM, the same for the VMI and its pod.
sleep 5
T=$(date +%s)
value() { # RESOURCE NAMESPACE METRIC NAMES [SELECTOR]: "name value" lines
	$ADAPTER query "$WORK/adapter.json" "${VP:-$P}" "$T" "$@" >"$WORK/q.out" 2>&1 || { cat "$WORK/q.out"; return 1; }
	tail -n +2 "$WORK/q.out" | sort
}
isnum() { [[ $1 =~ ^[0-9.e+-]+$ ]] && [ "$1" != "NaN" ]; }
for m in $want; do
	vmi=$(value virtualmachineinstances.kubevirt.io "$NS" "$m" "$VM")
	pod=$(value pods "$NS" "$m" "$POD,$OTHER")
	nsv=$(value namespaces "" "$m" "$NS")
	v=${vmi#"$VM "}
	if ! isnum "$v" || [ "$vmi" != "$VM $v" ]; then
		tap_fail "$m of the VMI $NS/$VM is a number" "got: $vmi" "query: $(head -1 "$WORK/q.out")"
		continue
	fi
	tap_ok "$m of the VMI $NS/$VM is a number ($v)"
	check_eq "$m of its pod (pod=~\"A|B\", one answering) is the VMI's" "$POD $v" "$pod"
	check_eq "$m of the namespace is the VMI's (its only VM)" "$NS $v" "$nsv"
done
# Rates are rates: positive while the guest works.
for m in vmprobe_network_receive_bytes_per_second vmprobe_disk_write_operations_per_second; do
	v=$(value virtualmachineinstances.kubevirt.io "$NS" "$m" "$VM")
	check_range "$m of the busy VM is above 0" 1e-9 1e12 "${v#* }"
done
# The adapter's query is the PromQL one would write by hand.
check_eq "vmprobe_disk_read_latency_p99_seconds = histogram_quantile(0.99) of the VM's read latency" \
	"$(promql "histogram_quantile(0.99, sum by (name, le) (rate(vmprobe_disk_latency_seconds_bucket{namespace=\"$NS\",name=\"$VM\",operation=\"read\"}[2m])))" "$T")" \
	"$(value virtualmachineinstances.kubevirt.io "$NS" vmprobe_disk_read_latency_p99_seconds "$VM" | cut -d' ' -f2)"
check_eq "vmprobe_network_transmit_bytes_per_second = rate of the VM's tx bytes" \
	"$(promql "sum(rate(vmprobe_network_packet_size_bytes_sum{namespace=\"$NS\",name=\"$VM\",direction=\"tx\"}[2m]))" "$T")" \
	"$(value virtualmachineinstances.kubevirt.io "$NS" vmprobe_network_transmit_bytes_per_second "$VM" | cut -d' ' -f2)"
# An HPA metric selector narrows the VMI's series (interface, drive...).
check_eq "a metric selector (interface=default) goes first in the label matchers, as the adapter puts it" \
	"$(value virtualmachineinstances.kubevirt.io "$NS" vmprobe_network_receive_bytes_per_second "$VM")" \
	"$(value virtualmachineinstances.kubevirt.io "$NS" vmprobe_network_receive_bytes_per_second "$VM" interface=default)"
check "... the query says interface=\"default\",namespace=\"$NS\",name=\"$VM\"" \
	grep -q "{interface=\"default\",namespace=\"$NS\",name=\"$VM\",job=" "$WORK/q.out"
check_eq "a selector matching nothing (interface=nope): no value" "" \
	"$(value virtualmachineinstances.kubevirt.io "$NS" vmprobe_network_receive_bytes_per_second "$VM" interface=nope)"
check_eq "a pod of no running VM: no value" "" "$(value pods "$NS" vmprobe_disk_read_bytes_per_second "$OTHER")"
# The latency metrics from native histograms (the Prometheus that has no
# classic buckets): a number, the same for the VMI and its pod.
check "Prometheus (native) has the VM's disk latency as a native histogram" \
	test -n "$(promql_on $NPROM_PORT "histogram_count(vmprobe_disk_latency_seconds{name=\"$VM\",operation=\"read\"})")"
check_eq "... and no classic bucket of it" "" "$(promql_on $NPROM_PORT "count(vmprobe_disk_latency_seconds_bucket{name=\"$VM\"})")"
for m in $(grep '_p[0-9]*_seconds$' <<<"$want"); do
	vmi=$(VP=$NP value virtualmachineinstances.kubevirt.io "$NS" "$m" "$VM")
	v=${vmi#"$VM "}
	if isnum "$v" && [ "$vmi" = "$VM $v" ]; then
		tap_ok "native: $m of the VMI is a number ($v)"
		check_eq "native: $m of its pod is the VMI's" "$POD $v" "$(VP=$NP value pods "$NS" "$m" "$POD")"
	else
		tap_fail "native: $m of the VMI is a number" "got: $vmi" "query: $(head -1 "$WORK/q.out")"
	fi
done
tap_done

#!/bin/bash
# The Helm chart (helm/vmprobe), offline: `helm lint --strict`; `helm
# template` with the defaults and with every optional part on; every
# rendered object valid against the Kubernetes API schemas and the
# Prometheus Operator CRDs' (unknown fields included); values.schema.json
# refusing bad values and matching vmprobe's own config keys; the rendered
# vmprobe config accepted by `vmprobe config check`; the DaemonSet's
# privileges and mounts matching what the source needs; the dashboard, the
# runbook links, and `make deploy/vmprobe.yaml`.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/k8s/lib.sh"

if ! k8s_tools; then
	tap_skip "the Helm chart: lint, render, schemas" "$K8S_TOOLS_ERR"
	tap_done; exit
fi
WORK=$(mktemp -d /tmp/vmprobe-helm.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

check "helm lint --strict (defaults)" "$HELM" lint --strict "$CHART"
check "helm lint --strict (every optional part on)" "$HELM" lint --strict "$CHART" "${ALL_ON[@]}"

check "helm template renders with the defaults" render "$WORK/default.yaml"
check "helm template renders with every optional part on" render "$WORK/all.yaml" "${ALL_ON[@]}"
kinds() { tojson "$1" | python3 -c 'import json,sys; print(" ".join(sorted(d["kind"] for d in json.load(sys.stdin))))'; }
check_eq "defaults render a ConfigMap, DaemonSet, Service and ServiceAccount only" \
	"ConfigMap DaemonSet Service ServiceAccount" "$(kinds "$WORK/default.yaml")"
check_eq "every part on adds a ServiceMonitor, a PrometheusRule and the dashboards' ConfigMap" \
	"ConfigMap ConfigMap DaemonSet PrometheusRule Service ServiceAccount ServiceMonitor" "$(kinds "$WORK/all.yaml")"

# Every object against its schema (one TAP line each).
for f in default all; do
	out=$(validate "$WORK/$f.yaml" 2>&1)
	while read -r verdict rest; do
		case $verdict in
		ok) tap_ok "$f: $rest is valid against its API schema, no unknown field" ;;
		FAIL) tap_fail "$f: ${rest%%:*} is valid against its API schema" "${rest#*: }" ;;
		*) tap_fail "$f: the validator runs" "$verdict $rest" ;;
		esac
	done <<<"$out"
done
# The validator itself must catch what it claims to.
sed 's/readinessProbe:/readinesProbe:/; s/hostPID: true/hostPID: "yes"/; s/honorLabels: true/honorLabel: true/' \
	"$WORK/all.yaml" >"$WORK/bad.yaml"
bad=$(validate "$WORK/bad.yaml" 2>&1)
check "the validator refuses a misspelt container field (readinesProbe)" grep -q "FAIL DaemonSet.*readinesProbe" <<<"$bad"
check "the validator refuses a wrong type (hostPID: \"yes\")" grep -q "FAIL DaemonSet.*hostPID" <<<"$bad"
check "the validator refuses an unknown ServiceMonitor field (honorLabel)" grep -q "FAIL ServiceMonitor.*honorLabel" <<<"$bad"

# values.schema.json: wrong values fail at install time, not in the pod.
for bad in "config.network.max_interfaces=0" "config.network.typo=1" "config.log_level=verbose" \
	"config.network.packet_size_buckets.min=100" "image.pullPolicy=Sometimes" "port=70000" \
	"prometheusRule.alerts.VMNetworkDrops.dropRatio=2" "prometheusRule.alerts.VmprobeDown.for=5min" \
	"prometheusRule.alerts.VmprobeTypo.enabled=false" "prometheusRule.baseline.days=0" "unknownTopLevel=1"; do
	check_fails "values.schema.json refuses --set $bad" render "$WORK/x.yaml" --set "$bad"
done
check "values.schema.json accepts a custom config, labels and thresholds" render "$WORK/x.yaml" "${ALL_ON[@]}" \
	--set config.log_level=debug --set config.network.max_interfaces=4096 --set config.disk.enabled=false \
	--set serviceMonitor.additionalLabels.release=kps --set prometheusRule.alerts.VMDiskLatencyHigh.p99Seconds=0.25 \
	--set-json prometheusRule.alerts.VMNetworkDrops.dropRatio=0.05 --set prometheusRule.alerts.VmprobeDown.for=2h30m

# The schema's config keys are vmprobe's, less the two the chart owns.
if [ -x "$REPO/build/vmprobe" ]; then
	"$REPO/build/vmprobe" config default >"$WORK/vmprobe-default.yaml"
	keys_bin=$(tojson "$WORK/vmprobe-default.yaml" | python3 -c '
import json, sys
def walk(d, p=""):
    for k, v in d.items():
        if isinstance(v, dict): yield from walk(v, p + k + ".")
        else: yield p + k
print(" ".join(sorted(k for k in walk(json.load(sys.stdin)[0]) if k not in ("listen", "discovery.proc"))))')
	keys_schema=$(python3 -c '
import json, sys
def walk(s, p=""):
    for k, v in s.get("properties", {}).items():
        if v.get("type") == "object" and "properties" in v: yield from walk(v, p + k + ".")
        else: yield p + k
print(" ".join(sorted(walk(json.load(open(sys.argv[1]))["properties"]["config"]))))' "$CHART/values.schema.json")
	check_eq "values.schema.json's config keys are vmprobe's (config default), less listen and discovery.proc" \
		"$keys_bin" "$keys_schema"
	configmap_yaml() { tojson "$1" | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    if d["kind"] == "ConfigMap" and "config.yaml" in d.get("data", {}):
        print(d["data"]["config.yaml"], end="")'; }
	configmap_yaml "$WORK/default.yaml" >"$WORK/cfg-default.yaml"
	configmap_yaml "$WORK/x.yaml" >"$WORK/cfg-custom.yaml"
	check "vmprobe config check accepts the rendered config (defaults)" "$REPO/build/vmprobe" config check "$WORK/cfg-default.yaml"
	check "vmprobe config check accepts the rendered config (custom values)" "$REPO/build/vmprobe" config check "$WORK/cfg-custom.yaml"
else
	tap_skip "values.schema.json's config keys are vmprobe's" "build/vmprobe is not built (make all)"
fi

# The DaemonSet: what vmprobe needs at run time, derived from the source.
tojson "$WORK/default.yaml" | python3 -c '
import json, sys
ds = [d for d in json.load(sys.stdin) if d["kind"] == "DaemonSet"][0]
pod = ds["spec"]["template"]["spec"]
c = pod["containers"][0]
sc = c["securityContext"]
vols = {v["name"]: v for v in pod["volumes"]}
print("hostPID", pod.get("hostPID", False))
print("hostNetwork", pod.get("hostNetwork", False))
print("privileged", sc.get("privileged", False))
print("readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem", False))
print("runAsUser", sc.get("runAsUser"))
print("drop", ",".join(sorted(sc["capabilities"].get("drop", []))))
print("add", ",".join(sorted(sc["capabilities"].get("add", []))))
print("seccomp", sc.get("seccompProfile", {}).get("type"))
for m in c["volumeMounts"]:
    v = vols[m["name"]]
    src = v["hostPath"]["path"] if "hostPath" in v else "configMap"
    print("mount", m["mountPath"], src, "ro" if m.get("readOnly") else "rw")
    print("propagation", m["mountPath"], m.get("mountPropagation", "None"))
for p in ("livenessProbe", "readinessProbe"):
    print(p, c[p]["httpGet"]["path"], c[p]["httpGet"]["port"])
print("ports", " ".join("%s=%s" % (p["name"], p["containerPort"]) for p in c["ports"]))
' >"$WORK/ds.txt"
ds() { sed -n "s/^$1 //p" "$WORK/ds.txt"; }
check_eq "hostPID: vmprobe scans the host's processes" True "$(ds hostPID)"
check_eq "no hostNetwork: vmprobe enters the VMs' namespaces itself" False "$(ds hostNetwork)"
check_eq "not privileged" False "$(ds privileged)"
check_eq "read-only root filesystem" True "$(ds readOnlyRootFilesystem)"
check_eq "every capability dropped before adding" ALL "$(ds drop)"
check_eq "seccomp RuntimeDefault" RuntimeDefault "$(ds seccomp)"

# Capabilities: each one the source needs, with the evidence. SYS_ADMIN
# (setns) also satisfies bpf_capable() and perfmon_capable() in the kernel
# (kernel/bpf/syscall.c, include/linux/capability.h), so with it present
# BPF and PERFMON would grant nothing more.
want=()
need() { # CAP REASON PATTERN PATH (a file, or a folder searched for *.c)
	local ev
	ev=$(grep -rHnE --include='*.c' "$3" "$REPO/$4" 2>/dev/null | grep -vE '^[^:]+:[0-9]+:\s*(\*|/\*|//)' | head -1)
	if [ -n "$ev" ]; then
		want+=("$1")
		echo "# $1: $2 (evidence: ${ev#"$REPO/"})"
		echo "$1" >>"$WORK/needed"
	fi
}
: >"$WORK/needed"
need SYS_ADMIN "setns() into the pods' network namespaces" 'setns\(' user
need NET_ADMIN "clsact qdisc and TC filters on the taps" 'bpf_tc_hook_create\(|bpf_tc_attach\(|RTM_NEWTFILTER' user
need SYS_PTRACE "/proc/PID/fd, ns/net, root of QEMU running as another user" '"(fd|ns/net)"\)|"%s/%d/(fd|fdinfo|root)/' user
need DAC_READ_SEARCH "list /proc/PID/fd (mode 0500, QEMU's user) and reach images in private dirs" 'opendir\(|"%s/%d/fd/%s"' user/core/discovery.c
if grep -rqE --include='*.c' '__open_and_load|bpf_object__load|_bpf__load' "$REPO/user"; then
	grep -qx SYS_ADMIN "$WORK/needed" || { want+=(BPF); echo "# BPF: load programs and maps"; }
fi
if grep -qE 'SEC\("(tracepoint|tp|raw_tp|kprobe|fentry)' "$REPO"/bpf/*.bpf.c; then
	grep -qx SYS_ADMIN "$WORK/needed" || { want+=(PERFMON); echo "# PERFMON: tracepoints"; }
fi
check_eq "the DaemonSet adds exactly the capabilities the source needs" \
	"$(printf '%s\n' "${want[@]}" | sort | paste -sd,)" "$(ds add)"
check_eq "root inside the container (with only those capabilities)" 0 "$(ds runAsUser)"

# Mounts: the paths the source and the config use.
lock_dir=$(sed -n 's/^#define RUN_DIR "\(.*\)"/\1/p' "$REPO/user/core/pin.h")
proc_root=$(tojson "$WORK/cfg-default.yaml" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["discovery"]["proc"])' 2>/dev/null)
check_eq "the host's /proc is mounted read-only where the config's discovery.proc points" \
	"$proc_root /proc ro" "$(ds mount | grep "^$proc_root ")"
check_eq "the lock directory of the source ($lock_dir) is the host's, so one vmprobe runs per node" \
	"$lock_dir /run/vmprobe rw" "$(ds mount | grep "^$lock_dir ")"
check_eq "kernel BTF (CO-RE) mounted read-only" "/sys/kernel/btf /sys/kernel/btf ro" "$(ds mount | grep '^/sys/kernel/btf ')"
check_eq "tracefs mounted read-only (disk probe tracepoints)" "/sys/kernel/tracing /sys/kernel/tracing ro" \
	"$(ds mount | grep '^/sys/kernel/tracing ')"
check_eq "BPF filesystem mounted (pinning)" "/sys/fs/bpf /sys/fs/bpf rw" "$(ds mount | grep '^/sys/fs/bpf ')"
check_eq "the host's bpffs, as the host sees it (HostToContainer), for the next pod to adopt the pins" \
	"/sys/fs/bpf HostToContainer" "$(ds propagation | grep '^/sys/fs/bpf ')"
check_eq "the chart's vmprobe persists (a rollout adopts programs and counters)" "True" \
	"$(tojson "$WORK/cfg-default.yaml" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0].get("persist"))')"
check_eq "liveness and readiness probe /healthz on the metrics port" "/healthz metrics /healthz metrics" \
	"$(ds livenessProbe) $(ds readinessProbe)"
listen=$(python3 -c 'import sys,re; print(re.search(r"listen: \"?:(\d+)", open(sys.argv[1]).read()).group(1))' "$WORK/cfg-default.yaml")
check_eq "the container port is the one vmprobe listens on (19472)" "metrics=19472 19472" "$(ds ports) $listen"

# The dashboard.
tojson "$WORK/all.yaml" | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboards"):
        print(json.dumps(d["metadata"].get("labels", {})))
        for k, v in d["data"].items():
            open(sys.argv[1] + "/" + k, "w").write(v)' "$WORK" >"$WORK/dash-labels.json"
check "the dashboards ConfigMap carries the Grafana sidecar label (grafana_dashboard=1)" \
	python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])).get("grafana_dashboard") != "1")' "$WORK/dash-labels.json"
dash=$WORK/vmprobe.json
if check "the dashboard is valid JSON" python3 -m json.tool "$dash"; then
	python3 "$REPO/scripts/dashboard.py" "$WORK/generated.json"
	check "the dashboard is what scripts/dashboard.py writes" cmp "$CHART/dashboards/vmprobe.json" "$WORK/generated.json"
	# One TAP line per structural check (tests/k8s/dashboard_check.py).
	dash_verdicts() { python3 "$REPO/tests/k8s/dashboard_check.py" "$1" 2>&1 || echo "FAIL	the dashboard checker runs"; }
	while IFS=$'\t' read -r v what why; do
		if [ "$v" = OK ]; then tap_ok "dashboard: $what"; else tap_fail "dashboard: $what" "$why"; fi
	done < <(dash_verdicts "$dash")
	# The checker itself must catch what it claims to: a panel without the
	# cluster filter, a link to an unknown variable or from a label the
	# query drops, a heatmap that adds classic buckets to native ones.
	python3 - "$dash" "$WORK/bad-dash.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = {p["title"]: p for p in d["panels"]}
t = p["Frames per VM"]["targets"][0]
t["expr"] = t["expr"].replace('cluster=~"$cluster", ', "")
l = p["VMs per node"]["fieldConfig"]["defaults"]["links"] = [dict(p["VMs per node"]["fieldConfig"]["defaults"]["links"][0])]
l[0]["url"] = l[0]["url"].replace("var-node=", "var-host=")
l = p["Taps counted and slots"]["fieldConfig"]["defaults"]["links"] = [dict(p["Taps counted and slots"]["fieldConfig"]["defaults"]["links"][0])]
l[0]["url"] = l[0]["url"] + "&var-drive=${__field.labels.drive}"
t = p["Disk latency"]["targets"][0]
t["expr"] = t["expr"].replace(" or on () ", " or ")
json.dump(d, open(sys.argv[2], "w"))
PY
	bad=$(dash_verdicts "$WORK/bad-dash.json" | grep '^FAIL')
	check "the dashboard checker refuses a selector without \$cluster" grep -q "FAIL.*filters by \$cluster" <<<"$bad"
	check "the dashboard checker refuses a link to an unknown variable" grep -q 'FAIL.*VMs per node.*var-host is no variable' <<<"$bad"
	check "the dashboard checker refuses a link from a label the query drops" grep -q 'FAIL.*Taps counted.*drive is not a label' <<<"$bad"
	check "the dashboard checker refuses a heatmap adding classic buckets to native ones" grep -q 'FAIL.*heatmap "Disk latency"' <<<"$bad"
fi

# Alerts: summary, description, and a runbook section that exists.
rules_of "$WORK/all.yaml" "$WORK/rules.json"
python3 - "$WORK/rules.json" "$REPO/docs/runbook.md" >"$WORK/alerts.txt" <<'PY'
import json, re, sys
rules = json.load(open(sys.argv[1]))
heads = set()
for line in open(sys.argv[2], encoding="utf-8"):
    m = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
    if m:  # GitHub's anchor of a heading
        heads.add(re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-"))
for g in rules["groups"]:
    for r in g["rules"]:
        if "alert" not in r:
            continue
        a = r.get("annotations", {})
        url = a.get("runbook_url", "")
        anchor = url.split("#", 1)[1] if "#" in url else ""
        print(r["alert"], "summary" if a.get("summary") else "-", "description" if a.get("description") else "-",
              "runbook" if anchor in heads else "missing:" + anchor)
PY
while read -r alert s d rb; do
	check_eq "alert $alert has a summary, a description and a runbook section in docs/runbook.md" \
		"summary description runbook" "$s $d $rb"
done <"$WORK/alerts.txt"
check_eq "every section of docs/runbook.md is an alert's, or Baselines" "Baselines $(cut -d' ' -f1 "$WORK/alerts.txt" | sort | paste -sd' ')" \
	"Baselines $(sed -n 's/^## //p' "$REPO/docs/runbook.md" | grep -vx Baselines | sort | paste -sd' ')"

# The notes helm prints after install (rendered offline by a client-side dry run).
notes=$("$HELM" install vmprobe "$CHART" --namespace vmprobe --dry-run=client "${ALL_ON[@]}" 2>&1 | sed -n '/^NOTES:/,$p')
home=$(sed -n 's/^home: *//p' "$CHART/Chart.yaml")
check "the notes name the runbook of this version" grep -qF "runbooks at $home/blob/v" <<<"$notes"
check "the notes name the kube-state-metrics allowlist VmprobeMissingOnNode needs" \
	grep -qF -- "--metric-labels-allowlist=nodes=[kubevirt.io/schedulable]" <<<"$notes"

# Plain kubectl: make deploy/vmprobe.yaml.
check "make deploy/vmprobe.yaml renders the chart" make -C "$REPO" --no-print-directory -s deploy/vmprobe.yaml
if [ -f "$REPO/deploy/vmprobe.yaml" ]; then
	check_eq "deploy/vmprobe.yaml starts with its privileged namespace, then the defaults" \
		"Namespace privileged ConfigMap DaemonSet Service ServiceAccount" \
		"$(tojson "$REPO/deploy/vmprobe.yaml" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d[0]["kind"], d[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], " ".join(sorted(x["kind"] for x in d[1:])))')"
	out=$(validate "$REPO/deploy/vmprobe.yaml" 2>&1)
	check_eq "every object of deploy/vmprobe.yaml is valid" "" "$(grep -v '^ok ' <<<"$out")"
fi

# The chart README documents every top-level value.
for key in $(tojson "$CHART/values.yaml" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)[0]))'); do
	check "the chart README documents the value $key" grep -q "\`$key" "$CHART/README.md"
done
tap_done

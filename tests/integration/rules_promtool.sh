#!/bin/bash
# The chart's alert and recording rules, taken from the rendered
# PrometheusRule: `promtool check rules`, and `promtool test rules` with
# tests/k8s/rules_test.yaml and rules_baseline_test.yaml (a week of
# synthetic series: baselines, z-scores, anomaly alerts). Coverage: every
# alert has a case where it fires and one where it does not, and every
# recording rule (each quantile of it) a case with its expected samples,
# so that a rule added without a test fails here. Values: every alert can
# be switched off alone; its for, severity and each threshold reach its
# expression; the baseline's days and minDays, the nodeSelector and the
# runbook base URL reach the rules.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/k8s/lib.sh"

if ! command -v promtool >/dev/null; then
	tap_skip "the chart's rules under promtool" "promtool is not installed (Debian package prometheus)"
	tap_done; exit
fi
if ! k8s_tools; then
	tap_skip "the chart's rules under promtool" "$K8S_TOOLS_ERR"
	tap_done; exit
fi
WORK=$(mktemp -d /tmp/vmprobe-rules.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
TESTS=(rules_test.yaml rules_baseline_test.yaml)

# The tests' runbook links are this base's, whatever the chart's version.
render "$WORK/all.yaml" "${ALL_ON[@]}" --set prometheusRule.runbookBaseUrl=https://docs.example/vmprobe
check "the rendered PrometheusRule holds the rule groups" rules_of "$WORK/all.yaml" "$WORK/rules.json"
check "promtool check rules accepts them" promtool check rules "$WORK/rules.json"

for t in "${TESTS[@]}"; do
	cp "$REPO/tests/k8s/$t" "$WORK/"
	if out=$(promtool test rules "$WORK/$t" 2>&1); then
		tap_ok "promtool test rules $t: every case passes"
	else
		tap_fail "promtool test rules $t: every case passes" "$(echo "$out" | head -60)"
	fi
done

# Coverage, from the rendered rules and the test files.
tojson "${TESTS[@]/#/$WORK/}" >"$WORK/tests.json"
cat >"$WORK/coverage.py" <<'PY'
import json, re, sys
rules = json.load(open(sys.argv[1]))
fires, silent, samples = set(), set(), []
for f in json.load(open(sys.argv[2])):
    for t in f["tests"]:
        for a in t.get("alert_rule_test", []):
            (fires if a.get("exp_alerts") else silent).add(a["alertname"])
        for e in t.get("promql_expr_test", []):
            for s in e.get("exp_samples") or []:
                m = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{(.*)\}\s*$", s["labels"])
                if m:
                    samples.append((m.group(1), dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', m.group(2)))))
for g in rules["groups"]:
    for r in g["rules"]:
        if "alert" in r:
            n = r["alert"]
            print("alert", n, "fires" if n in fires else "-", "silent" if n in silent else "-")
        else:
            static = r.get("labels", {})
            tested = any(name == r["record"] and all(l.get(k) == v for k, v in static.items())
                         for name, l in samples)
            what = r["record"] + "".join("{%s=%s}" % kv for kv in static.items())
            print("record", what, "tested" if tested else "-", "-")
PY
python3 "$WORK/coverage.py" "$WORK/rules.json" "$WORK/tests.json" >"$WORK/coverage.txt"
# The check itself: a rule and an alert added without a test are caught,
# and so is a quantile of a tested record that has no case of its own.
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
r["groups"].append({"name": "untested", "rules": [
    {"record": "vm:vmprobe_untested:rate5m", "expr": "1"},
    {"record": "vm_drive:vmprobe_disk_latency_seconds:quantile5m", "expr": "1", "labels": {"quantile": "0.9"}},
    {"alert": "VmprobeUntested", "expr": "1"}]})
json.dump(r, open(sys.argv[2], "w"))' "$WORK/rules.json" "$WORK/rules-plus.json"
check_eq "the coverage check catches an untested record, quantile and alert" \
	"record vm:vmprobe_untested:rate5m - -|record vm_drive:vmprobe_disk_latency_seconds:quantile5m{quantile=0.9} - -|alert VmprobeUntested - -" \
	"$(python3 "$WORK/coverage.py" "$WORK/rules-plus.json" "$WORK/tests.json" | tail -3 | paste -sd'|')"
while read -r kind name a b; do
	if [ "$kind" = alert ]; then
		check_eq "alert $name is shown firing and not firing" "fires silent" "$a $b"
	else
		check_eq "recording rule $name has a test with its expected samples" tested "$a"
	fi
done <"$WORK/coverage.txt"

# The names of the rendered alerts (with HELM_ARGS), one line.
alerts_of() { # OUT.yaml [HELM_ARGS...]
	local out=$1; shift
	render "$out" --set prometheusRule.enabled=true "$@" && rules_of "$out" "$out.json" &&
		python3 -c 'import json,sys; print(" ".join(r["alert"] for g in json.load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r))' "$out.json"
}
all=$(alerts_of "$WORK/a.yaml")
values_alerts=$(tojson "$CHART/values.yaml" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)[0]["prometheusRule"]["alerts"]))')
check_eq "values.yaml has an entry for every alert the chart renders, in order" "$all" "$values_alerts"
for a in $values_alerts; do
	check_eq "prometheusRule.alerts.$a.enabled=false removes $a alone" \
		"$(tr ' ' '\n' <<<"$all" | grep -vx "$a" | paste -sd' ')" \
		"$(alerts_of "$WORK/a.yaml" --set "prometheusRule.alerts.$a.enabled=false")"
done

# for, severity and every threshold of each alert: distinct values, each
# found in its own alert.
tojson "$CHART/values.yaml" | python3 -c '
import json, sys
alerts = json.load(sys.stdin)[0]["prometheusRule"]["alerts"]
for i, (a, v) in enumerate(alerts.items()):
    print(a, "for", "%dm" % (101 + i))
    print(a, "severity", "sev%d" % i)
    for j, k in enumerate(k for k in v if k not in ("enabled", "for", "severity")):
        print(a, k, "0.%03d%d7" % (i, j))' >"$WORK/custom.txt"
args=()
while read -r a k v; do args+=(--set "prometheusRule.alerts.$a.$k=$v"); done <"$WORK/custom.txt"
render "$WORK/c.yaml" --set prometheusRule.enabled=true "${args[@]}" && rules_of "$WORK/c.yaml" "$WORK/c.json"
python3 - "$WORK/c.json" "$WORK/custom.txt" <<'PY' >"$WORK/custom-check.txt"
import json, sys
rules = {r["alert"]: r for g in json.load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r}
for line in open(sys.argv[2]):
    a, k, v = line.split()
    r = rules.get(a, {})
    got = {"for": r.get("for"), "severity": r.get("labels", {}).get("severity")}.get(k)
    ok = got == v if k in ("for", "severity") else v in r.get("expr", "")
    print(a, k, v, "ok" if ok else "missing")
PY
while read -r a k v verdict; do
	check_eq "prometheusRule.alerts.$a.$k=$v reaches $a" ok "$verdict"
done <"$WORK/custom-check.txt"
check "promtool check rules accepts the customised rules" promtool check rules "$WORK/c.json"

# The baseline's span, and switching it off.
render "$WORK/b.yaml" --set prometheusRule.enabled=true --set prometheusRule.baseline.days=3 \
	--set prometheusRule.baseline.minDays=2 --set prometheusRule.baseline.minStddev.diskLatencySeconds=0.0217 \
	--set prometheusRule.baseline.minStddev.rttSeconds=0.0227 --set prometheusRule.baseline.minStddev.dropRatio=0.0237 &&
	rules_of "$WORK/b.yaml" "$WORK/b.json"
check_eq "baseline.days=3, minDays=2: three days' offsets (23h30m, 47h30m, 71h30m) and a count below 2" \
	"1410m 2850m 4290m; < 2" "$(python3 -c '
import json, re, sys
r = [r for g in json.load(open(sys.argv[1]))["groups"] for r in g["rules"]
     if r.get("record") == "vm_drive:vmprobe_disk_latency_seconds:p99_baseline_avg"][0]["expr"]
print(" ".join(sorted(set(re.findall(r"offset (\d+m)", r)), key=lambda s: int(s[:-1]))) + ";", re.search(r"\) (< \d+)\s*$", r).group(1))' "$WORK/b.json")"
check_eq "baseline.minStddev.* are the z-scores' least deviations" \
	"vm_drive:vmprobe_disk_latency_seconds:p99_zscore 0.0217 vm_interface:vmprobe_network_tcp_rtt_seconds:p99_zscore 0.0227 vm_interface:vmprobe_network_drops:ratio_zscore 0.0237" \
	"$(python3 -c '
import json, re, sys
print(" ".join("%s %s" % (r["record"], re.search(r"clamp_min\([^,]*, ([0-9.]+)\)", r["expr"]).group(1))
      for g in json.load(open(sys.argv[1]))["groups"] for r in g["rules"] if r.get("record", "").endswith("_zscore")))' "$WORK/b.json")"
check "promtool check rules accepts them" promtool check rules "$WORK/b.json"
out=$(render "$WORK/x.yaml" --set prometheusRule.enabled=true --set prometheusRule.baseline.minDays=8 2>&1)
check_eq "baseline.minDays above baseline.days is refused, naming both" "minDays (8) ... days (7)" \
	"$(grep -o 'minDays (8) is more than prometheusRule.baseline.days (7)' <<<"$out" | sed 's/ is more than prometheusRule.baseline./ ... /')"
check_eq "baseline.enabled=false: no baseline group and no anomaly alert" \
	"$(tr ' ' '\n' <<<"$all" | grep -v Anomaly | paste -sd' ') | groups: vmprobe.rules vmprobe.trends vmprobe.alerts" \
	"$(alerts_of "$WORK/n.yaml" --set prometheusRule.baseline.enabled=false) | groups: $(python3 -c 'import json,sys; print(" ".join(g["name"] for g in json.load(open(sys.argv[1]))["groups"]))' "$WORK/n.yaml.json")"
check "promtool check rules accepts them" promtool check rules "$WORK/n.yaml.json"

# The job, the nodeSelector and the runbook base.
render "$WORK/t.yaml" --set prometheusRule.enabled=true --set prometheusRule.job=vmprobe-hosts \
	--set prometheusRule.alertLabels.team=virt --set prometheusRule.alertLabels.severity=page \
	--set 'nodeSelector.kubevirt\.io/schedulable=null' --set 'nodeSelector.node-role\.kubernetes\.io/virt=yes' &&
	rules_of "$WORK/t.yaml" "$WORK/t.json"
check_eq "alertLabels reach every alert; each keeps its own severity" \
	"$(python3 -c 'import json,sys; print(" ".join("%s:virt:%s" % (a, v["severity"]) for a, v in json.load(sys.stdin)[0]["prometheusRule"]["alerts"].items()))' \
		< <(tojson "$CHART/values.yaml"))" \
	"$(python3 -c 'import json,sys; print(" ".join("%s:%s:%s" % (r["alert"], r["labels"].get("team"), r["labels"]["severity"]) for g in json.load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r))' "$WORK/t.json")"
check "prometheusRule.job selects the targets" grep -q 'up{job=\\"vmprobe-hosts\\"} == 0' "$WORK/t.json"
check "the DaemonSet's nodeSelector is what VmprobeMissingOnNode expects of kube_node_labels" \
	grep -q 'kube_node_labels{label_node_role_kubernetes_io_virt=\\"yes\\"}' "$WORK/t.json"
home=$(sed -n 's/^home: *//p' "$CHART/Chart.yaml") app=$(sed -n 's/^appVersion: *"\?\([^"]*\)"\?/\1/p' "$CHART/Chart.yaml")
check_eq "by default each runbook_url is Chart.yaml's home, docs/runbook.md at tag v<appVersion>, #alertname" \
	"$(for a in $all; do echo -n "$home/blob/v$app/docs/runbook.md#${a,,} "; done)" \
	"$(python3 -c 'import json,sys; print("".join(r["annotations"]["runbook_url"] + " " for g in json.load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r))' "$WORK/t.json")"
check_fails "values.schema.json refuses a runbookBaseUrl that is no http(s) URL" \
	render "$WORK/x.yaml" --set prometheusRule.runbookBaseUrl=docs/runbook
tap_done

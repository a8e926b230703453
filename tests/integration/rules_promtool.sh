#!/bin/bash
# The chart's alert and recording rules, taken from the rendered
# PrometheusRule: `promtool check rules`, and `promtool test rules` with
# tests/k8s/rules_test.yaml, where every alert has a case that fires (with
# its labels and rendered annotations) and one that does not. Thresholds
# from values reach the expressions.
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

render "$WORK/all.yaml" "${ALL_ON[@]}"
check "the rendered PrometheusRule holds the rule groups" rules_of "$WORK/all.yaml" "$WORK/rules.json"
check "promtool check rules accepts them" promtool check rules "$WORK/rules.json"

cp "$REPO/tests/k8s/rules_test.yaml" "$WORK/"
if out=$(promtool test rules "$WORK/rules_test.yaml" 2>&1); then
	tap_ok "promtool test rules: every case passes"
else
	tap_fail "promtool test rules: every case passes" "$(echo "$out" | head -60)"
fi

# Coverage: each alert fires in some case and stays silent in another, and
# each recording rule is used by an alert, the dashboard or a test.
python3 - "$WORK/rules.json" "$WORK/rules_test.yaml" "$(tojson "$WORK/rules_test.yaml")" <<'PY' >"$WORK/coverage.txt"
import json, sys
rules = json.load(open(sys.argv[1]))
tests = json.loads(sys.argv[3])[0]["tests"]
fires, silent = set(), set()
for t in tests:
    for a in t.get("alert_rule_test", []):
        (fires if a.get("exp_alerts") else silent).add(a["alertname"])
for g in rules["groups"]:
    for r in g["rules"]:
        if "alert" in r:
            n = r["alert"]
            print(n, "fires" if n in fires else "-", "silent" if n in silent else "-")
PY
while read -r alert f s; do
	check_eq "alert $alert is shown firing and not firing" "fires silent" "$f $s"
done <"$WORK/coverage.txt"

# Thresholds from values reach the expressions.
render "$WORK/t.yaml" --set prometheusRule.enabled=true --set prometheusRule.thresholds.diskLatencyP99Seconds=0.5 \
	--set-json prometheusRule.thresholds.guestRttDegradationFactor=4 --set prometheusRule.job=vmprobe-hosts
rules_of "$WORK/t.yaml" "$WORK/t.json"
check "diskLatencyP99Seconds=0.5 sets the disk alert's threshold" \
	grep -q 'quantile5m{quantile=\\"0.99\\"} > 0.5' "$WORK/t.json"
check "guestRttDegradationFactor=4 sets the RTT alert's factor" grep -q '> 4 \* vm_interface' "$WORK/t.json"
check "prometheusRule.job selects the targets" grep -q 'up{job=\\"vmprobe-hosts\\"} == 0' "$WORK/t.json"
check "promtool check rules accepts the customised rules" promtool check rules "$WORK/t.json"
tap_done

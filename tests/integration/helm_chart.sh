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

# The image reference: repository:tag, the tag defaulting to the chart's
# appVersion; a digest wins over the tag.
image_of() { render "$WORK/img.yaml" "$@" && sed -n 's/^ *image: //p' "$WORK/img.yaml"; }
app=$(sed -n 's/^appVersion: *//p' "$CHART/Chart.yaml" | tr -d '"')
DIGEST=sha256:$(printf vmprobe | sha256sum | cut -d' ' -f1)
check_eq "image: the tag defaults to the chart's appVersion" "\"vmprobe:$app\"" "$(image_of)"
check_eq "image: repository and tag as given" '"registry.example/vmprobe:1.2.3"' \
	"$(image_of --set image.repository=registry.example/vmprobe --set image.tag=1.2.3)"
check_eq "image: a digest wins over the tag" "\"registry.example/vmprobe@$DIGEST\"" \
	"$(image_of --set image.repository=registry.example/vmprobe --set image.tag=1.2.3 --set image.digest=$DIGEST)"
for bad in image.digest=latest image.digest=sha256:xyz image.repository=; do
	check_fails "values.schema.json refuses --set $bad" render "$WORK/x.yaml" --set "$bad"
done
# Chart.yaml says where the chart comes from and who keeps it.
chart_meta() { tojson "$CHART/Chart.yaml" | python3 -c '
import json, sys
c = json.load(sys.stdin)[0]
assert c["home"].startswith("https://"), c["home"]
assert c["sources"] and all(s.startswith("https://") for s in c["sources"]), c["sources"]
assert c["maintainers"] and all(m.get("name") and (m.get("url") or m.get("email")) for m in c["maintainers"]), c["maintainers"]
'; }
check "Chart.yaml has home, sources and maintainers" chart_meta
# One release: the chart's appVersion (the image's default tag) is VERSION
# (what make image tags and vmprobe --version says), which CHANGELOG.md has.
version=$(cat "$REPO/VERSION")
check_eq "Chart.yaml's appVersion is VERSION" "$version" "$app"
check "CHANGELOG.md has a section for $version" grep -q "^## $version\b" "$REPO/CHANGELOG.md"

# A hardened install (tests/k8s/hardened-values.yaml): TLS with client
# certificates, basic authentication, a NetworkPolicy, every extension.
HARD=(-f "$REPO/tests/k8s/hardened-values.yaml")
check "helm lint --strict (hardened values)" "$HELM" lint --strict "$CHART" "${HARD[@]}"
check "helm template renders the hardened values" render "$WORK/hard.yaml" "${HARD[@]}"
check_eq "hardened: a NetworkPolicy and the web configuration's Secret are added" \
	"ConfigMap DaemonSet NetworkPolicy Secret Service ServiceAccount ServiceMonitor" "$(kinds "$WORK/hard.yaml")"
out=$(validate "$WORK/hard.yaml" 2>&1)
while read -r verdict rest; do
	case $verdict in
	ok) tap_ok "hardened: $rest is valid against its API schema, no unknown field" ;;
	*) tap_fail "hardened: ${rest%%:*} is valid against its API schema" "$verdict ${rest#*: }" ;;
	esac
done <<<"$out"
sed 's/policyTypes:/policyType:/; s/stringData:/stringdata:/' "$WORK/hard.yaml" >"$WORK/bad-hard.yaml"
bad=$(validate "$WORK/bad-hard.yaml" 2>&1)
check "the validator refuses an unknown NetworkPolicy field (policyType)" grep -q "FAIL NetworkPolicy.*policyType" <<<"$bad"
check "the validator refuses an unknown Secret field (stringdata)" grep -q "FAIL Secret.*stringdata" <<<"$bad"

# What the objects say to each other: one JSON line of facts, checked one by one.
facts() { # MANIFESTS WEB_OUT: the facts of the rendered objects as KEY VALUE lines; the web configuration into WEB_OUT
	tojson "$1" | python3 -c '
import json, os, sys
docs = json.load(sys.stdin)
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
ds = [d for d in docs if d["kind"] == "DaemonSet"][0]
pod = ds["spec"]["template"]["spec"]
c = pod["containers"][0]
def out(k, v): print(k, v if isinstance(v, str) else json.dumps(v, sort_keys=True))
out("args", " ".join(c["args"]))
out("sc", c["securityContext"])
for p in ("livenessProbe", "readinessProbe"):
    pr = c.get(p, {})
    out(p, ("httpGet %s %s %s" % (pr["httpGet"]["path"], pr["httpGet"]["port"], pr["httpGet"].get("scheme", "HTTP")))
        if "httpGet" in pr else "tcpSocket %s" % pr["tcpSocket"]["port"] if "tcpSocket" in pr else "none")
# The files the container sees under each projected mount: path -> source (and mode).
vols = {v["name"]: v for v in pod["volumes"]}
files = {}
for m in c["volumeMounts"]:
    for s in vols[m["name"]].get("projected", {}).get("sources", []):
        kind = "configMap" if "configMap" in s else "secret"
        src = s[kind]
        obj = by.get(("ConfigMap" if kind == "configMap" else "Secret", src["name"]))
        keys = [(i["key"], i["path"], i.get("mode")) for i in src["items"]] if "items" in src else \
            [(k, k, None) for k in (obj or {}).get("data", {}) | (obj or {}).get("stringData", {})]
        for key, path, mode in keys:
            files[os.path.join(m["mountPath"], path)] = "%s/%s:%s%s" % (kind, src["name"], key, "" if mode is None else " mode %o" % mode)
for f in sorted(files): out("file", f + " " + files[f])
web = None
if "--web.config.file" in c["args"]:
    wf = c["args"][c["args"].index("--web.config.file") + 1]
    kind, ref = files.get(wf, "none none:").split(" ")[0].split("/", 1)
    name, key = ref.split(":")
    sec = by.get(("Secret", name), {})
    web = sec.get("stringData", {}).get(key)
    out("webfile", wf)
    if web is not None:
        open(sys.argv[1], "w").write(web)
else:
    out("webfile", "none")
out("envnames", " ".join(e["name"] for e in c.get("env", [])))
out("envfrom", c.get("envFrom", []))
out("mounts", " ".join(m["mountPath"] for m in c["volumeMounts"]))
out("volumes", " ".join(v["name"] for v in pod["volumes"]))
out("containers", " ".join(x["name"] for x in pod["containers"]))
for k in ("priorityClassName", "tolerations", "affinity"): out(k, pod.get(k))
out("resources", c.get("resources"))
out("updateStrategy", ds["spec"].get("updateStrategy"))
out("podmeta", {"labels": ds["spec"]["template"]["metadata"]["labels"], "annotations": {k: v for k, v in ds["spec"]["template"]["metadata"]["annotations"].items() if not k.startswith("checksum/")}})
out("checksums", " ".join(sorted(k for k in ds["spec"]["template"]["metadata"]["annotations"] if k.startswith("checksum/"))))
out("checksum-web", ds["spec"]["template"]["metadata"]["annotations"].get("checksum/web", "none"))
out("selector", ds["spec"]["selector"]["matchLabels"])
out("port", c["ports"][0]["containerPort"])
svc = [d for d in docs if d["kind"] == "Service"][0]
out("service", "%s.%s.svc" % (svc["metadata"]["name"], svc["metadata"]["namespace"]))
out("svc-scheme", svc["metadata"].get("annotations", {}).get("prometheus.io/scheme", "none"))
for d in docs:
    if d["kind"] == "ServiceMonitor":
        e = d["spec"]["endpoints"][0]
        out("sm-scheme", e["scheme"])
        out("sm-tls", e.get("tlsConfig"))
        out("sm-auth", e.get("basicAuth"))
    if d["kind"] == "NetworkPolicy":
        out("np-selector", d["spec"]["podSelector"]["matchLabels"])
        out("np-types", " ".join(d["spec"]["policyTypes"]))
        out("np-ingress", d["spec"]["ingress"])
        out("np-egress", d["spec"].get("egress", "none"))
' "$2"
}
fact() { sed -n "s/^$1 //p" "$2"; }
facts "$WORK/hard.yaml" "$WORK/web.yml" >"$WORK/hard.txt"
facts "$WORK/default.yaml" "$WORK/web-other.yml" >"$WORK/default.txt"
H=$WORK/hard.txt D=$WORK/default.txt
check_eq "defaults: no web configuration, plain HTTP probes and scrapes" \
	"serve -c /etc/vmprobe/config.yaml|none|httpGet /healthz metrics HTTP|none" \
	"$(fact args $D)|$(fact webfile $D)|$(fact livenessProbe $D)|$(fact svc-scheme $D)"
check_eq "hardened: --web.config.file, then extraArgs" \
	"serve -c /etc/vmprobe/config.yaml --web.config.file /etc/vmprobe/web.yml --web.max-requests=10" "$(fact args $H)"
check_eq "the file --web.config.file names is the chart's Secret, mode 0400" \
	"/etc/vmprobe/web.yml secret/vmprobe-web:web.yml mode 400" "$(fact file $H | grep '^/etc/vmprobe/web.yml ')"
check_eq "and config.yaml is still the chart's ConfigMap, beside it" \
	"/etc/vmprobe/config.yaml configMap/vmprobe:config.yaml" "$(fact file $H | grep '^/etc/vmprobe/config.yaml ')"
# Each file the web configuration names, relative to its directory, must be
# one the pod has, from the Secret the values name.
webfiles=$(tojson "$WORK/web.yml" | python3 -c '
import json, os, sys
w = json.load(sys.stdin)[0]
t = w["tls_server_config"]
for k in ("cert_file", "key_file", "client_ca_file"):
    print(k, os.path.join(os.path.dirname(sys.argv[1]), t[k]))
print("client_auth_type", t["client_auth_type"], "min_version", t["min_version"])
print("users", " ".join(sorted(w["basic_auth_users"])), "headers", " ".join(sorted(w["http_server_config"]["headers"])))' \
	"$(fact webfile $H)" 2>&1)
where() { fact file $H | grep "^$(sed -n "s/^$1 //p" <<<"$webfiles") " | cut -d' ' -f2-; }
check_eq "web config cert_file: tls.crt of web.tls.secretName" "secret/vmprobe-tls:tls.crt" "$(where cert_file)"
check_eq "web config key_file: tls.key of web.tls.secretName, mode 0400" "secret/vmprobe-tls:tls.key mode 400" "$(where key_file)"
check_eq "web config client_ca_file: ca.crt of web.tls.clientCASecretName" "secret/scrapers-ca:ca.crt" "$(where client_ca_file)"
check_eq "web config: client_auth_type and min_version from the values" \
	"client_auth_type RequireAndVerifyClientCert min_version TLS13" "$(grep '^client_auth_type' <<<"$webfiles")"
check_eq "web config: the users and headers of the values" "users prometheus headers Strict-Transport-Security" \
	"$(grep '^users' <<<"$webfiles")"
check_eq "client certificates required: the kubelet's probes connect to the port (an HTTPS GET would get 403)" \
	"tcpSocket metrics tcpSocket metrics" "$(fact livenessProbe $H) $(fact readinessProbe $H)"
render "$WORK/tls.yaml" --set web.tls.enabled=true --set web.tls.secretName=vmprobe-tls --set serviceMonitor.enabled=true \
	--set-json 'web.basicAuth.users={"p":"$2b$10$C6UzMDM.H6dfI/f/IKxGhuWHFgq1/y8OuziAdOx8Kp4u/PkIJ.yt."}' \
	--set serviceMonitor.basicAuth.secretName=auth
facts "$WORK/tls.yaml" "$WORK/web-other.yml" >"$WORK/tls.txt"
T=$WORK/tls.txt
check_eq "TLS without client certificates: HTTPS probes of /healthz (no password needed)" \
	"httpGet /healthz metrics HTTPS httpGet /healthz metrics HTTPS" "$(fact livenessProbe $T) $(fact readinessProbe $T)"
check_eq "TLS without client certificates: no client CA file" "" "$(fact file $T | grep client-ca)"
check_eq "TLS: the Service's scrape annotations say https" "https https" "$(fact svc-scheme $T) $(fact svc-scheme $H)"
check_eq "the ServiceMonitor scrapes https" "https https" "$(fact sm-scheme $T) $(fact sm-scheme $H)"
check_eq "its tlsConfig: ca.crt of web.tls.secretName, the Service's DNS name" \
	"{\"ca\": {\"secret\": {\"key\": \"ca.crt\", \"name\": \"vmprobe-tls\"}}, \"serverName\": \"$(fact service $T)\"}" \
	"$(fact sm-tls $T)"
check_eq "with client certificates: the values' cert and key added to it" \
	"{\"ca\": {\"secret\": {\"key\": \"ca.crt\", \"name\": \"vmprobe-tls\"}}, \"cert\": {\"secret\": {\"key\": \"tls.crt\", \"name\": \"vmprobe-scraper\"}}, \"keySecret\": {\"key\": \"tls.key\", \"name\": \"vmprobe-scraper\"}, \"serverName\": \"$(fact service $H)\"}" \
	"$(fact sm-tls $H)"
check_eq "its basicAuth: the user name and password of serviceMonitor.basicAuth.secretName" \
	'{"password": {"key": "password", "name": "vmprobe-scrape-auth"}, "username": {"key": "username", "name": "vmprobe-scrape-auth"}}' \
	"$(fact sm-auth $H)"
check_eq "the NetworkPolicy selects exactly the DaemonSet's pods" "$(fact selector $H)" "$(fact np-selector $H)"
check_eq "it lets only the scrapers (and the extra peers) reach the metrics port" \
	"[{\"from\": [{\"namespaceSelector\": {\"matchLabels\": {\"kubernetes.io/metadata.name\": \"monitoring\"}}, \"podSelector\": {\"matchLabels\": {\"app.kubernetes.io/name\": \"prometheus\"}}}, {\"ipBlock\": {\"cidr\": \"192.0.2.0/24\"}}], \"ports\": [{\"port\": $(fact port $H), \"protocol\": \"TCP\"}]}]" \
	"$(fact np-ingress $H)"
check_eq "and the pod no connection out (egress: [])" "Ingress Egress []" "$(fact np-types $H) $(fact np-egress $H)"
render "$WORK/np.yaml" --set networkPolicy.enabled=true --set networkPolicy.egress=null
facts "$WORK/np.yaml" "$WORK/web-other.yml" >"$WORK/np.txt"
check_eq "networkPolicy.egress=null: no egress policy" "Ingress none" "$(fact np-types "$WORK/np.txt") $(fact np-egress "$WORK/np.txt")"
check_eq "extraEnv and extraEnvFrom" 'TZ [{"configMapRef": {"name": "vmprobe-env"}}]' "$(fact envnames $H) $(fact envfrom $H)"
check "extraVolumeMounts after the chart's" grep -q ' /run/vmprobe /scratch$' <<<"$(fact mounts $H)"
check "extraVolumes after the chart's" grep -q ' run scratch$' <<<"$(fact volumes $H)"
check_eq "extraContainers beside vmprobe" "vmprobe sidecar" "$(fact containers $H)"
check_eq "priorityClassName" system-node-critical "$(fact priorityClassName $H)"
check_eq "tolerations as given" '[{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]' \
	"$(fact tolerations $H)"
check "affinity as given" grep -q '"kubernetes.io/arch"' <<<"$(fact affinity $H)"
check_eq "resources as given" '{"limits": {"memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}' "$(fact resources $H)"
check_eq "updateStrategy as given" '{"rollingUpdate": {"maxUnavailable": "10%"}, "type": "RollingUpdate"}' "$(fact updateStrategy $H)"
check "podAnnotations, podLabels and commonLabels on the pods" python3 -c '
import json, sys
m = json.loads(sys.argv[1])
sys.exit(not (m["annotations"] == {"example.com/owner": "virt-team"} and m["labels"]["example.com/tier"] == "monitoring"
              and m["labels"]["example.com/cost-center"] == "42"))' "$(fact podmeta $H)"
check_eq "a checksum of the web configuration rolls the pods when it changes" "checksum/config checksum/web" "$(fact checksums $H)"
render "$WORK/hard2.yaml" "${HARD[@]}" --set web.basicAuth.users.other='$2b$10$C6UzMDM.H6dfI/f/IKxGhuWHFgq1/y8OuziAdOx8Kp4u/PkIJ.yt.'
facts "$WORK/hard2.yaml" "$WORK/web-other.yml" >"$WORK/hard2.txt"
check "one more user: another checksum" test "$(fact checksum-web $H)" != "$(fact checksum-web "$WORK/hard2.txt")"

# Values that cannot work are refused by the schema or by the chart, saying which.
for bad in web.tls.clientAuthType=Sometimes web.tls.minVersion=SSL3 web.basicAuth.users.prom=plain \
	"web.headers.bad name=1" web.headers.Content-Type=x web.headers.X-Frame-Options=allow web.tls.enabled=true networkPolicy.typo=1 securityContext.privilegd=true \
	updateStrategy.type=Replace resources.limits.memory=lots serviceMonitor.tlsConfig.typo=1 \
	tolerations[0].operatr=Exists extraArgs[0].x=1; do
	check_fails "values.schema.json refuses --set $bad" render "$WORK/x.yaml" --set "$bad"
done
check_fails "values.schema.json refuses an extraVolumeMount without mountPath" \
	render "$WORK/x.yaml" --set-json 'extraVolumeMounts=[{"name":"x"}]'
check_fails "values.schema.json refuses an extraEnv entry without name" \
	render "$WORK/x.yaml" --set-json 'extraEnv=[{"value":"x"}]'
refused() { # DESC WANT HELM_ARGS...: helm template fails and says WANT
	local desc=$1 want=$2 out; shift 2
	out=$(render "$WORK/x.yaml" "$@" 2>&1) && { tap_fail "$desc" "it rendered"; return; }
	check "$desc" grep -qF -- "$want" <<<"$out"
}
refused "client certificates required but no certificate for Prometheus: refused, naming the values" \
	"web.tls.clientAuthType RequireAndVerifyClientCert: set serviceMonitor.tlsConfig.cert and keySecret" \
	--set web.tls.enabled=true --set web.tls.secretName=s --set web.tls.clientAuthType=RequireAndVerifyClientCert \
	--set serviceMonitor.enabled=true
refused "basic authentication but no password for Prometheus: refused, naming the values" \
	"web.basicAuth.users is set: serviceMonitor.basicAuth.secretName must name" \
	--set serviceMonitor.enabled=true \
	--set-json 'web.basicAuth.users={"p":"$2b$10$C6UzMDM.H6dfI/f/IKxGhuWHFgq1/y8OuziAdOx8Kp4u/PkIJ.yt."}'

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
print("allowPrivilegeEscalation", sc.get("allowPrivilegeEscalation", True))
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

# Capabilities: the systemd unit's (packaging/vmprobe.service.in, which
# service_caps.sh proves) plus SYS_ADMIN for setns(), which the unit does
# not need: each with its evidence in the source.
: >"$WORK/needed"
need() { # CAP REASON PATTERN PATH (a file, or a folder searched for *.c)
	local ev
	ev=$(grep -rHnE --include='*.c' "$3" "$REPO/$4" 2>/dev/null | grep -vE '^[^:]+:[0-9]+:\s*(\*|/\*|//)' | head -1)
	if [ -n "$ev" ]; then
		echo "$1" >>"$WORK/needed"
		ev=${ev#"$REPO/"}
		tap_ok "the source needs $1: $2 (${ev:0:120})"
	else
		tap_fail "the source needs $1: $2" "no match of $3 in $4"
	fi
}
need BPF "load programs and maps" '__open_and_load|bpf_object__load|_bpf__load' user
need PERFMON "tracepoints" 'bpf_program__attach_tracepoint|bpf_program__attach\(' user
need NET_ADMIN "TC programs, clsact qdisc and filters on the taps" 'bpf_tc_hook_create\(|bpf_tc_attach\(|RTM_NEWTFILTER' user
need SYS_PTRACE "/proc/PID/fd, ns/net, root of QEMU running as another user" '"(fd|ns/net)"\)|"%s/%d/(fd|fdinfo|root)/' user
need DAC_READ_SEARCH "list /proc/PID/fd (mode 0500, QEMU's user) and reach images in private dirs" 'opendir\(|"%s/%d/fd/%s"' user/core/discovery.c
need SYSLOG "kernel addresses in /proc/kallsyms" '"/proc/kallsyms"' user
need SYS_ADMIN "setns() into the VMs' network namespaces" 'setns\(' user
unit_caps=$(sed -n 's/^AmbientCapabilities=//p' "$REPO/packaging/vmprobe.service.in" | tr ' ' '\n' | sed 's/^CAP_//' | sort | paste -sd,)
check_eq "the source's needs are the unit's capabilities and SYS_ADMIN" \
	"$(printf '%s\nSYS_ADMIN\n' "${unit_caps//,/$'\n'}" | sort | paste -sd,)" "$(sort "$WORK/needed" | paste -sd,)"
check_eq "the DaemonSet adds exactly those" "$(sort "$WORK/needed" | paste -sd,)" "$(ds add)"
check_eq "capabilities spelt without CAP_ (containerd would prefix it again: CAP_CAP_SYS_ADMIN grants nothing)" "" \
	"$(ds add | tr ',' '\n' | grep '^CAP_')"
check_eq "no privilege escalation (no_new_privs)" False "$(ds allowPrivilegeEscalation)"
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

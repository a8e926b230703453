#!/bin/bash
# The chart's TLS and basic authentication, for real. vmprobe runs as the
# rendered DaemonSet says: its args, its projected volume (config.yaml, the
# web configuration from the chart's Secret, the certificate Secrets) laid
# out as the kubelet lays it out, in a read-only root with the host's /proc
# at /host/proc, with the chart's capabilities and no_new_privs, in a
# network namespace of its own reached over a veth as a pod IP is, on the
# rendered port. curl plays the kubelet's probes and the scrapers; a real
# Prometheus scrapes it with the rendered ServiceMonitor's scheme,
# tlsConfig and basicAuth translated into its scrape config
# (tests/k8s/kubelet.py). Two installs: TLS and basic authentication
# (HTTPS probes), and client certificates required (TCP probes). Then a
# renewed certificate, written as the kubelet updates a Secret, is served
# without a restart.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/k8s/lib.sh"

what="the chart's TLS and basic authentication"
tap_require_root "$what"
tap_require_cmds "$what" openssl curl setpriv nsenter unshare python3 prometheus
if [ ! -x "$VMPROBE" ]; then
	tap_skip "$what" "build/vmprobe is not built (make all)"
	tap_done; exit
fi
k8s_tools_or_skip "$what"

WORK=$(mktemp -d /tmp/vmprobe-htls.XXXXXX)
chmod 755 "$WORK"
NS=vmpt-pod HOST_IF=vmpt-h POD_IF=vmpt-p HOST_IP=10.77.20.1 POD_IP=10.77.20.2 PROM_PORT=19598
VMPROBE_PID= PROM_PID=
stop_prometheus() {
	[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
	PROM_PID=
}
cleanup() {
	stop_prometheus
	vmprobe_stop >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# The pod's network: its own namespace, a veth to the host.
ip netns del "$NS" 2>/dev/null
ip netns add "$NS" &&
	ip link add "$HOST_IF" type veth peer name "$POD_IF" netns "$NS" &&
	ip addr add "$HOST_IP/30" dev "$HOST_IF" && ip link set "$HOST_IF" up &&
	ip -n "$NS" addr add "$POD_IP/30" dev "$POD_IF" && ip -n "$NS" link set "$POD_IF" up &&
	ip -n "$NS" link set lo up ||
	{ tap_fail "the pod's network namespace and veth are made"; tap_done; exit; }

# The cluster's Secrets (tests/k8s/kubelet.py reads SECRETS/NAME/KEY): a
# CA and vmprobe's certificate for the ServiceMonitor's serverName (as a
# cert-manager Certificate would hold them), the scrapers' CA and
# Prometheus' client certificate, Prometheus' user name and password.
S=$WORK/secrets
mkdir -p "$S/vmprobe-tls" "$S/scrapers-ca" "$S/vmprobe-scraper" "$S/vmprobe-scrape" "$WORK/pki"
P=$WORK/pki
PKI=$P
SERVER_NAME=vmprobe.vmprobe.svc # the release vmprobe in namespace vmprobe
SERVER_EXT="subjectAltName=DNS:$SERVER_NAME"$'\nextendedKeyUsage=serverAuth'
pki_ca cluster-ca && pki_ca scrapers-ca && pki_ca other-ca &&
	pki_cert server cluster-ca "$SERVER_NAME" "$SERVER_EXT" &&
	pki_cert scraper scrapers-ca prometheus "extendedKeyUsage=clientAuth" &&
	pki_cert stranger other-ca prometheus "extendedKeyUsage=clientAuth" ||
	{ tap_fail "openssl makes the test certificates"; tap_done; exit; }
cp "$P/server.crt" "$S/vmprobe-tls/tls.crt"; cp "$P/server.key" "$S/vmprobe-tls/tls.key"
cp "$P/cluster-ca.crt" "$S/vmprobe-tls/ca.crt"; cp "$P/scrapers-ca.crt" "$S/scrapers-ca/ca.crt"
cp "$P/scraper.crt" "$S/vmprobe-scraper/tls.crt"; cp "$P/scraper.key" "$S/vmprobe-scraper/tls.key"
printf prometheus >"$S/vmprobe-scrape/username"; printf 's3cret pass' >"$S/vmprobe-scrape/password"
HASH=$(bcrypt_hash 's3cret pass')

# run_pod INSTALL: renders the chart with tests' values INSTALL.yaml and
# runs vmprobe as its pod: OUT=$WORK/INSTALL holds what kubelet.py made.
run_pod() {
	local out=$WORK/$1 args=()
	render "$out.yaml" -f "$WORK/$1-values.yaml" || return 1
	tojson "$out.yaml" >"$out.json" &&
		python3 "$REPO/tests/k8s/kubelet.py" pod "$out.json" "$S" "$out" || return 1
	mapfile -d '' -t args <"$out/args"
	local caps bset nnp=""
	caps=$(cat "$out/caps")
	bset=-all$(echo "$caps" | tr 'A-Z' 'a-z' | tr ',' '\n' | sed '/^$/d; s/^/,+/' | tr -d '\n')
	[ "$(cat "$out/nnp")" = yes ] && nnp=--no-new-privs
	# The container's root: read-only, the host's /usr (its libraries) and
	# /etc (an overlay, for the mount points), /proc, /sys (BPF filesystem,
	# tracefs, BTF), /dev; the volumes at their mount paths; /host/proc.
	local R=$out/root
	mkdir -p "$R" "$out/etc-up" "$out/etc-work"
	nsenter --net="/run/netns/$NS" unshare --mount --propagation private sh -ec '
		R=$1 out=$2 bin=$3; shift 3
		mount -t tmpfs -o mode=0755 tmpfs "$R"
		for d in bin sbin lib lib32 lib64 libx32; do
			if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$R/$d"
			elif [ -d "/$d" ]; then mkdir "$R/$d"; mount --bind "/$d" "$R/$d"; mount -o remount,bind,ro "$R/$d"
			fi
		done
		mkdir -p "$R/usr" "$R/etc" "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/host/proc" "$R/opt"
		mount --bind /usr "$R/usr" && mount -o remount,bind,ro "$R/usr"
		mount -t overlay overlay -o "lowerdir=/etc,upperdir=$out/etc-up,workdir=$out/etc-work" "$R/etc"
		mount --rbind /proc "$R/proc"; mount --rbind /sys "$R/sys"; mount --rbind /dev "$R/dev"
		mount --bind /proc "$R/host/proc" && mount -o remount,bind,ro "$R/host/proc"
		mount -t tmpfs tmpfs "$R/run"
		while read -r vol path; do
			mkdir -p "$R$path"
			mount --bind "$out/vol/$vol" "$R$path" && mount -o remount,bind,ro "$R$path"
		done <"$out/mounts"
		cp "$bin" "$R/opt/vmprobe"
		mount -o remount,ro "$R"
		bset=$1 nnp=$2; shift 2
		exec chroot "$R" setpriv --bounding-set="$bset" --inh-caps=-all $nnp /opt/vmprobe "$@"' \
		sh "$R" "$out" "$VMPROBE" "$bset" "$nnp" "${args[@]}" >"$out/vmprobe.log" 2>&1 &
	VMPROBE_PID=$!
	PORT=$(cat "$out/port")
	URL=https://$SERVER_NAME:$PORT
	RESOLVE=(--resolve "$SERVER_NAME:$PORT:$POD_IP")
	wait_for 20 eval 'curl -sk -o /dev/null "https://$POD_IP:$PORT/"' || return 1
}
# The kubelet's probes: HTTPS without verifying the certificate and with
# no client certificate; a TCP connect.
probe() { # LINE of kubelet.py's probes: succeeds as the kubelet would count it
	local name kind scheme path port code
	read -r name kind scheme path port <<<"$1"
	case $kind in
	httpGet)
		code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "${scheme,,}://$POD_IP:$port$path")
		[ "$code" -ge 200 ] && [ "$code" -lt 400 ] ;;
	tcpSocket)
		port=$scheme
		timeout 5 bash -c "exec 3<>/dev/tcp/$POD_IP/$port" 2>/dev/null ;;
	*) return 1 ;;
	esac
}
# scrape_config INSTALL: the ServiceMonitor as a Prometheus scrape job.
scrape_config() { python3 "$REPO/tests/k8s/kubelet.py" scrape "$WORK/$1.json" "$S" "$WORK/$1/scrape"; }
prometheus_scrapes() { # INSTALL: a real Prometheus configured from the ServiceMonitor scrapes it
	local job
	if ! job=$(scrape_config "$1" 2>&1); then
		tap_fail "$1: the ServiceMonitor translates into a scrape config" "$job"
		return
	fi
	tap_ok "$1: the ServiceMonitor translates into a scrape config ($(grep -c . <<<"$job") lines)"
	if ! prometheus_start $PROM_PORT "$POD_IP:$PORT" "$job"; then
		tap_fail "$1: prometheus starts" "$(tail -5 "$WORK/prometheus-$PROM_PORT.log")"
		return
	fi
	up() { [ "$(promql 'up{job="vmprobe"}')" = 1 ]; }
	check "$1: Prometheus scrapes vmprobe with the ServiceMonitor's TLS and credentials: up == 1" wait_for 30 up
	check "$1: and stores its series" test -n "$(promql 'vmprobe_build_info')"
	stop_prometheus
	rm -rf "$WORK/tsdb-$PROM_PORT"
}

# --- 1. TLS and basic authentication, no client certificates. ---
cat >"$WORK/basic-values.yaml" <<YAML
web:
  tls: {enabled: true, secretName: vmprobe-tls}
  basicAuth:
    users: {prometheus: "$HASH"}
serviceMonitor:
  enabled: true
  basicAuth: {secretName: vmprobe-scrape}
YAML
if ! run_pod basic; then
	tap_fail "basic: vmprobe starts as the rendered pod" "$(tail -5 "$WORK/basic/vmprobe.log")"
	tap_done; exit
fi
tap_ok "basic: vmprobe starts as the rendered pod: $(tr '\0' ' ' <"$WORK/basic/args")"
check_eq "basic: the web configuration and certificates are read from the projected volume, no complaint" "" \
	"$(grep -E '^vmprobe: (warn|error)' "$WORK/basic/vmprobe.log" | grep -iE 'web|tls|certificate|key|/etc/vmprobe')"
check "basic: it says https with basic authentication" \
	grep -q "serving /metrics on :$PORT (https, basic authentication)" "$WORK/basic/vmprobe.log"
CA=(--cacert "$S/vmprobe-tls/ca.crt")
check_eq "basic: the ServiceMonitor's serverName is the one the certificate names" "$SERVER_NAME" \
	"$(scrape_config basic | sed -n 's/^ *server_name: //p')"
check_eq "basic: the certificate verifies against the Secret's ca.crt, for $SERVER_NAME" 200 \
	"$(http_get r "${CA[@]}" "${RESOLVE[@]}" -u 'prometheus:s3cret pass' "$URL/metrics")"
check "basic: and the metrics" grep -q '^vmprobe_build_info{' "$WORK/r.b"
check_eq "basic: no password: 401" 401 "$(http_get r "${CA[@]}" "${RESOLVE[@]}" "$URL/metrics")"
check_eq "basic: a wrong password: 401" 401 "$(http_get r "${CA[@]}" "${RESOLVE[@]}" -u prometheus:nope "$URL/metrics")"
check_eq "basic: plain HTTP to the TLS port gets no answer" 000 \
	"$(http_get r --max-time 5 "http://$POD_IP:$PORT/metrics")"
check_eq "basic: the probes are HTTPS GETs of /healthz" \
	"livenessProbe httpGet HTTPS /healthz $PORT|readinessProbe httpGet HTTPS /healthz $PORT" \
	"$(paste -sd'|' "$WORK/basic/probes")"
while read -r line; do
	check "basic: the kubelet's ${line%% *} passes without a password or client certificate" probe "$line"
done <"$WORK/basic/probes"
prometheus_scrapes basic
vmprobe_stop
check_eq "basic: vmprobe exits 0 on SIGTERM" 0 $?

# --- 2. Client certificates required (and basic authentication). ---
cat >"$WORK/mtls-values.yaml" <<YAML
web:
  tls:
    enabled: true
    secretName: vmprobe-tls
    clientAuthType: RequireAndVerifyClientCert
    clientCASecretName: scrapers-ca
  basicAuth:
    users: {prometheus: "$HASH"}
serviceMonitor:
  enabled: true
  tlsConfig:
    cert: {secret: {name: vmprobe-scraper, key: tls.crt}}
    keySecret: {name: vmprobe-scraper, key: tls.key}
  basicAuth: {secretName: vmprobe-scrape}
YAML
if ! run_pod mtls; then
	tap_fail "mtls: vmprobe starts as the rendered pod" "$(tail -5 "$WORK/mtls/vmprobe.log")"
	tap_done; exit
fi
tap_ok "mtls: vmprobe starts as the rendered pod"
CLIENT=(--cert "$S/vmprobe-scraper/tls.crt" --key "$S/vmprobe-scraper/tls.key")
check_eq "mtls: Prometheus' certificate and password: 200" 200 \
	"$(http_get r "${CA[@]}" "${RESOLVE[@]}" "${CLIENT[@]}" -u 'prometheus:s3cret pass' "$URL/metrics")"
check_eq "mtls: no client certificate: 403" 403 \
	"$(http_get r "${CA[@]}" "${RESOLVE[@]}" -u 'prometheus:s3cret pass' "$URL/metrics")"
check_eq "mtls: a certificate of another CA: 403" 403 \
	"$(http_get r "${CA[@]}" "${RESOLVE[@]}" --cert "$P/stranger.crt" --key "$P/stranger.key" -u 'prometheus:s3cret pass' "$URL/metrics")"
check_eq "mtls: the certificate without the password: 401" 401 \
	"$(http_get r "${CA[@]}" "${RESOLVE[@]}" "${CLIENT[@]}" "$URL/metrics")"
check_eq "mtls: an HTTPS probe (no client certificate) would get 403" 403 \
	"$(http_get r -k "https://$POD_IP:$PORT/healthz")"
check_eq "mtls: so the probes connect to the port" "livenessProbe tcpSocket $PORT|readinessProbe tcpSocket $PORT" \
	"$(paste -sd'|' "$WORK/mtls/probes")"
mark=$(wc -l <"$WORK/mtls/vmprobe.log")
for i in 1 2 3; do
	while read -r line; do
		probe "$line" || echo "$line failed" >>"$WORK/mtls/probe-failures"
	done <"$WORK/mtls/probes"
done
check_eq "mtls: the kubelet's TCP probes pass (three rounds)" "" "$(cat "$WORK/mtls/probe-failures" 2>/dev/null)"
check_eq "mtls: and leave nothing in vmprobe's log above info" "" \
	"$(tail -n +$((mark + 1)) "$WORK/mtls/vmprobe.log" | grep -E '^vmprobe: (warn|error)')"
check_eq "mtls: vmprobe still serves after them" 200 \
	"$(http_get r "${CA[@]}" "${RESOLVE[@]}" "${CLIENT[@]}" -u 'prometheus:s3cret pass' "$URL/metrics")"
prometheus_scrapes mtls

# --- 3. A renewed certificate, as the kubelet writes an updated Secret. ---
serial() { # of the certificate vmprobe presents now
	openssl s_client -connect "$POD_IP:$PORT" -servername "$SERVER_NAME" -CAfile "$S/vmprobe-tls/ca.crt" \
		-cert "$S/vmprobe-scraper/tls.crt" -key "$S/vmprobe-scraper/tls.key" </dev/null 2>/dev/null |
		openssl x509 -noout -serial 2>/dev/null
}
old_serial=$(serial)
check "mtls: openssl reads the certificate served" test -n "$old_serial"
pki_cert renewed cluster-ca "$SERVER_NAME" "$SERVER_EXT"
cp "$P/renewed.crt" "$S/vmprobe-tls/tls.crt"; cp "$P/renewed.key" "$S/vmprobe-tls/tls.key"
new_serial=$(openssl x509 -noout -serial -in "$P/renewed.crt")
python3 "$REPO/tests/k8s/kubelet.py" pod "$WORK/mtls.json" "$S" "$WORK/mtls"
check_eq "the volume's ..data now points to a new directory, the old one is gone" 1 \
	"$(find "$WORK/mtls/vol/config" -maxdepth 1 -name '..2*' | wc -l)"
served_new() { [ "$(serial)" = "$new_serial" ]; }
check "the renewed certificate is served without a restart" wait_for 10 served_new
check_eq "and scrapes go on" 200 \
	"$(http_get r "${CA[@]}" "${RESOLVE[@]}" "${CLIENT[@]}" -u 'prometheus:s3cret pass' "$URL/metrics")"
vmprobe_stop
check_eq "mtls: vmprobe exits 0 on SIGTERM" 0 $?
tap_done

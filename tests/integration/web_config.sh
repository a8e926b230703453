#!/bin/bash
# --web.config.file, exporter-toolkit's format: TLS with client certificates
# verified against a CA, bcrypt basic authentication, extra headers; the
# certificate re-read when its files change, and the users and headers
# when the file changes, without a restart; a bad
# file refused at start with file:line:column; a real Prometheus scraping
# over TLS with a client certificate and a password; the connection cap.
# Certificates are made here with openssl (a CA, a server and a client
# certificate, and a client certificate of another CA).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "vmprobe serve --web.config.file"
for need in openssl python3; do
	command -v $need >/dev/null || { tap_skip "vmprobe serve --web.config.file" "no $need"; tap_done; exit; }
done
WORK=$(mktemp -d /tmp/vmprobe-web.XXXXXX)
PORT=19595 PROM_PORT=19596 PROM_PID= HOLD=()
cleanup() {
	for p in "${HOLD[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
	vmprobe_stop >/dev/null 2>&1
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
T=$WORK/tls
mkdir -p "$T"

PKI=$T
SERVER_EXT=$'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'
pki_ca ca && pki_ca other-ca &&
	pki_cert server ca localhost "$SERVER_EXT" &&
	pki_cert client ca prometheus "extendedKeyUsage=clientAuth" &&
	pki_cert stranger other-ca prometheus "extendedKeyUsage=clientAuth" ||
	{ tap_fail "openssl makes the test certificates"; tap_done; exit; }
HASH=$(bcrypt_hash s3cret)

# --- A bad file is refused at start, saying where. ---
refused_at() { # DESC WHERE YAML: serve exits non-zero and says WHERE
	printf '%s\n' "$3" >"$T/bad.yml"
	"$VMPROBE" serve --listen 127.0.0.1:$PORT --web.config.file "$T/bad.yml" >"$WORK/bad.out" 2>&1
	local rc=$?
	if [ $rc -ne 0 ] && grep -q "$T/bad.yml:$2" "$WORK/bad.out"; then
		tap_ok "$1"
	else
		tap_fail "$1" "exit $rc, expected $T/bad.yml:$2 in:" "$(cat "$WORK/bad.out")"
	fi
}
refused_at "an unknown key: file:line:column" "3:3: unknown key 'cert_fil'" \
	"tls_server_config:
  key_file: server.key
  cert_fil: server.crt"
refused_at "a password that is not a bcrypt hash" "2:9: the password of 'prom'" \
	"basic_auth_users:
  prom: s3cret"
refused_at "a client_auth_type that verifies without client_ca_file" "4:21: client_auth_type" \
	"tls_server_config:
  cert_file: $T/server.crt
  key_file: $T/server.key
  client_auth_type: RequireAndVerifyClientCert"
refused_at "a certificate file that is not there" "2:14: cert_file $T/nope.crt" \
	"tls_server_config:
  cert_file: nope.crt
  key_file: server.key"
refused_at "a YAML syntax error" "3:1: did not find expected" "tls_server_config:
 - [ unclosed"
printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n' >"$T/mismatch.yml"
"$VMPROBE" serve --listen 127.0.0.1:$PORT --web.config.file "$T/mismatch.yml" >"$WORK/bad.out" 2>&1
check "a key that is not the certificate's: refused at start" \
	eval "[ $? -ne 0 ] && grep -q 'is not the key of' '$WORK/bad.out'"

# --- TLS, client certificates, basic authentication. ---
web_yml() { # USER HASH HEADER: web.yml with that one user and header, put in place at once
	cat >"$T/web.yml.tmp" <<YAML
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
basic_auth_users:
  $1: $2
http_server_config:
  headers:
    $3
YAML
	mv "$T/web.yml.tmp" "$T/web.yml"
}
web_yml prom "$HASH" "X-Content-Type-Options: nosniff"
cat >"$WORK/vmprobe.yaml" <<YAML
listen: "127.0.0.1:$PORT"
log_level: debug
YAML
"$VMPROBE" serve -c "$WORK/vmprobe.yaml" --web.config.file "$T/web.yml" --web.max-requests 3 \
	>"$WORK/vmprobe.log" 2>&1 &
VMPROBE_PID=$!
URL=https://127.0.0.1:$PORT
CA=(--cacert "$T/ca.crt") CLIENT=(--cert "$T/client.crt" --key "$T/client.key")
check "vmprobe serves https" wait_for 20 curl -s "${CA[@]}" -o /dev/null "$URL/healthz"
check_eq "plain http gets no answer" 000 "$(http_get resp "http://127.0.0.1:$PORT/metrics")"
check_eq "no client certificate: 403" 403 "$(http_get resp "${CA[@]}" "$URL/metrics")"
check_eq "a client certificate of another CA: 403" 403 \
	"$(http_get resp "${CA[@]}" --cert "$T/stranger.crt" --key "$T/stranger.key" -u prom:s3cret "$URL/metrics")"
check_eq "the client certificate, no password: 401" 401 "$(http_get resp "${CA[@]}" "${CLIENT[@]}" "$URL/metrics")"
check "which asks for Basic credentials" grep -qi '^WWW-Authenticate: Basic realm="vmprobe"' "$WORK/resp.h"
check_eq "a wrong password: 401" 401 "$(http_get resp "${CA[@]}" "${CLIENT[@]}" -u prom:nope "$URL/metrics")"
check_eq "an unknown user: 401" 401 "$(http_get resp "${CA[@]}" "${CLIENT[@]}" -u eve:s3cret "$URL/metrics")"
check_eq "certificate and password: 200" 200 "$(http_get resp "${CA[@]}" "${CLIENT[@]}" -u prom:s3cret "$URL/metrics")"
check "and the metrics" grep -q '^vmprobe_build_info{' "$WORK/resp.b"
check "the configured header is on the response" grep -qi '^X-Content-Type-Options: nosniff' "$WORK/resp.h"
check_eq "/healthz needs no password (liveness probes)" 200 "$(http_get resp "${CA[@]}" "${CLIENT[@]}" "$URL/healthz")"
check_eq "TLS 1.1 is refused (min_version defaults to TLS12)" 000 \
	"$(http_get resp "${CA[@]}" "${CLIENT[@]}" --tls-max 1.1 -u prom:s3cret "$URL/metrics")"

# --- The certificate is re-read when its files change. ---
serial() { # the serial of the certificate vmprobe presents now
	openssl s_client -connect 127.0.0.1:$PORT -CAfile "$T/ca.crt" -cert "$T/client.crt" \
		-key "$T/client.key" </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null
}
old_serial=$(serial)
check "openssl reads the certificate served" test -n "$old_serial"
pki_cert next ca localhost "$SERVER_EXT"
new_serial=$(openssl x509 -noout -serial -in "$T/next.crt")
# As cert-manager and kubelet rotate: new files renamed over the old.
cp "$T/next.key" "$T/server.key.tmp" && cp "$T/next.crt" "$T/server.crt.tmp" &&
	mv "$T/server.key.tmp" "$T/server.key" && mv "$T/server.crt.tmp" "$T/server.crt"
served_new() { [ "$(serial)" = "$new_serial" ]; }
check "a rotated certificate is served without a restart" wait_for 10 served_new
check "and the log says so" grep -q "TLS: .*server.crt and .*server.key re-read" "$WORK/vmprobe.log"
echo garbage >"$T/server.crt.tmp" && mv "$T/server.crt.tmp" "$T/server.crt"
check "a broken certificate file is said" wait_for 10 eval \
	"curl -s ${CA[*]} ${CLIENT[*]} -o /dev/null $URL/healthz; grep -q 'keeping the certificate read before' '$WORK/vmprobe.log'"
check "and the last good one is still served" served_new
check "vmprobe kept running through all of it" kill -0 "$VMPROBE_PID"

# --- A real Prometheus scrapes it. ---
cp "$T/next.crt" "$T/server.crt"
if command -v prometheus >/dev/null; then
	prometheus_start $PROM_PORT $PORT "    scheme: https
    tls_config:
      ca_file: $T/ca.crt
      cert_file: $T/client.crt
      key_file: $T/client.key
    basic_auth:
      username: prom
      password: s3cret" || tap_fail "prometheus starts" "$(tail -5 "$WORK/prometheus-$PROM_PORT.log")"
	up() { [ "$(promql 'up{job="vmprobe"}')" = 1 ]; }
	check "Prometheus scrapes it over TLS with a certificate and a password: up == 1" wait_for 30 up
	check "and stores its series" test -n "$(promql 'vmprobe_build_info')"
else
	tap_skip "Prometheus scrapes it over TLS" "prometheus is not installed"
fi

# --- Users and headers follow the file, without a restart (as exporter-toolkit). ---
HASH2=$(bcrypt_hash n3w)
status_of() { http_get resp "${CA[@]}" "${CLIENT[@]}" -u "$1" "$URL/metrics"; }
web_yml rotated "$HASH2" "X-Frame-Options: deny"
# Looked at once a second at most, at a request: asked until it applies.
check "a user added to the file is let in" wait_for 10 eval '[ "$(status_of rotated:n3w)" = 200 ]'
check "with the file's header now" grep -qi '^X-Frame-Options: deny' "$WORK/resp.h"
check "and not the one it no longer has" eval "! grep -qi '^X-Content-Type-Options' '$WORK/resp.h'"
check_eq "the user removed from the file is refused" 401 "$(status_of prom:s3cret)"
check "the log says the change applies" grep -q "web.yml changed: its users (1) and headers (1) apply now" \
	"$WORK/vmprobe.log"
printf 'basic_auth_users:\n  prom: s3cret\n' >"$T/web.yml.tmp" && mv "$T/web.yml.tmp" "$T/web.yml"
check "a broken file is said" wait_for 10 eval \
	"status_of rotated:n3w >/dev/null; grep -q 'web.yml changed and does not load: the last good one stays in force: .*web.yml:2:9: the password of' '$WORK/vmprobe.log'"
check_eq "and the last good users stay" 200 "$(status_of rotated:n3w)"
check_eq "a plain-text password in it lets no one in" 401 "$(status_of prom:s3cret)"
web_yml prom "$HASH" "X-Content-Type-Options: nosniff"
check "the first file back: its user again" wait_for 10 eval '[ "$(status_of prom:s3cret)" = 200 ]'

# --- At most --web.max-requests connections at once. ---
[ -n "$PROM_PID" ] && kill "$PROM_PID" && wait "$PROM_PID" 2>/dev/null; PROM_PID=
for i in 1 2 3; do
	# Idle TLS clients that hold a connection open.
	sleep 60 | openssl s_client -quiet -connect 127.0.0.1:$PORT -CAfile "$T/ca.crt" \
		-cert "$T/client.crt" -key "$T/client.key" >/dev/null 2>&1 &
	HOLD+=($!)
done
sleep 1
check_eq "with 3 connections held (the cap), a fourth is not served" 000 \
	"$(http_get resp --max-time 5 "${CA[@]}" "${CLIENT[@]}" -u prom:s3cret "$URL/metrics")"
for p in "${HOLD[@]}"; do kill "$p" 2>/dev/null; done
pkill -f "openssl s_client -quiet -connect 127.0.0.1:$PORT" 2>/dev/null
HOLD=()
ok_again() { [ "$(http_get resp "${CA[@]}" "${CLIENT[@]}" -u prom:s3cret "$URL/metrics")" = 200 ]; }
check "once they go, it is served again" wait_for 10 ok_again
vmprobe_stop
check_eq "vmprobe serve exits cleanly" 0 $?
tap_done

{{/* Chart name, truncated to a DNS label. */}}
{{- define "vmprobe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name; the release name alone when it already contains the chart's. */}}
{{- define "vmprobe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vmprobe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vmprobe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vmprobe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "vmprobe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: exporter
app.kubernetes.io/part-of: vmprobe
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "vmprobe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vmprobe.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vmprobe.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* vmprobe's config file: the values' config, with the keys the chart owns. */}}
{{- define "vmprobe.config" -}}
{{- $owned := dict "listen" (printf ":%d" (int .Values.port)) "discovery" (dict "proc" "/host/proc") -}}
{{- toYaml (mergeOverwrite (deepCopy .Values.config) $owned) -}}
{{- end -}}

{{/* The job label of vmprobe's targets: the ServiceMonitor's jobLabel gives the chart name. */}}
{{- define "vmprobe.jobSelector" -}}
job="{{ default (include "vmprobe.name" .) .Values.prometheusRule.job }}"
{{- end -}}

{{/* "true" when vmprobe serves with --web.config.file (TLS, basic authentication or headers). */}}
{{- define "vmprobe.web" -}}
{{- if or .Values.web.tls.enabled .Values.web.basicAuth.users .Values.web.headers -}}true{{- end -}}
{{- end -}}

{{/* "true" when every client must present a certificate: the kubelet's probes cannot. */}}
{{- define "vmprobe.clientCertRequired" -}}
{{- if and .Values.web.tls.enabled (has .Values.web.tls.clientAuthType (list "RequireAnyClientCert" "RequireAndVerifyClientCert")) -}}true{{- end -}}
{{- end -}}

{{/* "true" when client certificates are verified against a CA. */}}
{{- define "vmprobe.clientCA" -}}
{{- if and .Values.web.tls.enabled (has .Values.web.tls.clientAuthType (list "VerifyClientCertIfGiven" "RequireAndVerifyClientCert")) -}}true{{- end -}}
{{- end -}}

{{/*
The web configuration (exporter-toolkit's format). Its paths are relative
to its own directory, /etc/vmprobe, where the projected volume puts the
certificate files.
*/}}
{{- define "vmprobe.webConfig" -}}
{{- $w := .Values.web -}}
{{- $cfg := dict -}}
{{- if $w.tls.enabled -}}
{{- if not $w.tls.secretName -}}
{{- fail "web.tls.enabled needs web.tls.secretName: the Secret with tls.crt and tls.key" -}}
{{- end -}}
{{- $tls := dict "cert_file" "tls/tls.crt" "key_file" "tls/tls.key" "client_auth_type" $w.tls.clientAuthType "min_version" $w.tls.minVersion -}}
{{- if include "vmprobe.clientCA" . -}}
{{- $_ := set $tls "client_ca_file" "tls/client-ca.crt" -}}
{{- end -}}
{{- $_ := set $cfg "tls_server_config" $tls -}}
{{- end -}}
{{- with $w.basicAuth.users -}}
{{- $_ := set $cfg "basic_auth_users" . -}}
{{- end -}}
{{- with $w.headers -}}
{{- $_ := set $cfg "http_server_config" (dict "headers" .) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
A probe of the values, fit for the web configuration: HTTPS with TLS, and a
plain TCP connect when TLS asks every client for a certificate (the kubelet
has none: it would get 403). /healthz needs no password.
*/}}
{{- define "vmprobe.probe" -}}
{{- $p := deepCopy .probe -}}
{{- if and $p.httpGet .root.Values.web.tls.enabled -}}
{{- if include "vmprobe.clientCertRequired" .root -}}
{{- $_ := set $p "tcpSocket" (dict "port" $p.httpGet.port) -}}
{{- $_ := unset $p "httpGet" -}}
{{- else if not $p.httpGet.scheme -}}
{{- $_ := set $p.httpGet "scheme" "HTTPS" -}}
{{- end -}}
{{- end -}}
{{- toYaml $p -}}
{{- end -}}

{{/* The ServiceMonitor's tlsConfig: the CA of vmprobe's Secret and the Service's name, under the values'. */}}
{{- define "vmprobe.scrapeTLSConfig" -}}
{{- $sm := .Values.serviceMonitor -}}
{{- $default := dict "ca" (dict "secret" (dict "name" .Values.web.tls.secretName "key" "ca.crt")) "serverName" (printf "%s.%s.svc" (include "vmprobe.fullname" .) .Release.Namespace) -}}
{{- $tls := mergeOverwrite $default (deepCopy $sm.tlsConfig) -}}
{{- if and (include "vmprobe.clientCertRequired" .) (not (and $tls.cert $tls.keySecret)) -}}
{{- fail (printf "web.tls.clientAuthType %s: set serviceMonitor.tlsConfig.cert and keySecret, the client certificate Prometheus presents" .Values.web.tls.clientAuthType) -}}
{{- end -}}
{{- toYaml $tls -}}
{{- end -}}

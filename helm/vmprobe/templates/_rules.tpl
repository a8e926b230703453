{{/* Helpers of the PrometheusRule (prometheusrule.yaml): alerts, quantiles, baselines. */}}

{{/* Base URL of the runbook's folder: prometheusRule.runbookBaseUrl, else the
docs folder of this version in the repository Chart.yaml names. */}}
{{- define "vmprobe.runbookBase" -}}
{{- $default := printf "%s/blob/v%s/docs" (required "Chart.yaml needs home (the repository URL)" .Chart.Home) .Chart.AppVersion -}}
{{- default $default .Values.prometheusRule.runbookBaseUrl | trimSuffix "/" -}}
{{- end -}}

{{/* One alert, rendered only if prometheusRule.alerts.NAME.enabled, as
a list item indented by 8 after a newline (nothing when disabled).
dict: root, name, expr, summary, description (Prometheus templates kept
as they are). for, severity and alertLabels come from values. */}}
{{- define "vmprobe.alert" -}}
{{- $a := index .root.Values.prometheusRule.alerts .name -}}
{{- if not $a }}{{ fail (printf "prometheusRule.alerts.%s is missing" .name) }}{{ end -}}
{{- if $a.enabled -}}
{{- include "vmprobe.alertBody" (merge (dict "a" $a) .) | nindent 8 -}}
{{- end -}}
{{- end -}}

{{- define "vmprobe.alertBody" -}}
- alert: {{ .name }}
  expr: |-
    {{- .expr | trim | nindent 4 }}
  for: {{ .a.for }}
  labels:
    {{- /* The alert's own severity wins over one in alertLabels. */}}
    {{- merge (dict "severity" .a.severity) .root.Values.prometheusRule.alertLabels | toYaml | nindent 4 }}
  annotations:
    summary: {{ .summary | quote }}
    description: {{ .description | quote }}
    runbook_url: {{ include "vmprobe.runbookBase" .root }}/runbook.md#{{ lower .name }}
{{- end -}}

{{/* A quantile over 5 minutes from native histograms where Prometheus
stores them (--enable-feature=native-histograms keeps no _bucket series),
else from the classic buckets. list: QUANTILE METRIC SELECTOR BY */}}
{{- define "vmprobe.quantile5m" -}}
{{- $q := index . 0 }}{{ $m := index . 1 }}{{ $sel := index . 2 }}{{ $by := index . 3 -}}
(
  histogram_quantile({{ $q }}, sum by ({{ $by }}) (rate({{ $m }}{ {{- $sel -}} }[5m])))
  or
  histogram_quantile({{ $q }}, sum by ({{ $by }}, le) (rate({{ $m }}_bucket{ {{- $sel -}} }[5m])))
) >= 0
{{- end -}}

{{/* The per-second rate of a histogram's count or sum over 5 minutes,
from native histograms where Prometheus stores them, else from the
classic _count or _sum series (vmprobe sends no separate counters for
them by default: exposition.enabled_families). list: count|sum METRIC
SELECTOR BY */}}
{{- define "vmprobe.histRate5m" -}}
{{- $f := index . 0 }}{{ $m := index . 1 }}{{ $sel := index . 2 }}{{ $by := index . 3 -}}
sum by ({{ $by }}) (histogram_{{ $f }}(rate({{ $m }}{ {{- $sel -}} }[5m])))
or
sum by ({{ $by }}) (rate({{ $m }}_{{ $f }}{ {{- $sel -}} }[5m]))
{{- end -}}

{{/* The baseline of one signal at the same hour of day over the last
baseline.days days: for day k, the hourly series at k days minus 30
minutes ago (an hour centred on this time of day), labelled
baseline_day=k, joined with `or`. dict: root, fmt (an expression with %[1]s
where each offset goes). */}}
{{- define "vmprobe.sameHourOfDay" -}}
{{- $out := list -}}
{{- range $i := until (int .root.Values.prometheusRule.baseline.days) -}}
{{- $day := add1 $i -}}
{{- $offset := printf "%dm" (sub (mul $day 1440) 30) -}}
{{- $out = append $out (printf "label_replace(%s, \"baseline_day\", \"%d\", \"\", \"\")" (printf $.fmt $offset) $day) -}}
{{- end -}}
{{- join "\nor " $out -}}
{{- end -}}

{{/* Baseline recording rules of one signal. dict: root, prefix (e.g.
vm_drive:vmprobe_disk_latency_seconds:p99), source (the 5-minute series),
floor (least standard deviation). Records PREFIX_avg1h, _stddev1h (the
last hour), _baseline_avg, _baseline_stddev (same hour of day, last days:
the pooled mean and deviation of those hours) and _zscore. */}}
{{- define "vmprobe.baselineRules" -}}
{{- $b := .root.Values.prometheusRule.baseline -}}
{{- $p := .prefix -}}
{{- $avg := include "vmprobe.sameHourOfDay" (dict "root" .root "fmt" (printf "%s_avg1h offset %%[1]s" $p)) -}}
{{- $sq := include "vmprobe.sameHourOfDay" (dict "root" .root "fmt" (printf "%s_stddev1h offset %%[1]s ^ 2 + %s_avg1h offset %%[1]s ^ 2" $p $p)) -}}
- record: {{ $p }}_avg1h
  expr: avg_over_time({{ .source }}[1h])
- record: {{ $p }}_stddev1h
  expr: stddev_over_time({{ .source }}[1h])
- record: {{ $p }}_baseline_avg
  expr: |-
    avg without (baseline_day) (
      {{- $avg | nindent 6 }}
    )
    unless
    count without (baseline_day) (
      {{- $avg | nindent 6 }}
    ) < {{ $b.minDays }}
- record: {{ $p }}_baseline_stddev
  expr: |-
    sqrt(clamp_min(
      avg without (baseline_day) (
        {{- $sq | nindent 8 }}
      )
      - {{ $p }}_baseline_avg ^ 2,
    0))
- record: {{ $p }}_zscore
  expr: ({{ .source }} - {{ $p }}_baseline_avg) / clamp_min({{ $p }}_baseline_stddev, {{ .floor }})
{{- end -}}

{{/* Label matchers of kube_node_labels (kube-state-metrics) for the
DaemonSet's nodeSelector: label_<name, non-alphanumerics as _>="value". */}}
{{- define "vmprobe.nodeLabelMatchers" -}}
{{- $m := list -}}
{{- range $k, $v := .Values.nodeSelector -}}
{{- $m = append $m (printf "label_%s=%s" (regexReplaceAll "[^a-zA-Z0-9_]" $k "_") (toString $v | quote)) -}}
{{- end -}}
{{- join ", " $m -}}
{{- end -}}

{{/* Names are cut at 63 characters: Kubernetes' limit for labels and DNS names. */}}
{{- define "filestage.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "filestage.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "filestage.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "filestage.labels" -}}
helm.sh/chart: {{ include "filestage.chart" . }}
{{ include "filestage.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "filestage.selectorLabels" -}}
app.kubernetes.io/name: {{ include "filestage.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "filestage.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "filestage.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The chart's own Secret: created only when a value holds a secret. */}}
{{- define "filestage.secretName" -}}
{{- include "filestage.fullname" . }}
{{- end }}

{{- define "filestage.hasChartSecret" -}}
{{- $a := .Values.auth }}
{{- if or $a.token $a.tokensFile $a.oauth.introspectionClientSecret .Values.provider.secretEnv }}true{{ end }}
{{- end }}

{{/*
/metrics has no authentication and holds every client's activity: it gets a
Service of its own, always ClusterIP, so that service.type (LoadBalancer,
NodePort) never publishes it. Its name leaves room for the suffix in 63.
*/}}
{{- define "filestage.metricsServiceName" -}}
{{- printf "%s-metrics" (include "filestage.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/*
Variables whose values are credentials: never rendered as a plain env value
(provider.env, extraEnv's value), where anyone who can read the Deployment
or the release would see them. The Secret ones of config.Variables(), which
deploy/helm_test.go holds this list to, and AWS_ACCESS_KEY_ID: not secret on
its own, but it names the IAM user and rotates with its secret key, so the
pair stays together in one Secret.
*/}}
{{- define "filestage.secretVariables" -}}
FILESTAGE_AUTH_TOKEN FILESTAGE_OAUTH_INTROSPECTION_CLIENT_SECRET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN COMPOSIO_API_KEY ALLOY_API_KEY RECOUP_API_KEY QUANT_API_TOKEN
{{- end }}

{{/*
GOMEMLIMIT: goMemLimitPercent of resources.limits.memory (why not all of it:
values.yaml), or none without a memory limit. Computed here because a
resourceFieldRef cannot take a fraction of the limit (its divisor rounds up).
*/}}
{{- define "filestage.goMemLimit" -}}
{{- $limit := dig "limits" "memory" "" .Values.resources | toString }}
{{- if $limit }}
{{- if not (regexMatch "^[1-9][0-9]*(Mi|Gi)$" $limit) }}
{{- fail (printf "resources.limits.memory (%s): give it in Mi or Gi (e.g. 512Mi), from which the chart sets GOMEMLIMIT to goMemLimitPercent (%d%%) of it" $limit (int .Values.goMemLimitPercent)) }}
{{- end }}
{{- $mib := int (trimSuffix "Mi" (trimSuffix "Gi" $limit)) }}
{{- if hasSuffix "Gi" $limit }}{{ $mib = mul $mib 1024 }}{{ end }}
{{- printf "%dMiB" (div (mul $mib (int .Values.goMemLimitPercent)) 100) }}
{{- end }}
{{- end }}

{{/* filestage's own secrets have values of their own, which its checks read. */}}
{{- define "filestage.ownSecretHint" -}}
{{- if eq . "FILESTAGE_AUTH_TOKEN" }}; filestage's token goes in auth.token or auth.existingSecret with auth.existingSecretKeys.token
{{- else if eq . "FILESTAGE_OAUTH_INTROSPECTION_CLIENT_SECRET" }}; the introspection secret goes in auth.oauth.introspectionClientSecret or auth.existingSecret with auth.existingSecretKeys.introspectionClientSecret
{{- end }}
{{- end }}

{{/* The URL clients reach: the value, the first ingress host, or the Service. */}}
{{- define "filestage.publicURL" -}}
{{- if .Values.publicURL }}
{{- .Values.publicURL | trimSuffix "/" }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- $scheme := "http" }}
{{- range .Values.ingress.tls }}
{{- if has $host .hosts }}{{ $scheme = "https" }}{{ end }}
{{- end }}
{{- printf "%s://%s" $scheme $host }}
{{- else }}
{{- $port := "" }}
{{- if ne (int .Values.service.port) 80 }}{{ $port = printf ":%d" (int .Values.service.port) }}{{ end }}
{{- printf "http://%s.%s.svc%s" (include "filestage.fullname" .) .Release.Namespace $port }}
{{- end }}
{{- end }}

{{/* The most replicas that can run at once, rollout surge aside. */}}
{{- define "filestage.maxReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.maxReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{- define "filestage.claimName" -}}
{{- .Values.dataVolume.pvc.existingClaim | default (printf "%s-data" (include "filestage.fullname" .)) }}
{{- end }}

{{- define "filestage.emptyDirSizeLimit" -}}
{{- .Values.dataVolume.emptyDir.sizeLimit | default (printf "%dMi" (add .Values.limits.spoolBudgetMiB .Values.dataVolume.emptyDir.headroomMiB)) }}
{{- end }}

{{/*
Settings that would start pods filestage refuses, or that would lose data:
refused here, where the message reaches whoever runs helm.
*/}}
{{- define "filestage.validate" -}}
{{- $a := .Values.auth }}
{{- $k := $a.existingSecretKeys }}
{{- $hasToken := or $a.token (and $a.existingSecret $k.token) }}
{{- $hasTokensFile := or $a.tokensFile (and $a.existingSecret $k.tokensFile) }}
{{- if not (or $hasToken $hasTokensFile $a.oauth.issuers) }}
{{- fail "filestage needs authentication on a Kubernetes listener (it refuses to serve 0.0.0.0 without any): set auth.token, auth.tokensFile or auth.oauth.issuers, or auth.existingSecret with auth.existingSecretKeys.token or .tokensFile" }}
{{- end }}
{{- if and $a.existingSecret (not (or $k.token $k.tokensFile $k.introspectionClientSecret)) }}
{{- fail "auth.existingSecret is set but names no key: set auth.existingSecretKeys.token, .tokensFile or .introspectionClientSecret" }}
{{- end }}
{{- if and $a.token $a.existingSecret $k.token }}
{{- fail "auth.token and auth.existingSecretKeys.token both set the token: keep one" }}
{{- end }}
{{- if and $a.tokensFile $a.existingSecret $k.tokensFile }}
{{- fail "auth.tokensFile and auth.existingSecretKeys.tokensFile both set the tokens file: keep one" }}
{{- end }}
{{- $hasIntroSecret := or $a.oauth.introspectionClientSecret (and $a.existingSecret $k.introspectionClientSecret) }}
{{- if ne (not $a.oauth.introspectionClientID) (not $hasIntroSecret) }}
{{- fail "auth.oauth.introspectionClientID and its secret (auth.oauth.introspectionClientSecret or auth.existingSecretKeys.introspectionClientSecret) go together" }}
{{- end }}
{{- if and (or $a.oauth.audience $a.oauth.introspectionURL $a.oauth.introspectionClientID) (not $a.oauth.issuers) }}
{{- fail "auth.oauth.audience and introspection settings need auth.oauth.issuers" }}
{{- end }}
{{- $p := .Values.provider }}
{{- if and (eq $p.name "s3") (not $p.s3.bucket) }}
{{- fail "provider.name is s3: set provider.s3.bucket" }}
{{- end }}
{{- if and $p.existingSecretEnv (not $p.existingSecret) }}
{{- fail "provider.existingSecretEnv needs provider.existingSecret, the Secret it reads" }}
{{- end }}
{{- $secretVars := splitList " " (include "filestage.secretVariables" .) }}
{{- range $name, $_ := $p.env }}
{{- if has $name $secretVars }}
{{- fail (printf "provider.env.%s is a secret, and provider.env is rendered in clear in the Deployment: set it in provider.secretEnv (kept in the chart's Secret) or in a Secret of yours named by provider.existingSecret and provider.existingSecretEnv%s" $name (include "filestage.ownSecretHint" $name)) }}
{{- end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if and (has .name $secretVars) (not (dig "valueFrom" "secretKeyRef" "" .)) }}
{{- fail (printf "extraEnv sets %s, a secret, other than from a Secret: set it in provider.secretEnv or provider.existingSecret with provider.existingSecretEnv%s (or give the extraEnv entry valueFrom.secretKeyRef)" .name (include "filestage.ownSecretHint" .name)) }}
{{- end }}
{{- end }}
{{- range $name, $_ := $p.secretEnv }}
{{- if hasKey $p.existingSecretEnv $name }}
{{- fail (printf "provider.secretEnv and provider.existingSecretEnv both set %s: keep one" $name) }}
{{- end }}
{{- end }}
{{- if lt (int .Values.limits.spoolBudgetMiB) (int .Values.limits.maxBytesMiB) }}
{{- fail (printf "limits.spoolBudgetMiB (%d) is less than limits.maxBytesMiB (%d): a stage of the largest file could never spool" (int .Values.limits.spoolBudgetMiB) (int .Values.limits.maxBytesMiB)) }}
{{- end }}
{{- $grace := int .Values.terminationGracePeriodSeconds }}
{{- $prestop := int .Values.preStopSleepSeconds }}
{{- $drain := int .Values.drainTimeoutSeconds }}
{{- if le $grace (add $prestop $drain 5) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be longer than preStopSleepSeconds (%d) + drainTimeoutSeconds (%d) + 5 s for cancelled calls, or the kubelet kills calls mid-drain: set it to at least %d" $grace $prestop $drain (add $prestop $drain 6)) }}
{{- end }}
{{- $max := int (include "filestage.maxReplicas" .) }}
{{- $d := .Values.dataVolume }}
{{- $rwx := and (eq $d.type "pvc") (has "ReadWriteMany" $d.pvc.accessModes) }}
{{- if and (eq $p.name "local") (ne $d.type "pvc") }}
{{- fail "provider local keeps the files, its signing key and its SQLite index in /data: set dataVolume.type=pvc (an emptyDir loses them with the pod)" }}
{{- end }}
{{- if and (eq $p.name "local") (gt $max 1) (not $rwx) }}
{{- fail (printf "provider local with up to %d replicas needs them all on one volume (the signing key and the SQLite index live there): set dataVolume.type=pvc with ReadWriteMany in dataVolume.pvc.accessModes (for an existingClaim, state its modes there), or run 1 replica without autoscaling" $max) }}
{{- end }}
{{- if and (eq $d.type "pvc") (gt $max 1) (not $rwx) }}
{{- fail (printf "dataVolume.type=pvc with up to %d replicas needs a ReadWriteMany claim (a ReadWriteOnce one attaches to one node): add ReadWriteMany to dataVolume.pvc.accessModes, or use dataVolume.type=emptyDir" $max) }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) 8080) }}
{{- fail "metrics.port is the main listener's port (8080): give the metrics a port of their own" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled (the ServiceMonitor scrapes the metrics port)" }}
{{- end }}
{{- end }}

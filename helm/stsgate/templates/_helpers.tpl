{{/*
Names, labels, and the gateway configuration built from .Values.config plus the chart-managed parts.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "stsgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full resource name: fullnameOverride, else <release>-<name> (the release name alone when it already contains the name). */}}
{{- define "stsgate.fullname" -}}
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

{{/* chart label value: <name>-<version>. */}}
{{- define "stsgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the gateway's pods; never change them in an upgrade (a Deployment's selector is immutable). */}}
{{- define "stsgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stsgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "stsgate.labels" -}}
helm.sh/chart: {{ include "stsgate.chart" . }}
{{ include "stsgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: stsgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "stsgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stsgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: repository@digest when a digest is set, else repository:tag. */}}
{{- define "stsgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The port the gateway listens on in the container (the image's EXPOSE and HEALTHCHECK use it too). */}}
{{- define "stsgate.containerPort" -}}
8080
{{- end -}}

{{/* The port of the metrics and admin listener in the container (`admin.listen`). */}}
{{- define "stsgate.metricsPort" -}}
9090
{{- end -}}

{{/* Where the admin token Secret is mounted. */}}
{{- define "stsgate.adminDir" -}}
/var/run/secrets/stsgate/admin
{{- end -}}

{{/* Where the signing keys Secret is mounted, and the file the gateway reads. */}}
{{- define "stsgate.signingDir" -}}
/var/run/secrets/stsgate/signing
{{- end -}}

{{/* How the chart configures the store: "sentinel", "url" or "none" (config.store, or the in-memory default). */}}
{{- define "stsgate.redisMode" -}}
{{- if .Values.redis.sentinel.enabled -}}
sentinel
{{- else if or .Values.redis.url .Values.redis.existingSecret -}}
url
{{- else -}}
none
{{- end -}}
{{- end -}}

{{/* "true" when the gateway uses a store shared between pods (set by the chart, or written in config.store.redis). */}}
{{- define "stsgate.sharedStore" -}}
{{- $store := .Values.config.store | default dict -}}
{{- if or (ne (include "stsgate.redisMode" .) "none") (hasKey $store "redis") -}}
true
{{- end -}}
{{- end -}}

{{/*
Refuses values the gateway would refuse at start (or that would quietly misbehave), so that the mistake is
reported by `helm install` rather than by a pod in CrashLoopBackOff.
*/}}
{{- define "stsgate.validate" -}}
{{- $config := .Values.config | default dict -}}
{{- $signing := $config.signing | default dict -}}
{{- $credentials := $config.credentials | default dict -}}
{{- $mode := include "stsgate.redisMode" . -}}
{{- $shared := include "stsgate.sharedStore" . -}}
{{- if hasKey $config "listen" -}}
{{- fail "config.listen is set by the chart (0.0.0.0:8080, the port of the probes and the Service): remove it" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled .Values.networkPolicy.enabled (not .Values.networkPolicy.metricsFrom) -}}
{{- fail "serviceMonitor.enabled with networkPolicy.enabled needs networkPolicy.metricsFrom (Prometheus's namespace, for example): the NetworkPolicy would refuse every scrape of the metrics port" -}}
{{- end -}}
{{- if and (ne $mode "none") (hasKey $config "store") -}}
{{- fail "config.store is set next to redis.*: configure the store in one place (redis.url, redis.existingSecret or redis.sentinel, or config.store alone)" -}}
{{- end -}}
{{- if and .Values.redis.url .Values.redis.existingSecret -}}
{{- fail "redis.url and redis.existingSecret are both set: give the URL in one of them (a URL with a password only in the Secret)" -}}
{{- end -}}
{{- if and .Values.redis.sentinel.enabled .Values.redis.url -}}
{{- fail "redis.sentinel.enabled with redis.url: Sentinel mode takes redis.sentinel.sentinels (and the password from redis.existingSecret), not a URL" -}}
{{- end -}}
{{- if and .Values.redis.sentinel.enabled (not .Values.redis.sentinel.sentinels) -}}
{{- fail "redis.sentinel.enabled needs redis.sentinel.sentinels: a list of {host, port}" -}}
{{- end -}}
{{- if and .Values.redis.sentinel.sentinelPasswordKey (not .Values.redis.existingSecret) -}}
{{- fail "redis.sentinel.sentinelPasswordKey names a key in redis.existingSecret, which is empty" -}}
{{- end -}}
{{- if and .Values.signing.existingSecret (hasKey $signing "keys_file") -}}
{{- fail "config.signing.keys_file is set by the chart when signing.existingSecret is set: remove it" -}}
{{- end -}}
{{- if and .Values.encryptionKey.existingSecret (or (hasKey $credentials "encryption_key") (hasKey $credentials "encryption_key_file")) -}}
{{- fail "config.credentials.encryption_key is set by the chart when encryptionKey.existingSecret is set: remove it" -}}
{{- end -}}
{{- $hasKeys := or .Values.signing.existingSecret (hasKey $signing "keys_file") -}}
{{- $hasEncryptionKey := or .Values.encryptionKey.existingSecret (hasKey $credentials "encryption_key") (hasKey $credentials "encryption_key_file") -}}
{{- $several := or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) -}}
{{- if and $several (not $shared) -}}
{{- fail "several pods (replicaCount > 1 or autoscaling.enabled) need a shared store: set redis.url, redis.existingSecret or redis.sentinel (the in-memory store serves one pod only)" -}}
{{- end -}}
{{- if and $shared (not (and $hasKeys $hasEncryptionKey)) -}}
{{- fail "a Redis store is shared between pods, so they must share keys: set signing.existingSecret and encryptionKey.existingSecret" -}}
{{- end -}}
{{- $shutdown := $config.shutdown | default dict -}}
{{- /* the gateway's defaults: no delay, 10 s grace */ -}}
{{- $delay := 0 -}}
{{- $grace := 10 -}}
{{- if hasKey $shutdown "delay_seconds" }}{{ $delay = int $shutdown.delay_seconds }}{{ end -}}
{{- if hasKey $shutdown "grace_seconds" }}{{ $grace = int $shutdown.grace_seconds }}{{ end -}}
{{- $stopSeconds := add $delay $grace -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $stopSeconds) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) is shorter than config.shutdown.delay_seconds + grace_seconds (%d): Kubernetes would kill the gateway mid-drain" (int .Values.terminationGracePeriodSeconds) (int $stopSeconds)) -}}
{{- end -}}
{{- $reserved := list "REDIS_URL" "REDIS_PASSWORD" "REDIS_SENTINEL_PASSWORD" "STSGATE_ENCRYPTION_KEY" "STSGATE_LOG_LEVEL" "NODE_ENV" -}}
{{- range concat .Values.secretEnv .Values.extraEnv -}}
{{- if has .name $reserved -}}
{{- fail (printf "%s is set by the chart: choose another variable name in secretEnv or extraEnv" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The gateway file: .Values.config with the chart-managed parts set. Secrets appear only as ${VAR}
placeholders that the gateway fills from the pod's environment at start.
*/}}
{{- define "stsgate.gatewayConfig" -}}
{{- $config := deepCopy (.Values.config | default dict) -}}
{{- $_ := set $config "listen" (dict "host" "0.0.0.0" "port" (int (include "stsgate.containerPort" .)) "trusted_proxies" (.Values.trustedProxies | default list)) -}}
{{- $mode := include "stsgate.redisMode" . -}}
{{- if eq $mode "url" -}}
{{- $_ := set $config "store" (dict "redis" (dict "url" "${REDIS_URL}" "prefix" .Values.redis.prefix)) -}}
{{- else if eq $mode "sentinel" -}}
{{- $sentinel := dict "name" .Values.redis.sentinel.masterName "sentinels" .Values.redis.sentinel.sentinels "db" (int .Values.redis.sentinel.db) -}}
{{- if .Values.redis.existingSecret -}}
{{- $_ := set $sentinel "password" "${REDIS_PASSWORD}" -}}
{{- end -}}
{{- if .Values.redis.sentinel.sentinelPasswordKey -}}
{{- $_ := set $sentinel "sentinel_password" "${REDIS_SENTINEL_PASSWORD}" -}}
{{- end -}}
{{- $_ := set $config "store" (dict "redis" (dict "sentinel" $sentinel "prefix" .Values.redis.prefix "tls" .Values.redis.sentinel.tls)) -}}
{{- end -}}
{{- if .Values.signing.existingSecret -}}
{{- $signing := $config.signing | default dict -}}
{{- $_ := set $signing "keys_file" (printf "%s/%s" (include "stsgate.signingDir" .) .Values.signing.existingSecretKey) -}}
{{- $_ := set $config "signing" $signing -}}
{{- end -}}
{{- $admin := $config.admin | default dict -}}
{{- $_ := set $admin "listen" (dict "host" "0.0.0.0" "port" (int (include "stsgate.metricsPort" .))) -}}
{{- if .Values.admin.existingSecret -}}
{{- $_ := set $admin "token_file" (printf "%s/%s" (include "stsgate.adminDir" .) .Values.admin.existingSecretKey) -}}
{{- end -}}
{{- $_ := set $config "admin" $admin -}}
{{- if .Values.encryptionKey.existingSecret -}}
{{- $credentials := $config.credentials | default dict -}}
{{- $_ := set $credentials "encryption_key" "${STSGATE_ENCRYPTION_KEY}" -}}
{{- $_ := set $config "credentials" $credentials -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

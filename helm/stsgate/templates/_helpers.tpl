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

{{/*
Labels on every object the chart renders, the `helm test` pod included: the chart's own and
`commonLabels`. Not the selector labels, which only the gateway's objects carry (a test pod with them
would be selected by the Service, the PodDisruptionBudget and the NetworkPolicy).
*/}}
{{- define "stsgate.commonLabels" -}}
helm.sh/chart: {{ include "stsgate.chart" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: stsgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels on every object of the gateway (and its pods). */}}
{{- define "stsgate.labels" -}}
{{ include "stsgate.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{ include "stsgate.commonLabels" . }}
{{- end -}}

{{/* Label keys the chart sets itself: `commonLabels` and `podLabels` may not repeat them. */}}
{{- define "stsgate.chartLabelKeys" -}}
{{- list "helm.sh/chart" "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/version" "app.kubernetes.io/component" "app.kubernetes.io/part-of" "app.kubernetes.io/managed-by" | toJson -}}
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

{{/* Where the gateway file is mounted: the gateway's `--config`, and the one `check-config` checks. */}}
{{- define "stsgate.configFile" -}}
/etc/stsgate/gateway.yaml
{{- end -}}

{{/*
Where the gateway file comes from: "configMap" (`configFrom.existingConfigMap`), "secret"
(`configFrom.existingSecret`), or empty: the chart's own ConfigMap, built from `config`.
*/}}
{{- define "stsgate.externalConfig" -}}
{{- if .Values.configFrom.existingConfigMap -}}
configMap
{{- else if .Values.configFrom.existingSecret -}}
secret
{{- end -}}
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
{{- $external := include "stsgate.externalConfig" . -}}
{{- if and .Values.configFrom.existingConfigMap .Values.configFrom.existingSecret -}}
{{- fail "configFrom.existingConfigMap and configFrom.existingSecret are both set: the gateway file comes from one of them (a file with secrets in it: the Secret)" -}}
{{- end -}}
{{- if and (not $external) (hasKey $config "listen") -}}
{{- fail "config.listen is set by the chart (0.0.0.0:8080, the port of the probes and the Service): remove it" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled .Values.networkPolicy.enabled (not .Values.networkPolicy.metricsFrom) -}}
{{- fail "serviceMonitor.enabled with networkPolicy.enabled needs networkPolicy.metricsFrom (Prometheus's namespace, for example): the NetworkPolicy would refuse every scrape of the metrics port" -}}
{{- end -}}
{{- if and (not $external) (ne $mode "none") (hasKey $config "store") -}}
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
{{- /* The checks below read the gateway file in `config`; a file from configFrom is the chart's to mount, not to read. */ -}}
{{- if not $external -}}
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
{{- end -}}
{{- $reserved := list "REDIS_URL" "REDIS_PASSWORD" "REDIS_SENTINEL_PASSWORD" "STSGATE_ENCRYPTION_KEY" "STSGATE_LOG_LEVEL" "NODE_ENV" -}}
{{- range concat .Values.secretEnv .Values.extraEnv -}}
{{- if has .name $reserved -}}
{{- fail (printf "%s is set by the chart: choose another variable name in secretEnv or extraEnv" .name) -}}
{{- end -}}
{{- end -}}
{{- /* Duplicate label keys would render invalid YAML, and a changed selector label would orphan the pods. */ -}}
{{- $chartLabels := include "stsgate.chartLabelKeys" . | fromJsonArray -}}
{{- range $key, $_ := .Values.commonLabels -}}
{{- if has $key $chartLabels -}}
{{- fail (printf "commonLabels.%s is a label the chart sets: choose another key" $key) -}}
{{- end -}}
{{- end -}}
{{- range $key, $_ := .Values.podLabels -}}
{{- if or (has $key $chartLabels) (hasKey $.Values.commonLabels $key) -}}
{{- fail (printf "podLabels.%s is a label the chart (or commonLabels) already sets: choose another key" $key) -}}
{{- end -}}
{{- end -}}
{{- $chartVolumes := list "config" "signing-keys" "admin-token" "tmp" -}}
{{- range .Values.extraVolumes -}}
{{- if has .name $chartVolumes -}}
{{- fail (printf "extraVolumes: %s is the name of a volume the chart mounts: choose another name" .name) -}}
{{- end -}}
{{- end -}}
{{- $chartContainers := list "stsgate" "check-config" -}}
{{- range concat .Values.initContainers .Values.extraContainers -}}
{{- if has .name $chartContainers -}}
{{- fail (printf "initContainers/extraContainers: %s is the name of a container the chart runs: choose another name" .name) -}}
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

{{/*
The environment of the gateway container and of every `check-config` run (the init container and the
`helm test` pod): the same `${VAR}` placeholders resolve in both. `env` then `envFrom`: Kubernetes lets
`env` win over `envFrom`, so an `envFrom` source never replaces a variable the chart sets.
*/}}
{{- define "stsgate.containerEnv" -}}
{{- $mode := include "stsgate.redisMode" . -}}
env:
  - name: NODE_ENV
    value: production
  - name: STSGATE_LOG_LEVEL
    value: {{ .Values.logLevel | quote }}
  {{- if eq $mode "url" }}
  - name: REDIS_URL
    {{- if .Values.redis.existingSecret }}
    valueFrom:
      secretKeyRef:
        name: {{ .Values.redis.existingSecret }}
        key: {{ .Values.redis.existingSecretKey }}
    {{- else }}
    value: {{ .Values.redis.url | quote }}
    {{- end }}
  {{- end }}
  {{- if and (eq $mode "sentinel") .Values.redis.existingSecret }}
  - name: REDIS_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ .Values.redis.existingSecret }}
        key: {{ .Values.redis.existingSecretKey }}
  {{- if .Values.redis.sentinel.sentinelPasswordKey }}
  - name: REDIS_SENTINEL_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ .Values.redis.existingSecret }}
        key: {{ .Values.redis.sentinel.sentinelPasswordKey }}
  {{- end }}
  {{- end }}
  {{- if .Values.encryptionKey.existingSecret }}
  - name: STSGATE_ENCRYPTION_KEY
    valueFrom:
      secretKeyRef:
        name: {{ .Values.encryptionKey.existingSecret }}
        key: {{ .Values.encryptionKey.existingSecretKey }}
  {{- end }}
  {{- range .Values.secretEnv }}
  - name: {{ .name }}
    valueFrom:
      secretKeyRef:
        name: {{ .existingSecret }}
        key: {{ .existingSecretKey }}
        {{- if .optional }}
        optional: true
        {{- end }}
  {{- end }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .Values.envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The mounts of the gateway container and of every `check-config` run (`*_file` settings read the same files). */}}
{{- define "stsgate.volumeMounts" -}}
- name: config
  mountPath: {{ dir (include "stsgate.configFile" .) }}
  readOnly: true
{{- if .Values.signing.existingSecret }}
# A directory mount (no subPath), so a rotated Secret reaches the gateway, which polls the file.
- name: signing-keys
  mountPath: {{ include "stsgate.signingDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.admin.existingSecret }}
- name: admin-token
  mountPath: {{ include "stsgate.adminDir" . }}
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The volumes those mounts name: the gateway file (the chart's ConfigMap, or configFrom's), the Secrets, /tmp, extraVolumes. */}}
{{- define "stsgate.volumes" -}}
{{- $external := include "stsgate.externalConfig" . -}}
- name: config
  {{- if eq $external "secret" }}
  secret:
    secretName: {{ .Values.configFrom.existingSecret }}
    defaultMode: 288 # 0440: owner and group (fsGroup) may read
    items:
      - key: {{ .Values.configFrom.existingKey }}
        path: {{ base (include "stsgate.configFile" .) }}
  {{- else if eq $external "configMap" }}
  configMap:
    name: {{ .Values.configFrom.existingConfigMap }}
    items:
      - key: {{ .Values.configFrom.existingKey }}
        path: {{ base (include "stsgate.configFile" .) }}
  {{- else }}
  configMap:
    name: {{ include "stsgate.fullname" . }}
    items:
      - key: gateway.yaml
        path: {{ base (include "stsgate.configFile" .) }}
  {{- end }}
{{- if .Values.signing.existingSecret }}
- name: signing-keys
  secret:
    secretName: {{ .Values.signing.existingSecret }}
    defaultMode: 288 # 0440: owner and group (fsGroup) may read
    items:
      - key: {{ .Values.signing.existingSecretKey }}
        path: {{ .Values.signing.existingSecretKey }}
{{- end }}
{{- if .Values.admin.existingSecret }}
- name: admin-token
  secret:
    secretName: {{ .Values.admin.existingSecret }}
    defaultMode: 288 # 0440: owner and group (fsGroup) may read
    items:
      - key: {{ .Values.admin.existingSecretKey }}
        path: {{ .Values.admin.existingSecretKey }}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpDirSizeLimit }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
A container that runs `stsgate check-config` on the mounted gateway file, with the gateway's image,
environment and mounts: the init container (a typo stops the rollout before a server starts) and the
`helm test` pod. It exits non-zero on a problem in the file or on a failing `tests:` case.
*/}}
{{- define "stsgate.checkConfigContainer" -}}
- name: check-config
  image: {{ include "stsgate.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["check-config", "--config", {{ include "stsgate.configFile" . | quote }}]
  {{- include "stsgate.containerEnv" . | nindent 2 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  volumeMounts:
    {{- include "stsgate.volumeMounts" . | nindent 4 }}
{{- end -}}

{{/*
Names, labels, the topic registry, and each process's environment.
*/}}

{{- define "koopkracht.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "koopkracht.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The labels that select one process's pods: (list $ "worker") */}}
{{- define "koopkracht.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "koopkracht.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The topic registry and the principals' ACLs, generated from the code (files/registry.json). */}}
{{- define "koopkracht.registry" -}}
{{- .Files.Get "files/registry.json" -}}
{{- end -}}

{{- define "koopkracht.commandsPartitions" -}}
{{- (include "koopkracht.registry" . | fromJson).commands.partitions | int -}}
{{- end -}}

{{/* A registry name ("{prefix}.events") with this deployment's topic prefix. */}}
{{- define "koopkracht.withPrefix" -}}
{{- $root := index . 0 -}}
{{- replace "{prefix}" $root.Values.topicPrefix (index . 1) -}}
{{- end -}}

{{- define "koopkracht.kafkaUsernamePrefix" -}}
{{- .Values.kafka.usernamePrefix | default .Values.topicPrefix -}}
{{- end -}}

{{- define "koopkracht.sasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol -}}true{{- end -}}
{{- end -}}

{{- define "koopkracht.tls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") -}}true{{- end -}}
{{- end -}}

{{/*
Every check that stops a render with a message saying what to change.
*/}}
{{- define "koopkracht.validate" -}}
{{- $partitions := include "koopkracht.commandsPartitions" . | int -}}
{{- if not .Values.kafka.bootstrap -}}
{{- fail "kafka.bootstrap is required: host:port of the Kafka brokers (without it each process would start a Kafka of its own)" -}}
{{- end -}}
{{- if not (has .Values.kafka.securityProtocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) -}}
{{- fail (printf "kafka.securityProtocol %q: one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL" .Values.kafka.securityProtocol) -}}
{{- end -}}
{{- if and (include "koopkracht.sasl" .) (not .Values.kafka.passwordSecret) (not .Values.strimzi.users.enabled) -}}
{{- fail "with SASL, kafka.passwordSecret names the Secret with each process's password (keys worker, projector, scheduler, api, admin), unless strimzi.users.enabled" -}}
{{- end -}}
{{- if and (include "koopkracht.sasl" .) (not .Values.kafka.passwordSecret) (not .Values.strimzi.topics.enabled) -}}
{{- fail (printf "with SASL the topics Job signs in as %s-admin: set kafka.passwordSecret (key admin), or let Strimzi manage the topics (strimzi.topics.enabled)" (include "koopkracht.kafkaUsernamePrefix" .)) -}}
{{- end -}}
{{- if not .Values.database.existingSecret -}}
{{- fail "database.existingSecret is required: a Secret with the PostgreSQL URL (postgresql+psycopg://user:password@host:5432/koopkracht) under database.key" -}}
{{- end -}}
{{- if and (not .Values.keda.enabled) (gt (int .Values.worker.replicas) $partitions) -}}
{{- fail (printf "worker.replicas is %d, but the commands topic has %d partitions: a worker without a partition only idles; at most %d" (int .Values.worker.replicas) $partitions $partitions) -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int .Values.keda.maxReplicaCount) $partitions) -}}
{{- fail (printf "keda.maxReplicaCount is %d, but the commands topic has %d partitions: at most %d" (int .Values.keda.maxReplicaCount) $partitions $partitions) -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int .Values.keda.minReplicaCount) (int .Values.keda.maxReplicaCount)) -}}
{{- fail "keda.minReplicaCount is more than keda.maxReplicaCount" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (or (not .Values.ingress.host) (not .Values.ingress.tlsSecretName)) -}}
{{- fail "the ingress needs ingress.host and ingress.tlsSecretName (it serves https only)" -}}
{{- end -}}
{{- if and (or .Values.strimzi.topics.enabled .Values.strimzi.users.enabled) (not .Values.strimzi.cluster) -}}
{{- fail "strimzi.cluster is required for Strimzi topics or users: the name of the Kafka resource (the strimzi.io/cluster label)" -}}
{{- end -}}
{{- if and .Values.strimzi.topics.enabled (ge (int .Values.strimzi.topics.minInsyncReplicas) (int .Values.strimzi.topics.replicas)) (gt (int .Values.strimzi.topics.replicas) 1) -}}
{{- fail (printf "strimzi.topics.minInsyncReplicas (%d) must be less than strimzi.topics.replicas (%d), or a single broker down stops every write" (int .Values.strimzi.topics.minInsyncReplicas) (int .Values.strimzi.topics.replicas)) -}}
{{- end -}}
{{- if and .Values.strimzi.users.enabled (not (regexMatch "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$" (include "koopkracht.kafkaUsernamePrefix" .))) -}}
{{- fail (printf "the Kafka user names start with %q, which is not a Kubernetes name: set kafka.usernamePrefix (lower case, digits, - and .)" (include "koopkracht.kafkaUsernamePrefix" .)) -}}
{{- end -}}
{{- $reserved := dict
  "topic_prefix" "topicPrefix"
  "kafka_bootstrap" "kafka.bootstrap"
  "kafka_security_protocol" "kafka.securityProtocol"
  "kafka_sasl_mechanism" "kafka.saslMechanism"
  "kafka_sasl_username" "kafka.usernamePrefix"
  "kafka_sasl_password" "kafka.passwordSecret (a Secret)"
  "kafka_ca_file" "kafka.caSecret (a Secret)"
  "database_url" "database.existingSecret (a Secret)"
  "admin_token" "adminToken.existingSecret (a Secret)"
  "metrics_token" "metricsToken.existingSecret (a Secret)"
  "oidc_client_secret" "oidc.clientSecret.existingSecret (a Secret)"
  "api_host" "nothing: the API listens on every address of its pod"
  "api_port" "api.port"
  "metrics_port" "<process>.metricsPort"
  "data_dir" "nothing: each pod has its own"
-}}
{{- $known := (include "koopkracht.registry" . | fromJson).settings -}}
{{- range $scope := list "settings" "worker" "projector" "webhooks" "scheduler" "api" -}}
{{- $settings := ternary $.Values.settings (index $.Values $scope "settings" | default dict) (eq $scope "settings") -}}
{{- range $name, $_ := $settings -}}
{{- if hasKey $reserved $name -}}
{{- fail (printf "%s: %s is not set here; use %s" (ternary "settings" (printf "%s.settings" $scope) (eq $scope "settings")) $name (get $reserved $name)) -}}
{{- end -}}
{{- if not (has $name $known) -}}
{{- fail (printf "%s: %q is not a setting (services/settings.py; lower case, without KOOPKRACHT_)" (ternary "settings" (printf "%s.settings" $scope) (eq $scope "settings")) $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Whether the process signs in to Kafka with a principal of its own. */}}
{{- define "koopkracht.hasKafkaUser" -}}
{{- $root := index . 0 -}}
{{- if hasKey (include "koopkracht.registry" $root | fromJson).users (index . 1) -}}true{{- end -}}
{{- end -}}

{{/*
A secretKeyRef to the SASL password of (list $ "worker"), or of "admin" for the topics Job. Without
kafka.passwordSecret, from the Secret that Strimzi's User Operator keeps for a SCRAM user, named
after its KafkaUser.
*/}}
{{- define "koopkracht.kafkaPasswordRef" -}}
{{- $root := index . 0 -}}
{{- $who := index . 1 -}}
{{- if $root.Values.kafka.passwordSecret -}}
name: {{ $root.Values.kafka.passwordSecret }}
key: {{ $who }}
{{- else -}}
name: {{ printf "%s-%s" (include "koopkracht.kafkaUsernamePrefix" $root) $who }}
key: password
{{- end -}}
{{- end -}}

{{/*
The environment of a process or job: (list $ "worker" "worker") — the root, the process's name, and
the principal it signs in to Kafka as ("" for none). Settings from values come last, so they
cannot shadow what the chart sets (the validate template refuses those names anyway).
*/}}
{{- define "koopkracht.env" -}}
{{- $root := index . 0 -}}
{{- $process := index . 1 -}}
{{- $principal := index . 2 -}}
{{- $values := $root.Values -}}
- name: KOOPKRACHT_TOPIC_PREFIX
  value: {{ $values.topicPrefix | quote }}
- name: KOOPKRACHT_DATA_DIR
  value: /var/lib/koopkracht
{{- if $principal }}
{{- /* Only the processes that reach Kafka (each with its own principal) get its settings: the
webhook dispatcher and the migrations never do, and SASL settings without credentials would
stop them at start-up. */}}
- name: KOOPKRACHT_KAFKA_BOOTSTRAP
  value: {{ $values.kafka.bootstrap | quote }}
- name: KOOPKRACHT_KAFKA_SECURITY_PROTOCOL
  value: {{ $values.kafka.securityProtocol | quote }}
{{- end }}
{{- if and (include "koopkracht.sasl" $root) $principal }}
- name: KOOPKRACHT_KAFKA_SASL_MECHANISM
  value: {{ $values.kafka.saslMechanism | quote }}
- name: KOOPKRACHT_KAFKA_SASL_USERNAME
  value: {{ printf "%s-%s" (include "koopkracht.kafkaUsernamePrefix" $root) $principal | quote }}
- name: KOOPKRACHT_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- include "koopkracht.kafkaPasswordRef" (list $root $principal) | nindent 6 }}
{{- end }}
{{- if and (include "koopkracht.tls" $root) $values.kafka.caSecret.name $principal }}
- name: KOOPKRACHT_KAFKA_CA_FILE
  value: {{ printf "/etc/koopkracht/kafka-ca/%s" $values.kafka.caSecret.key | quote }}
{{- end }}
{{- if has $process (list "projector" "webhooks" "scheduler" "api" "migrations") }}
- name: KOOPKRACHT_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $values.database.existingSecret }}
      key: {{ $values.database.key }}
{{- end }}
{{- if has $process (list "worker" "projector" "webhooks" "scheduler") }}
- name: KOOPKRACHT_METRICS_PORT
  value: {{ index $values $process "metricsPort" | quote }}
# On the pod's address: the kubelet's probes and Prometheus reach it there, not on loopback.
- name: KOOPKRACHT_METRICS_HOST
  value: "0.0.0.0"
{{- end }}
{{- if and $values.metricsToken.existingSecret (has $process (list "worker" "projector" "webhooks" "scheduler" "api")) }}
- name: KOOPKRACHT_METRICS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $values.metricsToken.existingSecret }}
      key: {{ $values.metricsToken.key }}
{{- end }}
{{- if eq $process "api" }}
- name: KOOPKRACHT_API_HOST
  value: 0.0.0.0
- name: KOOPKRACHT_API_PORT
  value: {{ $values.api.port | quote }}
{{- if and $values.ingress.enabled (not (hasKey ($values.api.settings | default dict) "public_url")) (not (hasKey $values.settings "public_url")) }}
- name: KOOPKRACHT_PUBLIC_URL
  value: {{ printf "https://%s" $values.ingress.host | quote }}
{{- end }}
{{- if $values.adminToken.existingSecret }}
- name: KOOPKRACHT_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $values.adminToken.existingSecret }}
      key: {{ $values.adminToken.key }}
{{- end }}
{{- if $values.oidc.clientSecret.existingSecret }}
- name: KOOPKRACHT_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $values.oidc.clientSecret.existingSecret }}
      key: {{ $values.oidc.clientSecret.key }}
{{- end }}
{{- end }}
{{- $own := dict -}}
{{- if hasKey $values $process -}}
{{- $own = index $values $process "settings" | default dict -}}
{{- end -}}
{{- $settings := merge (deepCopy $own) $values.settings -}}
{{- range $name := keys $settings | sortAlpha }}
- name: {{ printf "KOOPKRACHT_%s" (upper $name) }}
  value: {{ index $settings $name | toString | quote }}
{{- end }}
{{- end -}}

{{/* Volumes every pod mounts: a writable /tmp and data folder, and the Kafka CA when there is one. */}}
{{- define "koopkracht.volumes" -}}
- name: tmp
  emptyDir: {}
- name: data
  emptyDir: {}
{{- if and (include "koopkracht.tls" .) .Values.kafka.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret.name }}
    items:
      - key: {{ .Values.kafka.caSecret.key }}
        path: {{ .Values.kafka.caSecret.key }}
{{- end }}
{{- end -}}

{{- define "koopkracht.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/koopkracht
{{- if and (include "koopkracht.tls" .) .Values.kafka.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/koopkracht/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* The pod spec's common part: (list $ "worker") */}}
{{- define "koopkracht.podCommon" -}}
{{- $root := index . 0 -}}
automountServiceAccountToken: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "koopkracht.volumes" $root | nindent 2 }}
{{- end -}}

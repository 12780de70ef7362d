{{/* Names and labels shared by every object of the release. */}}
{{- define "tasksage.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tasksage.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component (worker, api, migrate). */}}
{{- define "tasksage.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tasksage.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Workers beyond the partition count would idle in the consumer group. */}}
{{- define "tasksage.maxWorkers" -}}
{{- $max := int .Values.worker.keda.maxReplicas | default (int .Values.kafka.topicPartitions) -}}
{{- if gt $max (int .Values.kafka.topicPartitions) -}}
{{- fail (printf "worker.keda.maxReplicas (%d) is above kafka.topicPartitions (%d): the extra workers would get no partition" $max (int .Values.kafka.topicPartitions)) -}}
{{- end -}}
{{- $max -}}
{{- end -}}

{{/*
Environment of every tasksage container. `url` is the key of the database Secret to use: the owner
role's for migrations, the worker role's otherwise. `hook` is true for the migration Job, which
runs before the ConfigMap with the tier table exists and does not need it. Settings are rendered here rather than read from
the ConfigMap so that the pre-install migration hook, which runs before the ConfigMap exists, gets
the same values.
*/}}
{{- define "tasksage.env" -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ .root.Values.kafka.bootstrapServers | quote }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.database.existingSecret }}
      key: {{ .url }}
- name: TASKSAGE_TOPIC_PARTITIONS
  value: {{ .root.Values.kafka.topicPartitions | quote }}
- name: TASKSAGE_CONSUMER_GROUP
  value: {{ .root.Values.kafka.consumerGroup | quote }}
- name: TASKSAGE_DATA_DIR
  value: /var/lib/tasksage
{{- if not .hook }}
- name: TASKSAGE_TIERS_FILE
  value: /etc/tasksage/tiers.toml
{{- end }}
- name: TASKSAGE_METRICS_PORT
  value: {{ .root.Values.worker.metricsPort | quote }}
{{- range $name, $value := .root.Values.settings }}
{{- if not (hasPrefix "TASKSAGE_" $name) }}
{{- fail (printf "settings.%s: only TASKSAGE_* settings belong here; secrets go in extraSecretEnv" $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- range .root.Values.extraSecretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}
{{- end -}}

{{/* Writable places under a read-only root filesystem, and the tier table. */}}
{{- define "tasksage.volumes" -}}
- name: tmp
  emptyDir: {}
- name: data
  emptyDir: {}
- name: config
  configMap:
    name: {{ include "tasksage.fullname" . }}
{{- end -}}

{{- define "tasksage.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/tasksage
- name: config
  mountPath: /etc/tasksage
  readOnly: true
{{- end -}}

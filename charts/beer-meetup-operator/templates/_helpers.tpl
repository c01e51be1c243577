{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "bmo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-<chart>, or the release name alone when it already contains the chart name. */}}
{{- define "bmo.fullname" -}}
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

{{/* Name of cluster-scoped objects: unique per release namespace, so two releases of the same name
in different namespaces do not collide. */}}
{{- define "bmo.clusterName" -}}
{{- printf "%s-%s" (include "bmo.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bmo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bmo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bmo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bmo.labels" -}}
helm.sh/chart: {{ include "bmo.chart" . }}
{{ include "bmo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: beer-meetup-platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "bmo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bmo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "bmo.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The namespaces the operator watches in namespaced mode, one per line: `watchNamespaces`, or the
release namespace when it is empty. Cluster-wide mode (`clusterWide`) watches every namespace.
*/}}
{{- define "bmo.watchedNamespaces" -}}
{{- if and .Values.clusterWide .Values.watchNamespaces }}
{{- fail "clusterWide=true watches every namespace: leave watchNamespaces empty (or set clusterWide=false to watch only those)" }}
{{- end }}
{{- if not .Values.clusterWide }}
{{- range (.Values.watchNamespaces | default (list .Release.Namespace)) }}
{{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Name of the release's objects, at most 63 characters. */}}
{{- define "fhirgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fhirgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fhirgate.labels" -}}
{{ include "fhirgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fhirgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fhirgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The files of the configuration volume: path (relative to routes.yaml) →
content. ConfigMap keys cannot hold "/", so each file gets the key
f-<sha256 of its path> and the volume's items map keys back to paths.
*/}}
{{- define "fhirgate.configFiles" -}}
{{- $files := dict -}}
{{- if .Values.config.files -}}
{{- $files = .Values.config.files -}}
{{- else -}}
{{- range $path, $_ := .Files.Glob "files/profiles/**" -}}
{{- $_ := set $files (trimPrefix "files/" $path) ($.Files.Get $path) -}}
{{- end -}}
{{- end -}}
{{- toYaml $files -}}
{{- end -}}

{{- define "fhirgate.routes" -}}
{{- default (.Files.Get "files/routes.yaml") .Values.config.routes -}}
{{- end -}}

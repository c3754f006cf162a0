{{- define "switchyard.labels" -}}
app.kubernetes.io/name: switchyard-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "switchyard.selector" -}}
app.kubernetes.io/name: switchyard-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "switchyard.image" -}}
{{ .image.repository }}:{{ .image.tag | default .appVersion }}
{{- end }}

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

{{/* One entry of the injection webhook; see webhook.yaml. */}}
{{- define "switchyard.webhookEntry" }}
  - name: {{ .name }}
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: {{ .root.Values.webhook.failurePolicy }}
    timeoutSeconds: {{ .root.Values.webhook.timeoutSeconds }}
    reinvocationPolicy: Never
    namespaceSelector:
      matchExpressions:
        - key: switchyard.dev/inject
          operator: {{ .namespaceOperator }}
          values: [enabled]
        # Belt and braces from 1.21 (before it the label does not exist and this matches
        # every namespace): the operator's own pods and kube-system's are never sent.
        - key: kubernetes.io/metadata.name
          operator: NotIn
          values: [{{ .root.Release.Namespace | quote }}, kube-system]
    objectSelector:
      matchExpressions:
        - key: switchyard.dev/inject
          operator: {{ .podOperator }}
          values: [{{ .podValue | quote }}]
    clientConfig:
      {{- if .root.Values.webhook.url }}
      url: {{ .root.Values.webhook.url | quote }}
      {{- else }}
      service:
        name: switchyard-operator
        namespace: {{ .root.Release.Namespace }}
        path: /inject
        port: 443
      {{- end }}
    rules:
      - operations: [CREATE]
        apiGroups: [""]
        apiVersions: [v1]
        resources: [pods]
        scope: Namespaced
{{- end }}

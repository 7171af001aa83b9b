{{- define "signgate.name" -}}signgate{{- end -}}
{{- define "signgate.fullname" -}}
{{- if contains "signgate" .Release.Name -}}
{{ .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else -}}
{{ .Release.Name | trunc 50 | trimSuffix "-" }}-signgate
{{- end -}}
{{- end -}}
{{- define "signgate.labels" -}}
app.kubernetes.io/name: signgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "signgate.selector" -}}
app.kubernetes.io/name: signgate
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "signgate.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}
{{- define "signgate.service" -}}{{ include "signgate.fullname" . }}{{- end -}}
{{- define "signgate.tlsSecret" -}}{{ include "signgate.fullname" . }}-tls{{- end -}}
{{/*
The self-managed TLS material: a CA and a serving certificate for the Service's DNS names,
generated once per render and shared by the Secret and the webhook configurations' caBundle.
*/}}
{{- define "signgate.selfTLS" -}}
{{- $svc := include "signgate.service" . -}}
{{- $ns := .Release.Namespace -}}
{{- /* An upgrade keeps the CA already installed and issues a new serving certificate from it:
       the webhook configurations' caBundle never changes, so the certificate the running Pods
       still serve stays trusted until the kubelet hands them the new one. */ -}}
{{- $existing := lookup "v1" "Secret" $ns (include "signgate.tlsSecret" .) -}}
{{- $data := (and $existing $existing.data) | default dict -}}
{{- $ca := dict -}}
{{- if and (index $data "ca.crt") (index $data "ca.key") -}}
{{- $ca = buildCustomCert (index $data "ca.crt") (index $data "ca.key") -}}
{{- else -}}
{{- $ca = genCA (printf "%s-ca" $svc) 3650 -}}
{{- end -}}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $dns 825 $ca -}}
{{- dict "ca" ($ca.Cert | b64enc) "caKey" ($ca.Key | b64enc) "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) | toJson -}}
{{- end -}}
{{/*
The client CA's volume source (webhook.clientAuth): exactly one of caPEM (a ConfigMap the chart
writes), existingConfigMap and existingSecret; its key is mounted as ca.crt.
*/}}
{{- define "signgate.clientCAVolume" -}}
{{- $auth := .Values.webhook.clientAuth -}}
{{- $sources := 0 -}}
{{- range (list $auth.caPEM $auth.existingConfigMap $auth.existingSecret) -}}
{{- if . -}}{{- $sources = add1 $sources -}}{{- end -}}
{{- end -}}
{{- if ne $sources 1 -}}
{{- fail "webhook.clientAuth.enabled needs exactly one of webhook.clientAuth.caPEM, existingConfigMap and existingSecret" -}}
{{- end -}}
{{- if $auth.existingSecret -}}
secret: {secretName: {{ $auth.existingSecret }}, items: [{key: {{ $auth.caKey | quote }}, path: ca.crt}]}
{{- else if $auth.existingConfigMap -}}
configMap: {name: {{ $auth.existingConfigMap }}, items: [{key: {{ $auth.caKey | quote }}, path: ca.crt}]}
{{- else -}}
configMap: {name: {{ include "signgate.fullname" . }}-client-ca, items: [{key: ca.crt, path: ca.crt}]}
{{- end -}}
{{- end -}}

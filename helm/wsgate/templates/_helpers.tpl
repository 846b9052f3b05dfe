{{/* Names and labels shared by every object of the release. */}}

{{- define "wsgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* At most 36 characters, so that pod names (<fullname>-gateway-<hash>-<id>),
     which become WSGATE_NODE_ID, stay within the 63 of a DNS label and the 64 of a node id. */}}
{{- define "wsgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 36 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 36 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 36 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "wsgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "wsgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "wsgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wsgate.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "wsgate.componentLabels" -}}
{{ include "wsgate.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "wsgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "wsgate.natsUrl" -}}
{{- if .Values.nats.dev.enabled -}}
{{- printf "nats://%s-nats:4222" (include "wsgate.fullname" .) -}}
{{- else -}}
{{- required "nats.url is required (or nats.dev.enabled=true)" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{- define "wsgate.natsSecretName" -}}
{{- if .Values.nats.auth.existingSecret -}}
{{- .Values.nats.auth.existingSecret -}}
{{- else -}}
{{- printf "%s-nats" (include "wsgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* WSGATE_NATS_PASSWORD of a role from the NATS Secret; call with (dict "ctx" $ "key" K). */}}
{{- define "wsgate.natsPasswordEnv" -}}
{{- if .ctx.Values.nats.auth.enabled -}}
- name: WSGATE_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "wsgate.natsSecretName" .ctx }}
      key: {{ .key }}
{{- end -}}
{{- end -}}

{{- define "wsgate.apiSecretName" -}}
{{- if .Values.api.existingSecret -}}
{{- .Values.api.existingSecret -}}
{{- else -}}
{{- printf "%s-api" (include "wsgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* "true" when the gateways verify with the HS256 secret: neither a public key nor a JWKS
URL is configured. */}}
{{- define "wsgate.jwtHs256" -}}
{{- if and (eq .Values.auth.mode "jwt") (not .Values.auth.jwt.publicKey.existingSecret) (not .Values.auth.jwt.jwksUrl) -}}
true
{{- end -}}
{{- end -}}

{{- define "wsgate.jwtSecretName" -}}
{{- if .Values.auth.jwt.existingSecret -}}
{{- .Values.auth.jwt.existingSecret -}}
{{- else -}}
{{- printf "%s-jwt" (include "wsgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Spreads a component's pods over nodes; call with (dict "ctx" $ "component" C "mode" soft|hard). */}}
{{- define "wsgate.antiAffinity" -}}
{{- if eq .mode "hard" -}}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "wsgate.selectorLabels" . | nindent 10 }}
{{- else if eq .mode "soft" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "wsgate.selectorLabels" . | nindent 12 }}
{{- else -}}
{{- fail (printf "antiAffinity must be soft or hard, not %q" .mode) -}}
{{- end -}}
{{- end -}}

{{/* One scope's ConfigMap (also hashed into its pod template's checksum/config annotation). */}}
{{- define "cmk-controller.configmap" -}}
{{- if regexMatch "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*:[^/@]*@" (toString .Values.controller.source) }}
{{- fail (printf "controller.source carries credentials%s: a ConfigMap is not secret; put them in the Secret named by git.credentialsSecret" (include "cmk-controller.where" .)) }}
{{- end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "cmk-controller.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "cmk-controller.labels" . | nindent 4 }}
data:
  CMKCTL_SOURCE: {{ required (printf "controller.source (the spec repository's git URL) is required%s" (include "cmk-controller.where" .)) .Values.controller.source | quote }}
  CMKCTL_REF: {{ .Values.controller.ref | quote }}
  CMKCTL_PATH: {{ .Values.controller.path | quote }}
  CMKCTL_INTERVAL: {{ .Values.controller.interval | quote }}
  CMKCTL_MODE: {{ .Values.controller.mode | quote }}
  CMKCTL_LISTEN: {{ printf ":%d" (int .Values.controller.port) | quote }}
  # the journal and the writer lock; the same value serves `cmkctl plan/apply/drift` run in the pod, so
  # an in-pod apply takes the controller's lock (the file lock on the volume, or the blob lease)
  CMKCTL_STATE: {{ default "/var/lib/cmkctl" (include "cmk-controller.stateUrl" .) | quote }}
  # the git clone and the controller's bookkeeping (with azureblob state the volume holds only these)
  CMKCTL_WORKDIR: "/var/lib/cmkctl"
{{- end -}}

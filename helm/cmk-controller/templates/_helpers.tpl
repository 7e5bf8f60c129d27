{{- define "cmk-controller.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name; each scope's objects add "-<scope>" to it (see cmk-controller.fullname). */}}
{{- define "cmk-controller.releaseName" -}}
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

{{/* The name of one scope's objects: the release name alone for the single implicit scope (the names a
     one-scope release has always had), else "<release name>-<scope>" (<= 55 characters, so "-metrics"
     and "-state" suffixes still fit 63). */}}
{{- define "cmk-controller.fullname" -}}
{{- if .Scope.name -}}
{{- printf "%s-%s" (include "cmk-controller.releaseName" . | trunc 34 | trimSuffix "-") .Scope.name -}}
{{- else -}}
{{- include "cmk-controller.releaseName" . -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: a named scope adds its own label, so each scope's Deployment, Service and
     NetworkPolicy select only that scope's pod. The single implicit scope keeps the labels (and so the
     immutable Deployment selector) a one-scope release has always had. */}}
{{- define "cmk-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cmk-controller.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- with .Scope.name }}
cmk.azure.io/scope: {{ . }}
{{- end }}
{{- end -}}

{{- define "cmk-controller.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "cmk-controller.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "cmk-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cmk-controller.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required (printf "serviceAccount.name is required when serviceAccount.create is false%s" (include "cmk-controller.where" .)) .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "cmk-controller.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "cmk-controller.claimName" -}}
{{- default (printf "%s-state" (include "cmk-controller.fullname" .)) .Values.state.persistence.existingClaim -}}
{{- end -}}

{{/* " (scope NAME)" in error messages of a named scope */}}
{{- define "cmk-controller.where" -}}
{{- with .Scope.name }} (scope {{ . }}){{ end -}}
{{- end -}}

{{/* The azureblob URL a scope's journal and lock live in, or "" for a local state volume. */}}
{{- define "cmk-controller.stateUrl" -}}
{{- if eq .Values.state.type "azureblob" -}}
{{- required (printf "state.azureblob.url is required with state.type azureblob (azureblob://ACCOUNT/CONTAINER[/BLOB])%s" (include "cmk-controller.where" .)) .Values.state.azureblob.url -}}
{{- end -}}
{{- end -}}

{{/* Recursive merge of two value trees as JSON: maps merge key by key, anything else in the second
     replaces the first. Unlike sprig's merge, a scope's `false`, "" or 0 does replace a default. */}}
{{- define "cmk-controller.merge" -}}
{{- $base := index . 0 -}}
{{- $over := index . 1 -}}
{{- $out := deepCopy $base -}}
{{- range $key, $value := $over -}}
{{- $current := index $base $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- $_ := set $out $key (include "cmk-controller.merge" (list $current $value) | fromJson) -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* One scope's values: the release's values with the scope's own settings on top. */}}
{{- define "cmk-controller.scopeValues" -}}
{{- $root := index . 0 -}}
{{- $scope := index . 1 -}}
{{- include "cmk-controller.merge" (list (omit $root.Values "scopes") (omit $scope "name" "subscriptions")) -}}
{{- end -}}

{{/* The scopes as JSON: `scopes` when given (checked: unique names, disjoint subscriptions, one state
     and one spec path each, one created ServiceAccount name each), else one implicit scope made of the
     top-level values. */}}
{{- define "cmk-controller.scopes" -}}
{{- if not .Values.scopes -}}
{{- toJson (list (dict "name" "" "subscriptions" list)) -}}
{{- else -}}
{{- $names := dict -}}
{{- $subscriptions := dict -}}
{{- $states := dict -}}
{{- $specs := dict -}}
{{- $accounts := dict -}}
{{- range $scope := .Values.scopes -}}
{{- if hasKey $names $scope.name -}}
{{- fail (printf "scopes: the name %q is used twice" $scope.name) -}}
{{- end -}}
{{- $_ := set $names $scope.name true -}}
{{- range $sub := $scope.subscriptions -}}
{{- $sub = lower $sub -}}
{{- if hasKey $subscriptions $sub -}}
{{- fail (printf "scopes: subscription %s is in scope %s and in scope %s (one writer per subscription: scopes must not overlap)" $sub (get $subscriptions $sub) $scope.name) -}}
{{- end -}}
{{- $_ := set $subscriptions $sub $scope.name -}}
{{- end -}}
{{- $values := include "cmk-controller.scopeValues" (list $ $scope) | fromJson -}}
{{- $ctx := dict "Values" $values "Scope" $scope "Release" $.Release "Chart" $.Chart -}}
{{- $state := "" -}}
{{- if eq $values.state.type "azureblob" -}}
{{- $state = include "cmk-controller.stateUrl" $ctx -}}
{{- else if and $values.state.persistence.enabled $values.state.persistence.existingClaim -}}
{{- $state = printf "claim %s" $values.state.persistence.existingClaim -}}
{{- end -}}
{{- if and $state (hasKey $states $state) -}}
{{- fail (printf "scopes %s and %s share one state (%s): each scope needs its own journal and lock" (get $states $state) $scope.name $state) -}}
{{- end -}}
{{- if $state -}}
{{- $_ := set $states $state $scope.name -}}
{{- end -}}
{{- $spec := printf "%s@%s:%s" $values.controller.source $values.controller.ref $values.controller.path -}}
{{- if hasKey $specs $spec -}}
{{- fail (printf "scopes %s and %s follow the same spec (%s, ref %s, path %s): give each scope its own controller.path" (get $specs $spec) $scope.name $values.controller.source $values.controller.ref $values.controller.path) -}}
{{- end -}}
{{- $_ := set $specs $spec $scope.name -}}
{{- if $values.serviceAccount.create -}}
{{- $account := include "cmk-controller.serviceAccountName" $ctx -}}
{{- if hasKey $accounts $account -}}
{{- fail (printf "scopes %s and %s would both create ServiceAccount %s: leave serviceAccount.name empty or give each scope its own" (get $accounts $account) $scope.name $account) -}}
{{- end -}}
{{- $_ := set $accounts $account $scope.name -}}
{{- end -}}
{{- end -}}
{{- toJson .Values.scopes -}}
{{- end -}}
{{- end -}}

{{/* The template context of one scope: `range` over this in every manifest template. */}}
{{- define "cmk-controller.contexts" -}}
{{- $out := list -}}
{{- range $scope := include "cmk-controller.scopes" . | fromJsonArray -}}
{{- $values := include "cmk-controller.scopeValues" (list $ $scope) | fromJson -}}
{{- $out = append $out (dict "Values" $values "Scope" $scope) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

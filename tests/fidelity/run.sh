#!/usr/bin/env bash
# Fidelity job: run the emulator tests marked `sdk12` with azure-mgmt-loganalytics 12.0.0, the oldest
# SDK we support (msrest-based, per-operation api-versions, stricter status-code lists, facts §1.4).
#
# .venv-sdk12 holds ONLY azure-mgmt-loganalytics 12.0.0 and its own dependencies; everything else
# (pytest, the project, the other Azure SDKs) comes from the main .venv through a .pth file placed
# after the venv's own site-packages, so 12.0.0 wins. Created once (needs PyPI), then fully offline.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
MAIN="${ROOT}/.venv"
VENV="${ROOT}/.venv-sdk12"
PYTHON="${PYTHON:-python3}"

site_of() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

if [ ! -x "${MAIN}/bin/python" ]; then
  echo "fidelity: ${MAIN} is missing; run 'make unit' first" >&2
  exit 2
fi

have_sdk12() {
  [ -x "${VENV}/bin/python" ] && "${VENV}/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("azure-mgmt-loganalytics") == "12.0.0" else 1)
PY
}

if ! have_sdk12; then
  echo "fidelity: creating ${VENV} with azure-mgmt-loganalytics==12.0.0"
  rm -rf "${VENV}"
  "${PYTHON}" -m venv "${VENV}"
  # 12.0.0 imports six without declaring it.
  "${VENV}/bin/python" -m pip install -q "azure-mgmt-loganalytics==12.0.0" six
  # The rest (pytest, trustme, azure-mgmt-monitor, the project itself) from the main venv, after ours.
  printf '%s\n%s\n' "${ROOT}" "$(site_of "${MAIN}")" > "$(site_of "${VENV}")/zz-main-venv.pth"
fi

"${VENV}/bin/python" - <<'PY'
import importlib.metadata as m
print("fidelity: azure-mgmt-loganalytics", m.version("azure-mgmt-loganalytics"))
PY
# -o addopts="" drops the project-wide -q so pytest prints its summary line. Besides the emulator's
# wire-shape tests, a small `cmkctl apply` (create with key, link, re-plan empty) runs on 12.0.0: the
# product reads SDK 12's msrest models differently from SDK 14's mappings (operations._as_dict).
exec "${VENV}/bin/python" -m pytest tests/emulator tests/execution/test_link_writes_sdk_fidelity.py -m sdk12 -o addopts="" --strict-markers -p no:cacheprovider -q -rfE

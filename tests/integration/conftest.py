"""Fixtures for end-to-end `cmkctl plan` scenarios through the emulator (seeded estate, simulated clock)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# the estate/spec builders are shared with tests/azure; plan_runner lives beside this file
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "azure"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_runner import PlanRunner


@pytest.fixture
def plan(
    emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> PlanRunner:
    return PlanRunner(emulator, tmp_path, capsys, monkeypatch)

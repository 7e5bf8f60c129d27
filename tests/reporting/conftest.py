"""Fixtures for `cmkctl report` through the emulator (the runner lives in report_runner.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from report_runner import ReportRunner


@pytest.fixture
def report(emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
           monkeypatch: pytest.MonkeyPatch) -> ReportRunner:
    return ReportRunner(emulator, tmp_path, capsys, monkeypatch)

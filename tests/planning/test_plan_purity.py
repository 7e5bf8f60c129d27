"""The planner and renderers are pure: no clock reads, no file or network I/O, no randomness.

import-linter forbids I/O modules; this catches what it can't see (builtins and stdlib calls).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "controller"
FORBIDDEN = re.compile(
    r"datetime\.now\(|datetime\.utcnow\(|date\.today\(|time\.time\(|time\.monotonic\(|\bopen\(|"
    r"\brandom\b|os\.environ|\bprint\(|uuid\.uuid[14]\("
)
SOURCES = sorted([*ROOT.joinpath("planning").rglob("*.py"), *ROOT.joinpath("render").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_clock_io_or_randomness(path: Path) -> None:
    hits = [f"{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
            if FORBIDDEN.search(line)]
    assert not hits, f"{path.name} must stay pure: {hits}"


def test_the_sources_were_found() -> None:
    assert len(SOURCES) >= 10

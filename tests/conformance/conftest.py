"""The conformance suite's one-page summary: which recorded sessions were replayed against the emulator,
how many interactions matched, which were skipped or differ on purpose, and how many recorded bodies
went through the product's parsing."""

from __future__ import annotations

from typing import Any

from conformance_support import TALLY


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    lines = list(TALLY.lines())
    if not lines:
        return  # the conformance tests did not run in this session
    terminalreporter.section("conformance with recorded Azure sessions")
    for line in lines:
        terminalreporter.write_line(line)

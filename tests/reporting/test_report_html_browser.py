"""The HTML report in a real headless browser (Debian chromium): it renders, offline, and shows the
calendar timeline. The screenshot is kept in bench/out/ (git-ignored) for people to look at."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser import INSTALL_HINT, find_chromium, read_png, render
from report_runner import ReportRunner
from tests_azure_support import KEY_V1, KEY_V2, cluster_doc, estate, workspace_set_doc

from controller.reporting.html import KIND_COLOUR
from controller.reporting.model import EventKind

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = ROOT / "bench" / "out"
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip(f"chromium is not installed: {INSTALL_HINT}")
    return binary


def test_html_report_renders_offline_in_chromium_and_shows_the_calendar(
    emulator: Any, report: ReportRunner, chromium: str, tmp_path: Path
) -> None:
    doc = estate()
    doc["vaults"][0]["keys"] = [{"name": "cmk", "versions": [
        {"version": KEY_V1, "enabled": True, "created": "2026-01-01T00:00:00Z"},
        {"version": KEY_V2, "enabled": True, "created": "2026-06-01T00:00:00Z",
         "expires": (NOW + timedelta(days=20)).isoformat()},
    ]}]
    emulator.seed(doc)
    page = tmp_path / "report.html"
    run = report([cluster_doc(), workspace_set_doc(["wks1", "wks2"])], fmt="html", extra=["--out", str(page)])
    assert run.exit_code == 0, run.stderr
    html = page.read_text(encoding="utf-8")
    # self-contained: nothing to fetch (no src/href, no <script>), and the CSP forbids it anyway
    assert not re.search(r"\s(src|href)=", html) and "<script" not in html.lower()

    shown = render(chromium, page, tmp_path)

    assert "Refused to" not in shown.log and "Uncaught" not in shown.log, shown.log[-2000:]
    assert 'id="calendar"' in shown.dom and '<svg id="timeline"' in shown.dom
    # the timeline has one row per dated event: key expiry, C4 lock end, two W3 budget dates
    assert shown.dom.count('class="event"') == 4
    for date in ("2026-12-10", "2026-12-16", "2026-12-20"):
        assert date in shown.dom
    assert "wks2" in shown.dom and "NOT protected" in shown.dom

    image = read_png(shown.png)
    assert (image.width, image.height) == (1400, 1100)
    # the timeline's dots were painted, not just present in the DOM
    for kind in (EventKind.KEY_EXPIRES, EventKind.CAPACITY_LOCK_ENDS, EventKind.LINK_BUDGET_FREES):
        assert image.count(_rgb(KIND_COLOUR[kind])) > 20, f"no {kind} dot in the screenshot"

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "screenshot.png", SCREENSHOT_DIR / "report-calendar.png")
    shutil.copyfile(page, SCREENSHOT_DIR / "report-calendar.html")

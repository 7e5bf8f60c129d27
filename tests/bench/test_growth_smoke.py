"""Small-scale smoke of the cost-growth benchmark (`bench/growth.py`): the same code paths as
`make bench` (plan and apply workers against the emulator, the log-log fit, the table, the chart), on
two tiny sizes so `make test` notices when it breaks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import growth


def test_growth_exponent_is_the_log_log_slope() -> None:
    """Scenario: a metric proportional to the size has exponent 1, one growing with its square 2, a
    constant 0; fewer than two usable points give no exponent."""
    xs = [5_000.0, 10_000.0, 20_000.0, 40_000.0]
    assert growth.growth_exponent(xs, [3 * x for x in xs]) == pytest.approx(1.0)
    assert growth.growth_exponent(xs, [x * x for x in xs]) == pytest.approx(2.0)
    assert growth.growth_exponent(xs, [7.0] * 4) == pytest.approx(0.0)
    assert growth.growth_exponent([1.0], [1.0]) is None


@pytest.mark.timeout(180)
def test_two_tiny_sizes_measure_plan_and_apply_and_render(tmp_path: Path) -> None:
    """Scenario: growth over 100 and 200 workspaces (one subscription, apply on a quarter of them):
    every plan is a no-op, every apply converges, each metric gets an exponent, the README block
    carries the table between its markers and the chart is an SVG with one line per metric."""
    res = growth.run([200, 100], apply_fraction=0.25, subscriptions=1, runs=1, log=lambda s: None)
    assert [r["workspaces"] for r in res["rows"]] == [100, 200]
    assert [r["apply_workspaces"] for r in res["rows"]] == [25, 50]
    for row in res["rows"]:
        assert row["plan_changes"] == 0
        assert row["apply_exit_code"] == 0
        assert row["plan_wall_s"] > 0 and row["apply_cpu_s"] > 0 and row["plan_peak_rss_mb"] > 0
        assert len(row["plan_load_average"]) == 1
    assert set(res["exponents"]) == {key for key, _, _ in growth.METRICS}
    assert all(e is not None for e in res["exponents"].values())

    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nprose\n", encoding="utf-8")
    growth.write_readme(res, readme)
    growth.write_readme(res, readme)  # replaced, not appended
    text = readme.read_text(encoding="utf-8")
    assert text.count("<!-- growth:begin -->") == 1 and "prose" in text
    assert "| 100 |" in text and "| 200 |" in text and "**growth exponent**" in text

    svg = ET.fromstring(growth.chart_svg(res))  # noqa: S314 (our own output)
    ns = "{http://www.w3.org/2000/svg}"
    lines = svg.findall(f"{ns}polyline")
    assert len(lines) == 1 + len(growth.METRICS)  # the linear reference and one per metric

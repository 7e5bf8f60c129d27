"""What a user watching a long apply sees: elapsed time against the usual duration."""

from __future__ import annotations

import io

from controller.execution.progress import LineProgress, LiveProgress, human


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_show_usual_duration_and_elapsed_time() -> None:
    """Scenario: not a TTY (CI log): a cluster create logs its start with the usual ~2h and its end
    with the time it took."""
    lines: list[str] = []
    clock = FakeClock()
    progress = LineProgress(out=lines.append, monotonic=clock)
    progress.step_started("c", "cluster.prod-weu: create", 7200, "~2h")
    clock.t = 41 * 60
    progress.note("c", "waiting for a running operation (rules C6/W5)")
    clock.t = 2 * 3600 + 5 * 60
    progress.step_finished("c", "done")
    assert lines == [
        "cluster.prod-weu: create: started (usually ~2h)",
        "cluster.prod-weu: create: waiting for a running operation (rules C6/W5)",
        "cluster.prod-weu: create: done after 2h05m",
    ]


def test_live_view_lists_running_operations_with_elapsed_time() -> None:
    """Scenario: on a TTY the live table shows each running step, its elapsed time and the usual range;
    finished steps leave the table."""
    clock = FakeClock()
    progress = LiveProgress(stream=io.StringIO(), monotonic=clock)
    progress.step_started("c", "cluster.prod-weu: create", 7200, "~2h")
    progress.step_started("l", "workspace.law1: link", 5400, "up to 90m")
    clock.t = 41 * 60
    progress.step_finished("l", "done")
    table = progress._table()
    assert table.row_count == 1
    cells = [str(col._cells[0]) for col in table.columns]
    assert cells == ["[bold]cluster.prod-weu: create[/]", "41m", "usually ~2h"]


def test_human_durations() -> None:
    assert [human(s) for s in (5, 61, 3600, 7260)] == ["5s", "1m", "1h00m", "2h01m"]

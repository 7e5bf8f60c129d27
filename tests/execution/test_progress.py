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


def test_plain_lines_say_a_long_step_is_still_running_at_growing_intervals() -> None:
    """Scenario: a CI log of a 2-hour create: a heartbeat every 10 s in the first minute, every minute
    up to 10 minutes, then every 5 minutes; a check between two due times prints nothing."""
    lines: list[str] = []
    clock = FakeClock()
    progress = LineProgress(out=lines.append, monotonic=clock, heartbeat=None)
    progress.step_started("c", "cluster.prod-weu: create", 7200, "~2h")
    for t in range(0, 2 * 3600, 5):
        clock.t = t
        progress.heartbeat()
    beats = [ln for ln in lines if "still running" in ln]
    assert beats[:2] == [
        "cluster.prod-weu: create: still running [10s elapsed, usually ~2h]",
        "cluster.prod-weu: create: still running [20s elapsed, usually ~2h]",
    ]
    elapsed = [ln.split("[")[1].split(" elapsed")[0] for ln in beats]
    assert elapsed[4:7] == ["50s", "1m", "2m"]
    assert elapsed[13:16] == ["9m", "10m", "15m"]
    assert elapsed[-1] == "1h55m" and len(beats) == 5 + 10 + 21


def test_many_steps_due_at_once_are_one_heartbeat_line() -> None:
    """Scenario: 400 links running side by side: one line names how many, not 400 lines."""
    lines: list[str] = []
    clock = FakeClock()
    progress = LineProgress(out=lines.append, monotonic=clock, heartbeat=None)
    for i in range(400):
        progress.step_started(f"l{i}", f"workspace.ws{i}: link", 5400, "up to 90m")
    lines.clear()
    clock.t = 11
    progress.heartbeat()
    assert lines == ["still running: 400 operations (400 link); longest: workspace.ws0: link [11s elapsed]"]

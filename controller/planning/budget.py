"""Rule W3 window arithmetic: at most N link or unlink operations per workspace in any 30 days.

Decisions (docs/rules.md W3 says "link or unlink"): both kinds count, a move (unlink + link) costs two,
and the history is our journal ∪ the clusters' `associateDate` ∪ the Activity Log (deduplicated by
`History.merged`). The window is rolling: an operation at `t` stops counting at `t + window`.
"""

from __future__ import annotations

from datetime import datetime

from controller.model.history import History, LinkOperation
from controller.model.limits import Limits
from controller.model.observed import ObservedState


def with_associate_dates(history: History, observed: ObservedState) -> History:
    """Treat each live `associateDate` as a link operation unless the history already has it.

    Observing puts every `associateDate` in the live history already, so usually nothing is new and the
    history is returned as it is (merging 40,000 duplicates again would cost a plan of a
    40,000-workspace fleet a third of a second; `link_ops_since` deduplicates per workspace when
    asked anyway)."""
    known = set(history.link_operations)
    extra = tuple(
        op
        for cluster_key, cluster in sorted(observed.clusters.items())
        for ws_key, at in sorted(cluster.associated_workspaces.items())
        if at is not None
        for op in (
            LinkOperation(workspace_key=ws_key, kind="link", at=at, cluster_key=cluster_key,
                          source="associateDate"),
        )
        if op not in known
    )
    return history.merged(History(link_operations=extra)) if extra else history


def ops_in_window(history: History, workspace_key: str, now: datetime, limits: Limits) -> list[datetime]:
    """Times of the operations that still count against the workspace's budget at `now`."""
    return [op.at for op in history.link_ops_since(workspace_key, now - limits.link_window) if op.at <= now]


def earliest_with_room(
    history: History, workspace_key: str, now: datetime, limits: Limits, needed: int
) -> datetime | None:
    """The earliest time >= now when `needed` more operations fit in the window; None if never."""
    if needed > limits.link_ops_per_window:
        return None
    times = sorted(ops_in_window(history, workspace_key, now, limits))
    excess = len(times) - (limits.link_ops_per_window - needed)
    if excess <= 0:
        return now
    return times[excess - 1] + limits.link_window

"""The controller's log as people and log collectors read it: text or JSON, and a line per new revision."""

from __future__ import annotations

import io
import json
from typing import Any

from gitops_repo import GitRepo, MakeReconciler, seed, spec_docs

from controller.reconcile.logs import JsonLog


def test_text_format_is_one_readable_line_per_event() -> None:
    stream = io.StringIO()
    log = JsonLog(stream=stream, fmt="text")
    log.emit("pass", level="error", result="failed", message="git fetch failed: timed out", applied=0)
    [line] = stream.getvalue().splitlines()
    assert not line.startswith("{")
    assert " ERROR   pass result=failed " in line
    assert 'message="git fetch failed: timed out"' in line and "applied=0" in line


def test_auto_is_json_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()  # like a container's stderr: not a TTY
    JsonLog(stream=stream, fmt="auto").emit("controller.started", scope="s")
    assert json.loads(stream.getvalue())["event"] == "controller.started"


def test_a_new_revision_is_logged_once_when_the_head_moves(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    first = repo.commit_spec(spec_docs(), "declare")
    rec = make_reconciler(repo.url)
    rec.run_pass()
    rec.run_pass()  # same head: no second line
    second = repo.commit_spec(spec_docs(tags={"team": "obs"}), "tag it")
    rec.run_pass()
    seen = [(r["revision"], r["previous"]) for r in rec.log.records if r["event"] == "source.new_revision"]
    assert seen == [(first, None), (second, first)]

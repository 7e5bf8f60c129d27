"""Renderers: the JSON artefact round-trips and matches its schema; text and markdown say what a
reviewer must see (symbols, summary line, dates, reasons, remedies); markdown fits a PR comment."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from render_plans import big_plan, busy_plan, empty_plan

from controller.planning.plan import FORMAT_VERSION
from controller.render import MARKDOWN_LIMIT, PlanFormatError, from_json, to_json, to_markdown, to_text
from controller.render.json_plan import redact
from controller.render.schema import plan_schema_text

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "specs" / "plan.schema.json"


def test_json_round_trips_and_has_the_fields_tools_rely_on() -> None:
    p = busy_plan()
    text = to_json(p)
    assert from_json(text) == p
    data = json.loads(text)
    for field in ("format_version", "changes", "deferred", "blocked", "warnings", "drift", "summary"):
        assert field in data
    assert data["format_version"] == FORMAT_VERSION
    for item in data["changes"]:
        assert {"id", "action", "address", "depends_on"} <= set(item)
    for item in data["deferred"]:
        assert {"id", "action", "address", "rule", "reason", "not_before"} <= set(item)
    c4 = next(d for d in data["deferred"] if d["rule"] == "C4")
    assert c4["not_before"].endswith("Z") and c4["not_before"].startswith("2026-12-29T06:00:00")
    assert {b["rule"] for b in data["blocked"]} == {"B2", "C8"}  # Query BYOS; vault region
    assert data["summary"]["changes"] == len(data["changes"])


def test_json_validates_against_the_committed_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    for p in (busy_plan(), empty_plan()):
        jsonschema.validate(json.loads(to_json(p)), schema)


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text() == plan_schema_text(), (
        "specs/plan.schema.json is stale: regenerate with "
        "python -c 'from controller.render.schema import plan_schema_text as t; "
        "open(\"specs/plan.schema.json\",\"w\").write(t())'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"changes": []}', "no format_version"),
        ('{"format_version": "9.0"}', "not supported"),
        ('{"format_version": "2.0", "generated_at": "x"}', "not a valid plan"),
        ('{"format_version": "1.0"}', "not supported"),  # parameters were untyped dicts
    ],
)
def test_broken_plan_files_give_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(PlanFormatError, match=message):
        from_json(text)


def test_a_plan_file_whose_parameters_are_of_another_action_is_refused() -> None:
    """A step's parameters are the model of its own action: a link's parameters under `delete` (an
    edited file) are not a plan, and nothing of it runs."""
    data = json.loads(to_json(busy_plan()))
    link = next(c for c in data["changes"] if c["action"] == "link")
    link["action"] = "delete"
    with pytest.raises(PlanFormatError, match=r"not a valid plan: changes\.\d+"):
        from_json(json.dumps(data))


def test_json_parameters_and_summary_are_typed_and_readable() -> None:
    """Each step's parameters name their action and only its fields; the summary counts by action."""
    data = json.loads(to_json(busy_plan()))
    for item in data["changes"]:
        assert item["parameters"]["action"] == item["action"]
    link = next(c for c in data["changes"] if c["action"] == "link")
    assert set(link["parameters"]) == {"action", "workspace_id", "cluster_id"}
    counts: dict[str, int] = {}
    for item in data["changes"]:
        counts[item["action"]] = counts.get(item["action"], 0) + 1
    assert data["summary"]["by_action"] == counts
    assert all(isinstance(r, str) and r[0] in "CWKB" for c in data["changes"] for r in c["rules"])


def test_text_reads_like_terraform() -> None:
    out = to_text(busy_plan())
    lines = out.splitlines()
    assert ("Plan: 1 cluster to add, 0 to change, 0 to destroy; 2 workspace links to add, 1 to remove; "
            "1 storage link to add, 0 to remove; 2 deferred, 2 blocked.") in lines
    assert any(ln.lstrip().startswith("+") and "create" in ln and "cluster.new1" in ln for ln in lines)
    assert any(ln.lstrip().startswith("-") and "unlink" in ln and "workspace.wks1" in ln for ln in lines)
    assert "[C4] not before 2026-12-29T06:00Z" in out
    assert "[B2]" in out and "remedy: export the saved searches" in out
    assert "CRITICAL [B2]" in out  # opted-in Query BYOS still shouts
    assert "[DESTRUCTIVE]" in out
    # order of sections: changes, summary, deferred, blocked
    assert out.index("Plan:") < out.index("Deferred") < out.index("Blocked")


def test_text_without_changes_says_so() -> None:
    out = to_text(empty_plan())
    assert out.startswith("No changes.")
    assert "Plan:" not in out and "Drift" not in out and "Warnings" not in out  # empty sections left out


def test_markdown_puts_the_summary_and_blockers_first_and_details_collapsed() -> None:
    md = to_markdown(busy_plan())
    first = md.splitlines()[0]
    assert first.startswith("### cmkctl plan:") and "2 blocked" in first
    assert md.index("blocked** change(s) need you") < md.index("<details>")
    assert "<details><summary>Changes (" in md and "<details><summary>Deferred (2)</summary>" in md
    assert md.count("<details>") == md.count("</details>")


def test_markdown_of_a_huge_plan_is_capped_with_a_note() -> None:
    p = big_plan(1500)
    full = to_markdown(p, limit=10**9)
    assert len(full) > MARKDOWN_LIMIT  # the cap matters for this plan
    md = to_markdown(p)
    assert len(md) < MARKDOWN_LIMIT
    assert "more rows not shown" in md and "JSON plan artefact" in md
    assert md.count("<details>") == md.count("</details>")


def test_token_like_strings_never_reach_the_output() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    p = busy_plan()
    leaky = p.model_copy(update={"changes": (p.changes[0].model_copy(
        update={"reason": f"Bearer {jwt}", "parameters": p.changes[0].parameters.model_copy(
            update={"cluster_id": "https://x/?sv=1&sig=abcdefghijklmnopqrstu"})}),
        *p.changes[1:])})
    for out in (to_json(leaky), to_text(leaky), to_markdown(leaky)):
        assert jwt not in out and "abcdefghijklmnopqrstu" not in out
    assert redact("nothing secret here") == "nothing secret here"

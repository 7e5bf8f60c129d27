"""What a reviewer reads in `cmkctl plan` text and PR markdown, through the real CLI against the emulator:
the spec's own field names, YAML values, no step ids or hashes, a summary line that adds up to the
list, no drift for what does not exist yet, no empty sections."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from tests_azure_support import (
    CLUSTER,
    LOCATION,
    STORAGE_ID,
    SUB,
    VAULT_URI,
    cluster_doc,
    estate,
    workspace_id,
)

NEW = "clu02"
PYTHON_VALUES = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\{'|\['")
SNAKE_FIELDS = ("double_encryption", "billing_type", "availability_zones", "user_assigned_identity",
                "vault_uri", "version_state")
STEP_IDS = re.compile(r"(create|update|set_key|link|unlink|byos_link):(cluster:)?[0-9a-f-]{36}/|sha256:")
SUMMARY = re.compile(
    r"^Plan: (\d+) clusters? to add, (\d+) to change, (\d+) to destroy"
    r"(?:; (\d+) workspace links? to add, (\d+) to remove)?"
    r"(?:; (\d+) storage links? to add, (\d+) to remove)?"
    r"(?:; (\d+) deferred, (\d+) blocked)?\.$",
    re.M,
)


def _estate() -> dict[str, Any]:
    """clu01 exists (Cluster billing, costCenter 4711, double encryption, zones, SKU changed 15 days
    ago); wks2 and wks3 exist unlinked."""
    base = estate(extra_workspaces=["wks3"])
    base["clusters"][0].update(
        {"billing_type": "Cluster", "tags": {"costCenter": "4711"}, "double_encryption": True,
         "availability_zones": True}
    )
    return base


def _spec(directory: Path) -> Path:
    """clu01 changes billing and tags (an update now), lowers capacity (C4: deferred), asks for no
    double encryption and no zones (C9: blocked, warned); clu02 is new and wks2, wks3 move onto it."""
    docs = [
        cluster_doc(billingType="Workspaces", tags={"costCenter": "4712"}, doubleEncryption=False,
                    availabilityZones=False, capacity=500),
        {**cluster_doc(name=NEW, resourceGroup="rg-mon2"), "metadata": {"name": NEW}},
        {"apiVersion": "cmk.azure.io/v1", "kind": "WorkspaceSet", "metadata": {"name": "apps"},
         "spec": {"cluster": CLUSTER, "workspaces": [
             {"id": workspace_id("wks1"), "byos": {"query": STORAGE_ID, "allowSavedSearchLoss": True}}]}},
        {"apiVersion": "cmk.azure.io/v1", "kind": "WorkspaceSet", "metadata": {"name": "new"},
         "spec": {"cluster": NEW, "workspaces": [workspace_id("wks2"), workspace_id("wks3")]}},
    ]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spec.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return directory


def _cli(env: dict[str, str], state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args, "--state", str(state)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**env, "PATH": "/usr/bin:/bin"},
    )


def _section(text: str, title: str) -> list[str]:
    """The item lines (two-space indent, not the nine-space detail lines) under a section title."""
    if title not in text:
        return []
    body = text.split(title, 1)[1].split("\n\n", 1)[0]
    return [ln for ln in body.splitlines()[1:] if ln.startswith("  ") and not ln.startswith("     ")]


def _reads_well(out: str) -> None:
    assert not PYTHON_VALUES.search(out), PYTHON_VALUES.search(out)
    for snake in SNAKE_FIELDS:
        assert snake not in out, snake
    assert not STEP_IDS.search(out), STEP_IDS.search(out)


def test_plan_text_names_fields_as_the_spec_does_and_adds_up(emulator: Any, tmp_path: Path) -> None:
    emulator.seed({**_estate(), "resource_groups": [{"subscription": SUB, "name": "rg-mon2",
                                                     "location": LOCATION}]})
    spec, state = _spec(tmp_path / "spec"), tmp_path / "state"
    env = dict(emulator.env)

    text = _cli(env, state, "plan", "-f", str(spec), "--detailed-exitcode")
    assert text.returncode == 3, text.stderr  # something is blocked
    out = text.stdout
    _reads_well(out)
    assert 'billingType: Cluster -> Workspaces, tags: {costCenter: "4711"} -> {costCenter: "4712"}' in out
    assert "[C9] doubleEncryption is true and fixed at creation" in out
    assert "availabilityZones is fixed at creation (live true, spec false)" in out
    assert "doubleEncryption: true -> spec false" not in out  # drift reads "live X -> spec Y"
    assert "cluster.clu01 doubleEncryption: live true -> spec false" in out
    assert f"key: {VAULT_URI.removeprefix('https://').rstrip('/')}/keys/cmk/(versionless)" in out
    # a step waits on others by their number in the list, not by an internal id
    assert re.search(r"after: #\d+ create cluster\.clu02", out), out
    # no drift for what does not exist yet: wks2/wks3 are linked by steps to a cluster being created
    drift = _section(out, "Drift (live differs from the spec):")
    assert drift and not [ln for ln in drift if "wks2" in ln or "wks3" in ln], drift

    # the summary adds up to the numbered list and the deferred and blocked sections
    (summary,) = SUMMARY.findall(out)
    numbers = [int(n or 0) for n in summary]
    listed = re.findall(r"^  [+~-] +(\d+)\. (\S+)", out, re.M)
    assert sum(numbers[:7]) == len(listed) == int(listed[-1][0])
    actions = [a for _, a in listed]
    assert numbers[0] == actions.count("create") and numbers[3] == actions.count("link")
    assert numbers[1] == actions.count("update") + actions.count("set_key")
    assert numbers[7] == len(_section(out, "Deferred (possible later; not a failure):")) == 1
    assert numbers[8] == len(_section(out, "Blocked (cannot run as declared; you must act):")) == 1

    # the JSON artefact keeps the ids and field names tools rely on
    as_json = _cli(env, state, "plan", "-f", str(spec), "--format", "json")
    plan = json.loads(as_json.stdout)
    assert all(c["id"] for c in plan["changes"]) and plan["fingerprint"].startswith("sha256:")
    assert {d["field"] for d in plan["drift"]} >= {"double_encryption", "billing_type"}

    markdown = _cli(env, state, "plan", "-f", str(spec), "--format", "markdown").stdout
    _reads_well(markdown)
    assert markdown.startswith("### cmkctl plan: " + out[out.index("Plan: ") + 6:].split("\n", 1)[0])
    assert "| doubleEncryption | true | false |" in markdown
    assert "billingType: Cluster -> Workspaces" in markdown


def test_a_plan_with_nothing_to_do_has_no_empty_sections(emulator: Any, tmp_path: Path) -> None:
    emulator.seed(estate())
    spec = tmp_path / "spec"
    spec.mkdir()
    workspaces = [{"id": workspace_id("wks1"), "byos": {"query": STORAGE_ID, "allowSavedSearchLoss": True}}]
    sets = {"apiVersion": "cmk.azure.io/v1", "kind": "WorkspaceSet", "metadata": {"name": "a"},
            "spec": {"cluster": CLUSTER, "workspaces": workspaces}}
    docs = [cluster_doc(), sets]
    (spec / "spec.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    done = _cli(dict(emulator.env), tmp_path / "state", "plan", "-f", str(spec), "--detailed-exitcode")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == "No changes. The live estate matches the spec."
    for title in ("Plan:", "Deferred", "Blocked", "Warnings", "Drift", "cmkctl will perform"):
        assert title not in done.stdout, done.stdout

"""Guards: without the explicit opt-in no code path deletes a cluster, unlinks a workspace the
spec stopped naming (prune), changes double encryption (C9), links a BYOS Query account that wipes saved
searches (B2) or sets identity None (C12). Checked against the emulator's request log and state, with
a spec that asks for each of them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from reliability_support import (
    CLUSTER,
    RG,
    STORAGE,
    SUB,
    apply,
    cluster_id,
    estate_for,
    guard_violations,
    record,
    workspace_id,
    write_spec,
    writes,
)

QUERY_STORAGE = STORAGE.replace("strelalerts", "strelquery")


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {**emulator.env, "CMKCTL_RETRY_BACKOFF": "0.01"}.items():
        monkeypatch.setenv(name, value)
    yield


def _tempting_estate() -> dict[str, Any]:
    seed = copy.deepcopy(estate_for("link").seed)
    other = dict(seed["clusters"][0], name="relcluster02")  # not in the spec: prune.clusters is off
    seed["clusters"].append(other)
    seed["storage_accounts"].append({"id": QUERY_STORAGE, "location": "westeurope"})
    seed["workspaces"] = [
        {
            "subscription": SUB,
            "resource_group": RG,
            "name": "law1",
            "location": "westeurope",
            "cluster": cluster_id(),
            "saved_searches": 7,
        },
        {
            "subscription": SUB,
            "resource_group": RG,
            "name": "law2",
            "location": "westeurope",
            "cluster": cluster_id(),
        },  # linked, no longer named: prune.workspaceLinks is off
    ]
    return seed


def test_nothing_irreversible_without_opt_in(emulator: Any, env: None, tmp_path: Path) -> None:
    emulator.seed(_tempting_estate())
    spec = write_spec(tmp_path / "spec", estate_for("link"))
    docs = list(yaml.safe_load_all(spec.read_text(encoding="utf-8")))
    docs[0]["spec"]["doubleEncryption"] = False  # rule C9: fixed at creation
    docs[1]["spec"]["workspaces"] = [{"id": workspace_id("law1"), "byos": {"query": QUERY_STORAGE}}]  # B2
    spec.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")

    run = apply(spec, tmp_path / "state")
    assert "Traceback" not in run.text
    reqs = emulator.requests()
    assert guard_violations(emulator, reqs) == []
    assert writes(reqs, "DELETE", r".*") == []  # no cluster delete, no unlink
    assert writes(reqs, "PATCH", rf"/clusters/{CLUSTER}$") == []  # double encryption untouched
    with emulator.state.lock:
        names = {c.name for c in emulator.state.clusters.values()}
        ws = {w.name: w for w in emulator.state.workspaces.values()}
        assert names == {CLUSTER, "relcluster02"}
        assert ws["law2"].cluster and ws["law2"].cluster.lower() == cluster_id().lower()
        assert ws["law1"].saved_searches == 7  # rule B2
    assert "B2" in run.text and "C9" in run.text, run.text  # the plan says why it will not
    record("guards", check="cluster delete / prune / C9 / B2 without opt-in", violations=0)


def test_identity_none_needs_opt_in(emulator: Any, env: None, tmp_path: Path) -> None:
    emulator.seed(estate_for("link").seed)
    spec = write_spec(tmp_path / "spec", estate_for("link"))
    docs = list(yaml.safe_load_all(spec.read_text(encoding="utf-8")))
    docs[0]["spec"]["identity"] = {"type": "None"}  # rule C12: revokes access irreversibly
    spec.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")

    run = apply(spec, tmp_path / "state")
    assert run.rc == 1 and "allowAccessRevocation" in run.err, run.text
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []
    assert guard_violations(emulator, emulator.requests()) == []
    record("guards", check="identity None without opt-in", violations=0)

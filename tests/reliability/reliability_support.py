"""Shared pieces of the reliability suite: a small CMK estate per step kind, an in-process
apply that captures what a user sees, the invariants every scenario checks against the emulator, and
the figures `python -m bench.reliability` tabulates.

Figures: when CMKCTL_RELIABILITY_OUT names a directory, every scenario appends one JSON line to
`<dir>/<suite>.jsonl`; the bench reads them. Without it nothing is written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.azure.clients import AzureClients
from controller.cli import apply_cmd
from controller.state.sqlite_store import SqliteHistoryStore

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg-rel"
LOCATION = "westeurope"
UAI = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity"
    "/userAssignedIdentities/id-rel"
)
UAI_PRINCIPAL = "21111111-2222-4333-8444-555555555555"
VAULT_NAME = "kvreltest"
VAULT = f"https://{VAULT_NAME}.vault.azure.net/"
KEY_VERSION = "0" * 31 + "1"
CLUSTER = "relcluster01"
STORAGE = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/strelalerts"

CLUSTER_PATH = rf"/clusters/{CLUSTER}$"
LINK_PATH = r"/workspaces/[^/]+/linkedServices/cluster$"
BYOS_PATH = r"/workspaces/[^/]+/linkedStorageAccounts/[^/]+$"
KEY_PATH = r"^/keys/"


def workspace_id(name: str) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/workspaces/{name}"
    )


def cluster_id(name: str = CLUSTER) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/clusters/{name}"


# -- estates -------------------------------------------------------------------------------------


def _vault() -> dict[str, Any]:
    return {
        "name": VAULT_NAME,
        "subscription": SUB,
        "resourceGroup": RG,
        "location": LOCATION,
        "softDelete": True,
        "purgeProtection": True,  # rule C7: recoverable vault
        "accessPolicies": [{"objectId": UAI_PRINCIPAL, "keys": ["get", "wrapKey", "unwrapKey"]}],
        "keys": [{"name": "cmk", "versions": [{"version": KEY_VERSION}]}],
    }


def _existing_cluster(*, key: bool) -> dict[str, Any]:
    return {
        "subscription": SUB,
        "resource_group": RG,
        "name": CLUSTER,
        "location": LOCATION,
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}},
        "capacity": 1000,
        "double_encryption": True,
        "created": "2026-01-01T00:00:00Z",
        "last_sku_update": "2026-01-01T00:00:00Z",  # rule C4: long ago, any capacity change allowed
        # versionless, as the spec declares it: the cluster follows the key's current version (K1)
        **({"key": {"keyVaultUri": VAULT, "keyName": "cmk", "keyVersion": ""}} if key else {}),
    }


def _workspace(name: str, *, linked: bool = False, storage: dict[str, Any] | None = None) -> dict[str, Any]:
    w: dict[str, Any] = {"subscription": SUB, "resource_group": RG, "name": name, "location": LOCATION}
    if linked:
        w["cluster"] = cluster_id()
        w["linked_at"] = "2026-01-02T00:00:00Z"
    if storage:
        w["storage"] = storage
    return w


@dataclass
class Estate:
    """What Azure holds before the run, and what the spec asks for."""

    seed: dict[str, Any]
    capacity: int = 1000
    with_key: bool = False
    workspaces: tuple[str, ...] = ("law1",)
    alerts_storage: bool = False
    prune_links: bool = False
    links_needed: int = 0  # link/unlink operations the spec requires (rule W3 budget)
    extra_docs: list[dict[str, Any]] = field(default_factory=list)


def estate_for(kind: str) -> Estate:
    """One estate per step kind: the plan for it contains that step (and only what it needs)."""
    base: dict[str, Any] = {
        "resource_groups": [{"subscription": SUB, "name": RG, "location": LOCATION}],
        "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
        "vaults": [_vault()],
        "storage_accounts": [{"id": STORAGE, "location": LOCATION}],
    }
    if kind == "create":  # empty estate: create (key at creation, rule C5 with a granted UAI), then link
        return Estate({**base, "workspaces": [_workspace("law1")]}, with_key=True, links_needed=1)
    if kind == "capacity":
        return Estate(
            {
                **base,
                "clusters": [_existing_cluster(key=True)],
                "workspaces": [_workspace("law1", linked=True)],
            },
            capacity=2000,
            with_key=True,
        )
    if kind in ("set_key", "key_read"):
        return Estate(
            {
                **base,
                "clusters": [_existing_cluster(key=False)],
                "workspaces": [_workspace("law1", linked=True)],
            },
            with_key=True,
        )
    if kind == "link":
        return Estate(
            {**base, "clusters": [_existing_cluster(key=True)], "workspaces": [_workspace("law1")]},
            with_key=True,
            links_needed=1,
        )
    if kind == "unlink":  # law2 is linked but no longer named; prune.workspaceLinks opts in
        # the cluster carries this scope's ownership tag (the Settings document "settings"): its links
        # are ours to prune (rule W6)
        return Estate(
            {
                **base,
                "clusters": [{**_existing_cluster(key=True), "tags": {"cmkctl-scope": "settings"}}],
                "workspaces": [_workspace("law1", linked=True), _workspace("law2", linked=True)],
            },
            with_key=True,
            prune_links=True,
            links_needed=1,
        )
    if kind == "byos":  # Alerts storage (rule B1); Query would need the B2 opt-in
        return Estate(
            {
                **base,
                "clusters": [_existing_cluster(key=True)],
                "workspaces": [_workspace("law1", linked=True)],
            },
            with_key=True,
            alerts_storage=True,
        )
    raise ValueError(kind)


def write_spec(directory: Path, estate: Estate) -> Path:
    ws_items: list[Any] = []
    for name in estate.workspaces:
        if estate.alerts_storage:
            ws_items.append({"id": workspace_id(name), "byos": {"alerts": STORAGE}})
        else:
            ws_items.append(workspace_id(name))
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "cmk.azure.io/v1",
            "kind": "Cluster",
            "metadata": {"name": CLUSTER},
            "spec": {
                "subscription": SUB,
                "resourceGroup": RG,
                "location": LOCATION,
                "identity": {"type": "UserAssigned", "userAssignedIdentity": UAI, "keyAccessGranted": True},
                "capacity": estate.capacity,
                **({"key": {"vaultUri": VAULT, "name": "cmk"}} if estate.with_key else {}),
            },
        },
        {
            "apiVersion": "cmk.azure.io/v1",
            "kind": "WorkspaceSet",
            "metadata": {"name": "apps"},
            "spec": {"cluster": CLUSTER, "workspaces": ws_items},
        },
    ]
    if estate.prune_links:
        docs.append(
            {
                "apiVersion": "cmk.azure.io/v1",
                "kind": "Settings",
                "metadata": {"name": "settings"},
                "spec": {"prune": {"workspaceLinks": True}},
            }
        )
    docs.extend(estate.extra_docs)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


# -- running apply in-process --------------------------------------------------------------------


@dataclass
class Run:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def apply(spec: Path, state: Path, *, lock_timeout: float = 0.0, clients: AzureClients | None = None) -> Run:
    """`cmkctl apply -f SPEC --auto-approve` in this process, with what it printed."""
    out, err = io.StringIO(), io.StringIO()
    own = clients is None
    azure = clients or AzureClients()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = apply_cmd.run(
                None,
                [str(spec)],
                auto_approve=True,
                state=str(state),
                clients=azure,
                lock_timeout=lock_timeout,
            )
    finally:
        if own:
            azure.close()
    return Run(rc, out.getvalue(), err.getvalue())


def converged(run: Run) -> bool:
    return run.rc == 0 and "No changes. Azure matches the spec." in run.out


# -- invariants ----------------------------------------------------------------------------------


def writes(requests: list[dict[str, Any]], method: str, pattern: str) -> list[dict[str, Any]]:
    rx = re.compile(pattern, re.IGNORECASE)
    return [r for r in requests if r["method"] == method and rx.search(r["path"])]


def guard_violations(emulator: Any, requests: list[dict[str, Any]]) -> list[str]:
    """What no code path may do without an opt-in, read from the emulator."""
    bad: list[str] = []
    bad += [f"cluster DELETE {r['path']}" for r in writes(requests, "DELETE", r"/clusters/[^/]+$")]
    bad += [f"BYOS Query link {r['path']}" for r in writes(requests, "PUT", r"/linkedStorageAccounts/query$")]
    with emulator.state.lock:
        for c in emulator.state.clusters.values():
            if str(c.identity_type).lower() == "none":  # rule C12
                bad.append(f"identity None on {c.name}")
            if not c.double_encryption:  # every estate here has it on; rule C9 fixes it at creation
                bad.append(f"double encryption changed on {c.name}")
    bad += [f"harm event {e}" for e in emulator.events()]
    return bad


def link_ops_in_azure(emulator: Any, name: str) -> int:
    """Link/unlink operations that reached Azure for a workspace, minus the seeded past (rule W3)."""
    with emulator.state.lock:
        for ws in emulator.state.workspaces.values():
            if ws.name == name:
                return len(ws.link_history)  # these estates seed no past link_ops
    return 0


def journal_link_ops(state: Path, name: str) -> int:
    store = SqliteHistoryStore(state)
    try:
        return sum(1 for o in store.load().link_operations if o.workspace_key == workspace_id(name).lower())
    finally:
        store.close()


def journal_in_flight(state: Path) -> tuple[Any, ...]:
    store = SqliteHistoryStore(state)
    try:
        return tuple(store.load().in_flight)
    finally:
        store.close()


# -- figures for the bench -----------------------------------------------------------------------


def record(suite: str, **fields: Any) -> None:
    out = os.environ.get("CMKCTL_RELIABILITY_OUT")
    if not out:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    with (Path(out) / f"{suite}.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(fields, sort_keys=True) + "\n")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip().isdigit() else default


PYTHON = sys.executable

"""Adopt an existing estate: what Azure has, written as spec files that plan to no changes.

`cmkctl export` reads the clusters, keys, links and BYOS accounts that exist (controller.azure.inventory)
and writes one file per cluster: the Cluster document and a WorkspaceSet of the workspaces linked to it,
each workspace with the BYOS accounts it has. Workspaces that have BYOS accounts but no link to an
exported cluster go to one more file, in a WorkspaceSet without a cluster. Every file starts with a
`# yaml-language-server: $schema=...` comment, so editors validate it as it is edited; the schema is
written next to the files.

What is read is what is written: capacity, billing type, double encryption, availability zones, tags,
identity and key (a pinned version stays pinned, a versionless key stays versionless). Nothing is
"improved" on the way, since the point is a first plan with nothing to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controller.errors import CmkError
from controller.loading.schema import spec_json_schema_text
from controller.model import ids
from controller.model.observed import ObservedCluster, ObservedWorkspace

API_VERSION = "cmk.azure.io/v1"
SCHEMA_FILE = "cmk-spec.schema.json"
BYOS_ONLY_FILE = "byos-only.yaml"
# Data source types the spec manages (rule B1); others (CustomLogs, Ingestion...) are left alone.
_BYOS_TYPES = {"query": "query", "alerts": "alerts"}


class ExportError(CmkError):
    """The export cannot be written as asked (a file would be overwritten...)."""


@dataclass(frozen=True)
class SpecFile:
    """One file to write: its name in the output directory and its YAML text."""

    name: str
    text: str


def _identity(cluster: ObservedCluster) -> dict[str, Any]:
    kind = cluster.identity_type.lower().replace(" ", "")
    if cluster.user_assigned_identities and "userassigned" in kind:
        return {"type": "UserAssigned", "userAssignedIdentity": cluster.user_assigned_identities[0]}
    if "systemassigned" in kind:
        return {"type": "SystemAssigned"}
    return {"type": "None"}


def _billing(value: str) -> str:
    return "Workspaces" if value.lower() == "workspaces" else "Cluster"


def cluster_document(cluster: ObservedCluster, metadata_name: str) -> dict[str, Any]:
    """The Cluster document that describes `cluster` as it is."""
    identity = _identity(cluster)
    spec: dict[str, Any] = {
        "subscription": cluster.subscription.lower(),
        "resourceGroup": cluster.resource_group,
        "location": cluster.location,
    }
    if metadata_name != cluster.name:
        spec["name"] = cluster.name
    spec["identity"] = identity
    spec["capacity"] = cluster.capacity
    spec["billingType"] = _billing(cluster.billing_type)
    spec["doubleEncryption"] = cluster.double_encryption
    spec["availabilityZones"] = cluster.availability_zones
    if cluster.tags:
        spec["tags"] = dict(sorted(cluster.tags.items()))
    if cluster.key is not None:
        key: dict[str, Any] = {"vaultUri": cluster.key.vault_uri, "name": cluster.key.name}
        if cluster.key.version:
            key["version"] = cluster.key.version
        spec["key"] = key
    if identity["type"] == "None":
        spec["allowAccessRevocation"] = True  # rule C12: it is already so; the spec says it knowingly
    return {"apiVersion": API_VERSION, "kind": "Cluster", "metadata": {"name": metadata_name}, "spec": spec}


def _workspace_item(ws: ObservedWorkspace) -> Any:
    byos = {_BYOS_TYPES[k]: v for k, v in sorted(ws.byos.items()) if k in _BYOS_TYPES}
    if not byos:
        return ws.id
    return {"id": ws.id, "byos": byos}


def workspace_set(name: str, cluster: str | None, workspaces: Iterable[ObservedWorkspace]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if cluster is not None:
        spec["cluster"] = cluster
    spec["workspaces"] = [_workspace_item(w) for w in sorted(workspaces, key=lambda w: ids.id_key(w.id))]
    return {"apiVersion": API_VERSION, "kind": "WorkspaceSet", "metadata": {"name": name}, "spec": spec}


def _file_stem(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "-", name).strip("-.") or "cluster"


def _metadata_names(clusters: Iterable[ObservedCluster]) -> dict[str, str]:
    """id key -> a unique metadata.name: the Azure name, qualified when two clusters share it."""
    ordered = sorted(clusters, key=lambda c: ids.id_key(c.id))
    counts: dict[str, int] = {}
    for c in ordered:
        counts[c.name.lower()] = counts.get(c.name.lower(), 0) + 1
    names: dict[str, str] = {}
    for c in ordered:
        unique = counts[c.name.lower()] == 1
        names[ids.id_key(c.id)] = c.name if unique else f"{c.name}-{c.subscription[:8]}-{c.resource_group}"
    return names


def _dump(docs: list[dict[str, Any]], header: str) -> str:
    body = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=200)
    return header + body


def spec_files(
    clusters: Iterable[ObservedCluster],
    workspaces: Iterable[ObservedWorkspace],
    *,
    schema_ref: str = SCHEMA_FILE,
) -> list[SpecFile]:
    """The files of an export: one per cluster (with its WorkspaceSet), and one for BYOS-only workspaces."""
    clusters = list(clusters)
    names = _metadata_names(clusters)
    linked: dict[str, list[ObservedWorkspace]] = {k: [] for k in names}
    byos_only: list[ObservedWorkspace] = []
    for ws in workspaces:
        target = ids.id_key(ws.cluster_id) if ws.cluster_id else None
        if target is not None and target in linked:
            linked[target].append(ws)
        elif any(k in _BYOS_TYPES for k in ws.byos):
            byos_only.append(ws)
    header = f"# yaml-language-server: $schema={schema_ref}\n"
    files: list[SpecFile] = []
    for cluster in sorted(clusters, key=lambda c: ids.id_key(c.id)):
        key = ids.id_key(cluster.id)
        name = names[key]
        docs = [cluster_document(cluster, name)]
        if linked[key]:
            docs.append(workspace_set(f"{name}-workspaces", name, linked[key]))
        files.append(SpecFile(f"{_file_stem(name)}.yaml", _dump(docs, header)))
    if byos_only:
        files.append(SpecFile(BYOS_ONLY_FILE, _dump([workspace_set("byos-only", None, byos_only)], header)))
    return files


def write(files: list[SpecFile], out: Path, *, force: bool = False) -> list[Path]:
    """Write the files and the schema into `out`; refuses to overwrite a file without `force`."""
    targets = [out / f.name for f in files] + [out / SCHEMA_FILE]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise ExportError(f"would overwrite {shown}; choose another --out or pass --force")
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        (out / f.name).write_text(f.text, encoding="utf-8")
    (out / SCHEMA_FILE).write_text(spec_json_schema_text(), encoding="utf-8")
    return targets

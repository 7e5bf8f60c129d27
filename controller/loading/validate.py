"""Rules that need the whole spec tree but no Azure: duplicates, references, names, limits.

Each document is valid on its own by now (pydantic); these checks look across documents and files,
so every message names both places when two declarations clash. The service limits come from the
Settings document's profile (controller.model.limits), never from constants here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from controller.errors import SpecProblem
from controller.loading.yamlsafe import Path_, dotted
from controller.model import ids, limits
from controller.model.spec import Cluster, Settings, SettingsSpec, WorkspaceSet


@dataclass(frozen=True)
class LoadedDocument:
    """A validated document and where it came from (file, first line, line of every field)."""

    file: str
    line: int
    model: Cluster | WorkspaceSet | Settings
    lines: dict[Path_, int] = field(default_factory=dict)
    # A document with schema errors, salvaged for the rule checks (controller.loading.salvage): the
    # paths set aside (the checks skip what depends on them), and where kept list items stood.
    # `partial`: salvaged, so checked but never part of the desired state.
    unknown: frozenset[Path_] = frozenset()
    positions: dict[Path_, tuple[int, ...]] = field(default_factory=dict)
    partial: bool = False

    @property
    def ref(self) -> str:
        return f"{self.model.kind}/{self.model.metadata.name}"

    def known(self, *paths: Path_) -> bool:
        """Was every one of `paths` read as written (nothing at or above it set aside)?"""
        return not any(p[:cut] in self.unknown for p in paths for cut in range(len(p) + 1))

    def written(self, path: Path_) -> Path_:
        """A path in the model -> the same place in the file (list items set aside shift indexes)."""
        if not self.positions:
            return path
        out: list[str | int] = []
        for part in path:
            where = self.positions.get(tuple(out))
            if isinstance(part, int) and where is not None and 0 <= part < len(where):
                part = where[part]
            out.append(part)
        return tuple(out)

    def line_of(self, path: Path_) -> int:
        path = self.written(path)
        for cut in range(len(path), -1, -1):
            found = self.lines.get(path[:cut])
            if found is not None:
                return found
        return self.line

    def where(self, path: Path_ = ()) -> str:
        return f"{self.file}:{self.line_of(path)}"

    def problem(self, path: Path_, message: str) -> SpecProblem:
        return SpecProblem(self.file, self.line_of(path), dotted(self.written(path)), message)


def check_documents(documents: list[LoadedDocument], *, complete: bool = True) -> list[SpecProblem]:
    """All rule and cross-document problems, also of documents salvaged from schema errors (the
    checks skip what such a document could not tell). `complete=False` (some document could not be
    read at all, so its name is unknown) skips the unknown-cluster check, which would otherwise blame
    a reference to a document that merely failed."""
    problems: list[SpecProblem] = []
    settings_docs = [d for d in documents if isinstance(d.model, Settings)]
    clusters = [d for d in documents if isinstance(d.model, Cluster)]
    sets = [d for d in documents if isinstance(d.model, WorkspaceSet)]

    for extra in settings_docs[1:]:
        problems.append(
            extra.problem(
                ("kind",),
                f"a second Settings document (the first is {settings_docs[0].ref} at "
                f"{settings_docs[0].where()}); a spec tree has at most one",
            )
        )
    settings = settings_docs[0].model.spec if settings_docs else SettingsSpec()
    if settings_docs and not settings_docs[0].known(("spec", "limitsProfile")):
        settings = SettingsSpec()
    assert isinstance(settings, SettingsSpec)  # noqa: S101 - narrowing for mypy
    profile = limits.for_profile(settings.limits_profile)

    problems += _duplicate_names(documents)
    problems += _check_clusters(clusters, profile)
    problems += _check_workspace_sets(sets, clusters, profile, complete=complete)
    return problems


def _duplicate_names(documents: list[LoadedDocument]) -> list[SpecProblem]:
    """metadata.name is the document's address (plans, WorkspaceSet.cluster): unique per kind."""
    problems: list[SpecProblem] = []
    first: dict[str, LoadedDocument] = {}
    for doc in documents:
        if isinstance(doc.model, Settings):
            continue  # already reported as a second Settings document
        seen = first.setdefault(doc.ref, doc)
        if seen is not doc:
            problems.append(
                doc.problem(
                    ("metadata", "name"),
                    f"{doc.ref} is declared twice: also at {seen.where(('metadata', 'name'))}",
                )
            )
    return problems


def _check_clusters(clusters: list[LoadedDocument], profile: limits.Limits) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    by_arm_key: dict[str, LoadedDocument] = {}
    for doc in clusters:
        cluster = doc.model
        assert isinstance(cluster, Cluster)  # noqa: S101 - narrowing for mypy
        name_path: Path_ = ("spec", "name") if cluster.spec.name else ("metadata", "name")
        name_known = doc.known(("spec", "name"))
        # rule C1: the Azure name (spec.name, else metadata.name) matches the REST spec's pattern
        if name_known and not ids.CLUSTER_NAME.match(cluster.azure_name):
            problems.append(
                doc.problem(
                    name_path,
                    f"cluster name '{cluster.azure_name}' is not allowed in Azure: {ids.CLUSTER_NAME_RULE} "
                    "(rule C1)" + ("; set spec.name to the Azure name" if not cluster.spec.name else ""),
                )
            )
        # rule C3: capacity per the limits profile in Settings
        if doc.known(("spec", "capacity")) and not profile.capacity_ok(cluster.spec.capacity):
            problems.append(
                doc.problem(
                    ("spec", "capacity"),
                    f"capacity {cluster.spec.capacity} GB/day is not allowed by the '{profile.profile}' "
                    f"limits profile: {profile.capacity_rule_text()} (rule C3)",
                )
            )
        # the same Azure cluster declared twice (ARM names are case-insensitive)
        if not (name_known and doc.known(("spec", "subscription"), ("spec", "resourceGroup"))):
            continue
        arm_key = ids.id_key(cluster.arm_id)
        seen = by_arm_key.setdefault(arm_key, doc)
        if seen is not doc:
            problems.append(
                doc.problem(
                    name_path,
                    f"the same Azure cluster as {seen.ref} at {seen.where()} "
                    "(subscription, resource group and name, compared case-insensitively)",
                )
            )
    return problems


def _item_path(items: Sequence[object], i: int) -> Path_:
    """Where workspace item i's id stands: the item itself (a bare id) or its `id` field."""
    return ("spec", "workspaces", i) if isinstance(items[i], str) else ("spec", "workspaces", i, "id")


def _check_workspace_sets(
    sets: list[LoadedDocument], clusters: list[LoadedDocument], profile: limits.Limits, *, complete: bool
) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    cluster_names = {d.model.metadata.name for d in clusters}
    first_seen: dict[str, tuple[LoadedDocument, Sequence[object], int]] = {}
    per_cluster: dict[str, list[LoadedDocument]] = defaultdict(list)
    count: dict[str, int] = defaultdict(int)
    for doc in sets:
        ws_set = doc.model
        assert isinstance(ws_set, WorkspaceSet)  # noqa: S101 - narrowing for mypy
        target = ws_set.spec.cluster if doc.known(("spec", "cluster")) else None
        if target is not None and complete and target not in cluster_names:
            known = ", ".join(sorted(cluster_names)) or "none declared"
            problems.append(
                doc.problem(("spec", "cluster"), f"no Cluster document named '{target}' (known: {known})")
            )
        items = ws_set.spec.workspaces
        for i, entry in enumerate(ws_set.spec.entry_tuple):
            key = ids.id_key(entry.id)
            # rule W2: a workspace links to one cluster, and one declaration owns its BYOS
            if key in first_seen:
                other, other_items, other_i = first_seen[key]
                problems.append(
                    doc.problem(
                        _item_path(items, i),
                        f"workspace '{ids.ResourceId.parse(entry.id).name}' is listed twice: also in "
                        f"{other.ref} at {other.where(_item_path(other_items, other_i))} (a workspace "
                        "links to at most one cluster, rule W2)",
                    )
                )
                continue
            # where the item stands is worked out only for a duplicate (40,000 items in a large fleet)
            first_seen[key] = (doc, items, i)
            if target is not None:
                count[target] += 1
        if target is not None:
            per_cluster[target].append(doc)
    # rule W1: at most N workspaces per cluster, counted over every set that names it
    for target, docs in per_cluster.items():
        if count[target] > profile.workspaces_per_cluster:
            names = ", ".join(d.ref for d in docs)
            problems.append(
                docs[-1].problem(
                    ("spec", "workspaces"),
                    f"cluster '{target}' would have {count[target]} linked workspaces (from {names}); "
                    f"at most {profile.workspaces_per_cluster} per cluster (rule W1)",
                )
            )
    return problems

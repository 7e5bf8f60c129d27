"""What can still be checked in a document that failed validation.

A document with a schema error never becomes part of the desired state, but the rest of it is still
worth checking in the same run: a Cluster whose capacity is missing may also carry a name Azure
refuses (C1), and a WorkspaceSet with one malformed id may list another workspace twice (W2).

`salvage` sets aside every field that has an error (a bad optional field or list item is dropped, a
bad required field gets a placeholder) and validates what is left, a few rounds at most. The result
knows which paths were set aside (`unknown`): the rule checks skip anything that depends on them, so a
placeholder is never judged. A document whose name cannot be read is not salvaged: nothing could
refer to it. Placeholders are set only where a check needs the document to exist at all; their
values are never shown.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from controller.loading.yamlsafe import Path_

# Rounds of "set aside what failed, validate again": each round removes or replaces something, and a
# document needs about one round per level of nesting an error sits at.
MAX_ROUNDS = 8

_ANY_GUID = "00000000-0000-0000-0000-000000000000"
_CLUSTER_SPEC = {
    "subscription": _ANY_GUID,
    "resourceGroup": "unknown",
    "location": "unknown",
    "identity": {"type": "SystemAssigned"},
    "capacity": 0,
}
# (kind, field path without list indexes) -> a value that passes validation. Required fields only.
_PLACEHOLDERS: dict[tuple[str, str], Any] = {
    ("Cluster", "spec"): _CLUSTER_SPEC,
    **{("Cluster", f"spec.{name}"): value for name, value in _CLUSTER_SPEC.items()},
    ("Cluster", "spec.identity.type"): "SystemAssigned",
    ("WorkspaceSet", "spec"): {},
}


class _Dropped:
    """A list item set aside (removed before validation; indexes are mapped back)."""


_DROPPED = _Dropped()


@dataclass(frozen=True)
class Salvaged:
    model: BaseModel
    unknown: frozenset[Path_]
    # list path -> original index of each item kept (only lists that lost an item)
    positions: dict[Path_, tuple[int, ...]]


FieldPath = Callable[[Any, Sequence[str | int]], Path_]


def salvage(
    model: type[BaseModel],
    kind: str,
    data: dict[str, Any],
    context: dict[str, Any],
    field_path: FieldPath,
) -> Salvaged | None:
    """The document validated without the fields that have errors, or None if that is not possible.

    The first round validates it as written with `salvage` in the context: a rule that relates fields
    to each other (C12's opt-in) then lets the fields themselves through."""
    work = copy.deepcopy(data)
    unknown: set[Path_] = set()
    replaced: set[Path_] = set()
    positions: dict[Path_, tuple[int, ...]] = {}
    clean = data
    for _ in range(MAX_ROUNDS):
        try:
            doc = model.model_validate(
                clean, by_alias=True, by_name=False, context={**context, "salvage": True}
            )
        except ValidationError as err:
            errors = err.errors(include_url=False)
        else:
            return Salvaged(doc, frozenset(unknown), positions)
        for error in errors:
            path = _original(field_path(clean, error["loc"]), positions)
            if not _set_aside(work, kind, path, error.get("type") == "missing", unknown, replaced):
                return None
        positions = {}
        clean = _without_dropped(work, (), positions)
    return None


def _set_aside(
    work: Any, kind: str, path: Path_, missing: bool, unknown: set[Path_], replaced: set[Path_]
) -> bool:
    """Drop or replace what is at `path`; False when the document cannot do without it."""
    while path and path[:2] != ("metadata", "name") and path != ("metadata",):
        if path in replaced:  # even the placeholder failed (with its neighbours): give up this level
            path, missing = path[:-1], False
            continue
        unknown.add(path)
        if not missing:
            _put(work, path, _DROPPED)
            return True
        pattern = ".".join(str(p) for p in path if not isinstance(p, int))
        placeholder = _PLACEHOLDERS.get((kind, pattern), _DROPPED)
        if placeholder is not _DROPPED:
            _put(work, path, copy.deepcopy(placeholder))
            replaced.add(path)
            return True
        # a required field with no placeholder: set aside what holds it
        path, missing = path[:-1], False
    return False


def _put(work: Any, path: Path_, value: Any) -> None:
    parent = work
    for part in path[:-1]:
        found, parent = child(parent, part)
        if not found:
            return
    last = path[-1]
    if isinstance(parent, dict) and isinstance(last, str):
        if value is _DROPPED:
            parent.pop(last, None)
        else:
            parent[last] = value
    elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        parent[last] = value


def child(here: Any, part: str | int) -> tuple[bool, Any]:
    """(found, value) of one step of a field path into parsed YAML data (a key or a list index)."""
    if isinstance(here, dict) and isinstance(part, str) and part in here:
        return True, here[part]
    if isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
        return True, here[part]
    return False, None


def _without_dropped(value: Any, path: Path_, positions: dict[Path_, tuple[int, ...]]) -> Any:
    if isinstance(value, dict):
        return {k: _without_dropped(v, (*path, k), positions) for k, v in value.items()}
    if isinstance(value, list):
        kept = [i for i, item in enumerate(value) if item is not _DROPPED]
        if len(kept) != len(value):
            positions[path] = tuple(kept)
        return [_without_dropped(value[i], (*path, i), positions) for i in kept]
    return value


def _original(path: Path_, positions: dict[Path_, tuple[int, ...]]) -> Path_:
    """A path in the validated (compacted) data -> the same place in the document as written."""
    out: list[str | int] = []
    for part in path:
        where = positions.get(tuple(out))
        if isinstance(part, int) and where is not None and 0 <= part < len(where):
            part = where[part]
        out.append(part)
    return tuple(out)

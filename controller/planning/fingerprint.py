"""A stable sha256 of the observed state: the executor refuses a saved plan whose fingerprint changed.

`read_at` and read warnings are excluded (re-reading the same estate later must give the same
fingerprint); everything else is canonicalised (ids lower-cased as keys, sorted, ISO dates) so that
casing or dict order never makes a plan look stale. `resource_digests` gives one digest per resource
so a stale-plan message can say which resource changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
import threading
import weakref
from datetime import datetime
from typing import Any

from controller.model.observed import ObservedState

_SCALARS = (str, int, float, bool, type(None))
_EXACT_SCALARS = frozenset(_SCALARS)
# one encoder for every digest (json.dumps with options builds a new one per call)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _canon(value: Any) -> Any:
    # Scalars first and field names cached per class: 80,000 resources in a 40,000-workspace fleet.
    kind = type(value)
    if kind in _EXACT_SCALARS:
        return value
    names = _FIELDS.get(kind)
    if names is not None:  # an observed dataclass: most of its fields are plain scalars
        out: dict[str, Any] = {}
        for name in names:
            field_value = getattr(value, name)
            out[name] = field_value if type(field_value) in _EXACT_SCALARS else _canon(field_value)
        return out
    if isinstance(value, _SCALARS):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _field_names(kind)
        return _canon(value)
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, tuple | list):
        return [_canon(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(_canon(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def canonical(value: Any) -> Any:
    """An observed value as plain JSON (dataclasses as dicts, dates ISO, sets sorted): what the journal
    keeps as an apply's live baseline, and what the "changed outside cmkctl" report compares."""
    return _canon(value)


# Per observed dataclass: one C getter for all its fields (the fast path of `_text`).
_GETTERS: dict[type, Any] = {}


def _plain(values: tuple[Any, ...]) -> int:
    """0: a value is neither a scalar nor a dict of str -> scalar; 1: plain; 2: plain, with a dict of
    several items (whose repr depends on its order: to be sorted)."""
    out = 1
    for v in values:
        kind = type(v)
        if kind in _EXACT_SCALARS:
            continue
        if kind is not dict:
            return 0
        for k, item in v.items():
            if type(k) is not str or type(item) not in _EXACT_SCALARS:
                return 0
        if len(v) > 1:
            out = 2
    return out


def _text(value: Any) -> bytes:
    """The bytes a resource's digest is taken of: equal for equal observations, whatever the order
    of a dict.

    A workspace (40,000 in a 40,000-workspace fleet) is all scalars bar an often empty dict: its
    class name and the repr of its field values, ~3x cheaper than canonical JSON, which the rest
    (clusters, keys with their versions) is written as."""
    kind = type(value)
    getter = _GETTERS.get(kind)
    if getter is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _field_names(kind)
        getter = _GETTERS[kind] = operator.attrgetter(*names) if len(names) > 1 else None
    if getter is not None:
        values = getter(value)
        plain = _plain(values)
        if plain:
            if plain == 2:
                values = tuple(sorted(v.items()) if type(v) is dict else v for v in values)
            return f"{kind.__name__}{values!r}".encode()
    return _ENCODER.encode(_canon(value)).encode()


def _tables(observed: ObservedState) -> tuple[tuple[str, dict[str, Any]], ...]:
    return (
        ("cluster", observed.clusters), ("workspace", observed.workspaces),
        ("key", observed.keys), ("vault", observed.vaults),
    )


# The last state digested and its digests: a plan fingerprints its state, and `plan --out` and the
# apply's stale-plan check digest the same state again (80,000 resources for a 40,000-workspace
# fleet, ~0.5 s each time). Kept small (32 bytes per resource, in the tables' order; the keys are
# rebuilt when asked), and by weak reference: a state no longer used is not kept alive by the memo.
_last: tuple[weakref.ref[ObservedState], bytes] | None = None
_last_keyed: tuple[weakref.ref[ObservedState], list[tuple[str, str]]] | None = None
_last_lock = threading.Lock()


def forget_digests() -> None:
    """Drop the memo (~15 MB for a 40,000-workspace fleet): an apply needs it no more once planned,
    while its state stays referenced for the record the apply writes at its end."""
    global _last, _last_keyed
    with _last_lock:
        _last = _last_keyed = None


def _raw_digests(observed: ObservedState) -> bytes:
    global _last
    with _last_lock:
        last = _last
    if last is not None and last[0]() is observed:
        return last[1]
    blob = b"".join(
        hashlib.sha256(_text(value)).digest() for _, table in _tables(observed) for value in table.values()
    )
    with _last_lock:
        _last = (weakref.ref(observed), blob)
    return blob


def _keyed(observed: ObservedState) -> list[tuple[str, str]]:
    """(resource key, hex digest), sorted by key; the last one kept (a plan asks twice: its
    fingerprint and its per-resource digests)."""
    global _last_keyed
    with _last_lock:
        last = _last_keyed
    if last is not None and last[0]() is observed:
        return last[1]
    blob = _raw_digests(observed)
    out: list[tuple[str, str]] = []
    i = 0
    for prefix, table in _tables(observed):
        for key in table:
            out.append((f"{prefix}:{key.lower()}", blob[i : i + 32].hex()))
            i += 32
    out.sort()
    with _last_lock:
        _last_keyed = (weakref.ref(observed), out)
    return out


def resource_digests(observed: ObservedState) -> dict[str, str]:
    """'cluster:<id key>' / 'workspace:...' / 'key:...' / 'vault:...' -> sha256 of that resource."""
    return dict(_keyed(observed))


def fingerprint(observed: ObservedState) -> str:
    """sha256 over the subscriptions read and every resource digest: of the canonical JSON of
    {"resources": resource_digests, "subscriptions": sorted lower-cased}, fed to the hash piece by
    piece (the whole text is ~20 MB for a 40,000-workspace fleet)."""
    h = hashlib.sha256(b'{"resources":{')
    quote = json.encoder.encode_basestring_ascii  # what the encoder writes for a str, in C
    h.update(",".join([f'{quote(key)}:"{digest}"' for key, digest in _keyed(observed)]).encode())
    subs = sorted(s.lower() for s in observed.subscriptions)
    h.update(b'},"subscriptions":' + _ENCODER.encode(subs).encode() + b"}")
    return "sha256:" + h.hexdigest()


def changed_resources(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The resources whose digest differs, appeared or disappeared (for 'saved plan is stale')."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))

"""A document with a schema error is still rule-checked, and never blamed for what it could not tell.

The fleet example is valid. Breaking one field of one document (a value of the wrong type, an empty
or unreadable string) must produce problems at that field only: the salvage of the broken document
sets the field aside, so no rule check (C1, C3, W1, W2, duplicates, unknown clusters) may speak about
a placeholder, and no other document may be blamed for it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.errors import SpecError
from controller.loading import load

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
FILES = sorted(p.relative_to(FLEET) for p in FLEET.rglob("*.yaml"))
BAD_VALUES = [12345, ["x"], {"unexpected": 1}, "", "\u202e", True, 1.5]


def _paths(value: Any, here: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place in a document, except apiVersion/kind (a document of no kind is another test)."""
    out = [here] if here else []
    if isinstance(value, dict):
        for key, child in value.items():
            if not here and key in ("apiVersion", "kind"):
                continue
            out += _paths(child, (*here, key))
    elif isinstance(value, list):
        for i, child in enumerate(value[:3]):
            out += _paths(child, (*here, i))
    return out


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _set(doc: Any, path: tuple[str | int, ...], value: object) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_broken_field_is_blamed_alone(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "fleet"
        shutil.copytree(FLEET, root)
        _check(data, root)


def _check(data: st.DataObject, root: Path) -> None:
    rel = data.draw(st.sampled_from(FILES))
    docs = list(yaml.safe_load_all((root / rel).read_text()))
    index = data.draw(st.integers(0, len(docs) - 1))
    path = data.draw(st.sampled_from(_paths(docs[index])))
    bad = data.draw(st.sampled_from(BAD_VALUES))
    _set(docs[index], path, bad)
    (root / rel).write_text(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True))

    try:
        load([root])
    except SpecError as err:
        problems = err.problems
    else:
        return  # the value happened to be valid there (e.g. True for a flag)

    where = _dotted(path)
    for problem in problems:
        assert problem.file == str(root / rel), (where, repr(bad), str(problem))
        # at the broken field, inside it, or on the object that holds it (a rule relating its fields)
        near = problem.field.startswith(where) or where.startswith(problem.field)
        assert near, (where, repr(bad), str(problem))
        # no placeholder judged (the values salvage fills in for a required field it set aside)
        for placeholder in ("00000000-0000-0000-0000-000000000000", "capacity 0 GB/day", "'unknown'"):
            assert placeholder not in problem.message, (where, repr(bad), str(problem))

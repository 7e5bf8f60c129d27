"""Whatever bytes arrive in a pull request, loading either succeeds or raises SpecError: nothing else.

Hypothesis feeds random bytes, random YAML (deep nesting, huge ints, odd unicode, aliases) and
mutations of a valid spec. A crash of any other type would reach a CLI user as an internal error.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.errors import SpecError
from controller.loading import load

VALID = (Path(__file__).resolve().parents[2] / "examples" / "fleet" / "teams" / "payments.yaml").read_bytes()
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        ["Cluster", "WorkspaceSet", "Settings", "cmk.azure.io/v1", "SystemAssigned", "\u202e", "\x85"]
    ),
)
keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["apiVersion", "kind", "metadata", "spec", "name", "workspaces", "byos", "capacity", "key"]
    ),
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30,
)


def load_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_bytes(data)
        try:
            load([path])
        except SpecError as err:
            assert err.problems, "a SpecError always lists at least one problem"
            assert all(p.file == str(path) for p in err.problems)


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    load_bytes(data)


@SETTINGS
@given(st.lists(trees, min_size=1, max_size=3))
def test_random_yaml_documents(docs: list[object]) -> None:
    load_bytes(yaml.safe_dump_all(docs, allow_unicode=True).encode("utf-8"))


@SETTINGS
@given(
    st.lists(
        st.sampled_from(["[", "{", "- ", "a: ", "&x ", "*x ", "!!python/object ", "<<: ", "\n  "]),
        max_size=400,
    )
)
def test_yaml_syntax_soup_deep_nesting_and_aliases(tokens: list[str]) -> None:
    load_bytes("".join(tokens).encode())


@SETTINGS
@given(st.data())
def test_mutated_valid_spec(data: st.DataObject) -> None:
    lines = VALID.decode().splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["drop", "dup", "indent", "replace", "unicode"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "replace":
            lines[i] = data.draw(st.text(max_size=40)) + "\n"
        else:
            lines[i] = lines[i].replace(
                "a", data.draw(st.sampled_from(["\u0430", "\ufeff", "\U0001f600", "\t"]))
            )
        if not lines:
            break
    load_bytes("".join(lines).encode("utf-8", errors="surrogatepass"))

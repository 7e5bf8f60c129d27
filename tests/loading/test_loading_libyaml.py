"""The spec reader uses libyaml for speed and says exactly what the pure-Python reader says.

libyaml turns the text into events; the composer, the alias/merge/duplicate/depth checks and the line
map are ours and shared by both parsers, so every document reads to the same data with the same line
for every field, and every refusal names the same line, whichever parser PyYAML was built with.
"""

from __future__ import annotations

import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.loading import yamlsafe
from controller.loading.yamlsafe import RawDocument, YamlProblem, read_documents

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["2026-01-01", "0x1F", "1e3", "~", "yes", "on", "<<", "'q'", "a: b", "- x", "#c"]),
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


Problems = list[tuple[str, int | None]]
Outcome = list[tuple[int, object, dict[object, int], Problems]] | tuple[str, int | None]


def _outcome(raw: bytes, *, pure: bool) -> Outcome:
    """The documents (line, data, line map, problems found in it), or the problem that stopped the file."""
    try:
        docs: list[RawDocument] = read_documents(raw, pure=pure)
    except YamlProblem as err:
        return (err.message, err.line)
    return [(d.line, d.data, d.lines, [(p.message, p.line) for p in d.problems]) for d in docs]


def _refusals(outcome: Outcome) -> Problems:
    if isinstance(outcome, tuple):
        return [outcome]
    return [problem for doc in outcome for problem in doc[3]]


def test_the_installed_pyyaml_has_libyaml() -> None:
    """Without libyaml a 40,000-workspace tree reads ~10x slower (see bench/README.md); the wheels
    the project installs (pyproject, docker/requirements.lock) bundle it, and this notices if not."""
    assert yaml.__with_libyaml__
    assert yamlsafe.LIBYAML


@SETTINGS
@given(
    st.lists(trees, min_size=1, max_size=3),
    st.sampled_from([None, True, False]),
    st.sampled_from([2, 4]),
)
def test_both_parsers_read_the_same_data_and_lines(
    docs: list[object], flow: bool | None, indent: int
) -> None:
    """Any YAML PyYAML writes, in block or flow style, reads to the same values and field lines."""
    text = yaml.safe_dump_all(docs, allow_unicode=True, default_flow_style=flow, indent=indent, width=40)
    raw = text.encode()
    assert _outcome(raw, pure=False) == _outcome(raw, pure=True)


SPEC = (
    "apiVersion: cmk.azure.io/v1\n"  # 1
    "kind: WorkspaceSet\n"  # 2
    "metadata:\n"  # 3
    "  name: apps\n"  # 4
    "spec:\n"  # 5
    "  cluster: c1\n"  # 6
    "  workspaces:\n"  # 7
)


@pytest.mark.parametrize(
    ("tail", "message", "line"),
    [
        ("    - &w a\n    - *w\n", "YAML aliases (*name) are not allowed", 9),
        ("    - {<<: {id: a}}\n", "YAML merge keys (<<) are not allowed", 8),
        ("    - {id: a, id: b}\n", "duplicate key 'id'", 8),
        ("    - " + "[" * 40 + "]" * 40 + "\n", "nesting deeper than 32 levels", 8),
        ("    - {[a]: b}\n", "a mapping key must be a plain string", 8),
        ("    - !!python/object:os.system x\n", "cannot read this value", 8),
        ("---\n" * 3 + SPEC, "", 0),
    ],
)
def test_every_refusal_names_the_same_line_with_both_parsers(tail: str, message: str, line: int) -> None:
    raw = (SPEC + tail).encode()
    fast, slow = _outcome(raw, pure=False), _outcome(raw, pure=True)
    assert fast == slow
    if message:
        assert any(message in text and at == line for text, at in _refusals(fast)), fast


def test_a_syntax_error_in_a_small_file_reads_as_the_pure_parser_words_it() -> None:
    raw = (SPEC + "    - [a\n    - b: c\n").encode()
    fast = _outcome(raw, pure=False)
    assert fast == _outcome(raw, pure=True)
    assert isinstance(fast, tuple) and fast[1] == 9 and "expected ',' or ']'" in fast[0]


def test_a_syntax_error_in_a_large_file_keeps_its_line_and_is_not_reread_slowly() -> None:
    """A file over PURE_REREAD_MAX_BYTES keeps libyaml's wording (never handed to the slow parser),
    but the line is the one the pure parser names."""
    items = "".join(f"    - /subscriptions/x/workspaces/law{i:07d}\n" for i in range(30_000))
    raw = (SPEC + items + "    - [a\n    - b: c\n").encode()
    assert len(raw) > yamlsafe.PURE_REREAD_MAX_BYTES
    started = time.process_time()
    fast = _outcome(raw, pure=False)
    fast_seconds = time.process_time() - started
    slow = _outcome(raw, pure=True)
    assert isinstance(fast, tuple) and isinstance(slow, tuple)
    assert fast[1] == slow[1] == 7 + 30_000 + 2
    assert "invalid YAML" in fast[0]
    assert fast_seconds < 1.0


def test_without_libyaml_specs_read_the_same_and_a_warning_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A PyYAML built without libyaml (an sdist without libyaml-dev) still reads every spec the
    same way, and says once that it is the slow parser."""
    raw = (SPEC + "    - a\n    - {id: b, byos: {query: s}}\n").encode()
    with_libyaml = _outcome(raw, pure=False)
    yamlsafe._warn_pure_python.cache_clear()
    monkeypatch.setattr(yamlsafe, "LIBYAML", False)

    assert _outcome(raw, pure=False) == with_libyaml
    _outcome(raw, pure=False)
    warnings = [r.getMessage() for r in caplog.records if "without libyaml" in r.getMessage()]
    assert len(warnings) == 1 and "pure-Python parser" in warnings[0]

"""Hostile input: whatever a pull request puts in a spec file, `cmkctl validate` and `plan`
answer with problems located as file:line: field: message, within bounded time and memory, and never
with a traceback.

Two layers: hypothesis mutates a valid spec (wrong types, unknown fields, duplicate keys, odd unicode,
huge numbers) and checks every problem the loader reports carries its file, line and field; then the
named attacks (alias bomb, deep nesting, a 100k-digit number, non-UTF-8 bytes, 10k documents, NUL and
bidi characters) go through the real CLI in a subprocess under an address-space limit.
"""

from __future__ import annotations

import copy
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import env_int, estate_for, record, write_spec

from controller.errors import SpecError
from controller.loading import load

EXAMPLES = env_int("CMKCTL_RELIABILITY_EXAMPLES", 150)
MEMORY_LIMIT = 1024 * 1024 * 1024  # 1 GiB address space for the CLI under attack
TIME_LIMIT = 30.0

with tempfile.TemporaryDirectory() as _tmp:
    _spec = write_spec(Path(_tmp), estate_for("byos"))
    VALID: list[dict[str, Any]] = list(yaml.safe_load_all(_spec.read_text(encoding="utf-8")))

odd_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["\u202eevil", "\x00", "\ufeff", "\U0001f4a5", "a\u0301", "\x85", "\ud7ff", "ｃａｐａｃｉｔｙ"]
    ),
)
wrong_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid spec with a few hostile edits, as YAML text (some edits only exist as text)."""
    docs = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        d = draw(st.integers(0, len(docs) - 1))
        paths = _paths(docs[d])
        path = draw(st.sampled_from(paths))
        parent: Any = docs[d]
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["retype", "unknown", "delete"]))
        if op == "retype":
            parent[path[-1]] = draw(wrong_values)
        elif op == "unknown" and isinstance(parent, dict):
            parent[draw(odd_text) or "x"] = draw(wrong_values)
        elif isinstance(parent, dict):
            del parent[path[-1]]
    text = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)
    if draw(st.booleans()):  # a duplicate key, which PyYAML alone would silently accept
        text = text.replace("  capacity:", "  capacity: 2000\n  capacity:", 1)
    return text


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_every_problem_names_file_line_and_field(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load([path])
        except SpecError as err:
            assert err.problems
            for p in err.problems:
                assert p.file == str(path), p
                assert p.line is not None and p.line >= 1, p  # file:line
                assert p.field or "YAML" in p.message or "document" in p.message.lower(), p
    record("hostile", kind="hypothesis mutation", tracebacks=0)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _attacks() -> dict[str, bytes]:
    head = VALID[0]
    doc = yaml.safe_dump(head, sort_keys=False).encode()
    bomb = b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, 10):
        this, prev = chr(97 + i), chr(96 + i)
        bomb += f"{this}: &{this} [{','.join(['*' + prev] * 9)}]\n".encode()
    one = b"---\napiVersion: cmk.azure.io/v1\nkind: WorkspaceSet\nmetadata: {name: s%d}\n"
    many = b"".join(one % i + b"spec: {workspaces: [%d]}\n" % i for i in range(10_000))
    return {
        "alias bomb": bomb,
        "deep nesting": b"spec: " + b"[" * 50_000 + b"]" * 50_000 + b"\n",
        "deep mapping": b"".join(b"  " * i + b"k:\n" for i in range(3000)),
        "huge number": doc.replace(b"capacity: 1000", b"capacity: " + b"9" * 100_000),
        "non-UTF-8 bytes": doc + b"  tags: {team: \xff\xfe\xc3\x28}\n",
        "NUL and bidi": doc.replace(b"relcluster01", "rel\u202ecluster\x00".encode()),
        "10k documents": many,
        "unknown and wrong types": doc.replace(b"capacity: 1000", b"capacity: [1]\n  surprise: true"),
        "duplicate keys": doc.replace(b"capacity: 1000", b"capacity: 1000\n  capacity: 1100"),
        "empty and junk": b"\x00\x01\x02 {{{{ ::: ---",
    }


def test_named_attacks_through_the_cli(tmp_path: Path) -> None:
    results = []
    for name, data in _attacks().items():
        path = tmp_path / (name.replace(" ", "-") + ".yaml")
        path.write_bytes(data)
        for command in ("validate", "plan"):
            args = [sys.executable, "-m", "controller.cli", command]
            args += (
                [str(path)] if command == "validate" else ["-f", str(path), "--state", str(tmp_path / "s")]
            )
            started = time.monotonic()
            done = subprocess.run(
                args,
                capture_output=True,
                timeout=TIME_LIMIT * 2,
                check=False,
                preexec_fn=_limit_memory,  # a plain setrlimit in the child
                env={"PATH": "/usr/bin:/bin", "CMKCTL_EMULATOR": "https://127.0.0.1:9"},
            )
            seconds = time.monotonic() - started
            err = done.stderr.decode("utf-8", "replace")
            out = done.stdout.decode("utf-8", "replace")
            results.append((name, command, done.returncode, round(seconds, 2)))
            assert "Traceback" not in err + out, (name, command, err[-2000:])
            assert "internal error" not in err, (name, command, err[-2000:])
            assert done.returncode == 1, (name, command, done.returncode, err[-2000:])
            assert seconds < TIME_LIMIT, (name, command, seconds)
            assert f"{path}:" in err + out, (name, command, (err + out)[:2000])  # file:line
    for name, command, rc, seconds in results:
        record("hostile", kind=name, command=command, rc=rc, seconds=seconds, tracebacks=0)

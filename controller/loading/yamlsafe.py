"""Hostile-input-safe YAML reading that remembers the line of every field.

PyYAML's SafeLoader is safe against code execution but not against the rest: it expands aliases
("billion laughs"), silently keeps the last of duplicate mapping keys, recurses without bound on
deep nesting, and forgets where a value came from. Specs come from pull requests, so this module:

* refuses aliases outright (`*name`: never followed, reported where they stand); anchors alone are
  harmless and ignored. No expansion budget to tune, and a declarative spec has no real need for them;
* refuses duplicate mapping keys (the second one would silently win) and merge keys (`<<`);
  these, aliases, keys that are not strings and values that cannot be read are reported on their document
  while the rest of it is still read (a duplicate's first value is kept, the others are left out),
  so one run names them together with every other problem;
* refuses nesting deeper than `max_depth`, files larger than `max_bytes`, bytes that are not UTF-8,
  and more than `max_documents` documents per file;
* records `path -> line` for every node, so a pydantic error location maps to a file line.

Speed: libyaml (PyYAML's C `CParser`) turns the text into events; our composer builds the node tree
from them (so the alias ban and the depth cap act on each event, with its mark, before anything
nests), and `_to_data` walks the tree for the remaining checks. A 40,000-workspace tree reads in
in about 0.7 s of CPU this way, against about 9 s with PyYAML's pure-Python scanner.

The pure-Python parser is still used in two cases: when PyYAML was built without libyaml
(`LIBYAML` is False: same results, only slower), and to word a syntax error in a file of at most
`PURE_REREAD_MAX_BYTES`: libyaml and PyYAML report the same line but phrase it differently
("did not find expected ',' or ']'" vs "expected ',' or ']', but got ':'"), and a user should see
one wording whichever parser is installed. Larger files keep libyaml's wording, so a huge broken
file is never handed to the slow parser.

Everything it raises is `YamlProblem` (the loader turns it into a SpecProblem); one that gives up on
the rest of a file (a syntax error, an alias, too deep) carries the documents read before it, so they
are still checked. Problems that do not stop the reading are on each `RawDocument.problems`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

try:
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml: the pure-Python parser reads
    CParser = None  # type: ignore[assignment,misc]

LIBYAML: bool = CParser is not None and bool(yaml.__with_libyaml__)
# Syntax errors in files up to this size are re-read by the pure-Python parser for its wording
# (see the module docstring); it reads ~0.7 MB per CPU second, so the re-read stays near a second.
PURE_REREAD_MAX_BYTES = 1024 * 1024

Path_ = tuple[str | int, ...]


def dotted(path: Path_) -> str:
    """('spec', 'workspaces', 3, 'id') -> 'spec.workspaces[3].id', the way users read field paths."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class ReadLimits:
    """Caps on what one spec file may contain; generous for real specs, fatal for bombs."""

    max_bytes: int = 5 * 1024 * 1024
    max_depth: int = 32
    max_documents: int = 500


# Problems that do not stop the reading (duplicate keys, merge keys, values that cannot be read)
# reported per file at most: a hostile file could hold hundreds of thousands.
MAX_NOTES_PER_FILE = 100


class YamlProblem(Exception):
    """A file that cannot be read as a spec; `line` is 1-based, or None for the whole file.

    `documents`: when it stops the reading of a file, the documents read before it."""

    def __init__(
        self, message: str, line: int | None = None, field: str = "", path: Path_ | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field
        self.path = path  # a value left out of its document: the loader reports nothing else there
        self.documents: list[RawDocument] = []


@dataclass
class RawDocument:
    """One YAML document as plain data, plus the line of each field path."""

    line: int
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    # problems found while reading it (a duplicate key); with readable=False, why `data` is None
    problems: list[YamlProblem] = field(default_factory=list)
    readable: bool = True

    def line_of(self, path: Path_) -> int:
        """Line of `path`, or of its nearest ancestor that exists (a missing field -> its parent)."""
        for cut in range(len(path), -1, -1):
            found = self.lines.get(path[:cut])
            if found is not None:
                return found
        return self.line


class _Guarded(Composer):
    """PyYAML's composer with an alias ban and a depth cap, checked on each event as it arrives.

    It sits before the parser in both loaders' bases, so it composes from either parser's events
    (libyaml's C parser defines its own composer, which would follow aliases and recurse in C)."""

    _depth: int
    _max_depth: int

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        events: Any = self  # the event methods come from whichever parser is mixed in
        if events.check_event(AliasEvent):
            # never followed: a placeholder that _to_data reports (with its field) and leaves out
            event = events.get_event()
            return ScalarNode(_ALIAS_TAG, "", event.start_mark, event.end_mark)
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                mark = events.peek_event().start_mark
                raise YamlProblem(f"nesting deeper than {self._max_depth} levels", mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _PyLoader(Reader, Scanner, Parser, _Guarded, SafeConstructor, Resolver):
    """SafeLoader's pure-Python parts with the guarded composer."""

    def __init__(self, text: str, max_depth: int) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._max_depth = max_depth


_STR_TAG = "tag:yaml.org,2002:str"
_ALIAS_TAG = "!cmkctl/refused-alias"  # not a tag a document can name: '!' tags resolve to their text
_ALIAS_MESSAGE = (
    "YAML aliases (*name) are not allowed in specs: they can expand without bound "
    "(a 'billion laughs' bomb); write the value out"
)

# Either loader: _PyLoader, or _CLoader (its C base has no usable static type in the stubs).
_Loader = Any

if CParser is not None:

    class _CLoader(_Guarded, CParser, SafeConstructor, Resolver):
        """libyaml's parser (events, marks) with the guarded composer and the safe constructor."""

        def __init__(self, text: str, max_depth: int) -> None:
            CParser.__init__(self, text)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._depth = 0
            self._max_depth = max_depth


class _Notes:
    """Problems that do not stop the reading, at most MAX_NOTES_PER_FILE per file."""

    def __init__(self) -> None:
        self.items: list[YamlProblem] = []
        self.full = False

    def add(self, problem: YamlProblem) -> None:
        if len(self.items) < MAX_NOTES_PER_FILE:
            self.items.append(problem)
        elif not self.full:
            self.full = True
            self.items.append(
                YamlProblem(
                    f"more than {MAX_NOTES_PER_FILE} problems like this in this file; "
                    "the rest are not listed",
                    problem.line,
                    problem.field,
                )
            )


class _Unreadable:
    """A value refused while reading (reported in the notes): left out of its mapping, None in a list."""


_UNREADABLE = _Unreadable()


def _to_data(loader: _Loader, node: Node, path: Path_, lines: dict[Path_, int], notes: _Notes) -> Any:
    """Build plain data from a node tree (no aliases, bounded depth), recording each path's line.

    What is refused here goes to `notes` and the rest of the document is still read: a duplicate
    key's value is checked but not kept (the first one is); a merge key, a key that is not a string
    and a value that cannot be read are left out. A left-out value's note carries its path: the loader
    does not report that place again (as a missing field)."""
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        unreadable = False
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                notes.add(YamlProblem("a mapping key must be a plain string", line, dotted(path)))
                continue
            if key_node.tag == _ALIAS_TAG:
                notes.add(YamlProblem(_ALIAS_MESSAGE, line, dotted(path)))
                continue
            key = loader.construct_scalar(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                message = "YAML merge keys (<<) are not allowed in specs: write the keys out"
                notes.add(YamlProblem(message, line, dotted(path)))
                continue
            if key in out:
                first = lines.get((*path, key))
                where = f" (first at line {first})" if first else ""
                notes.add(
                    YamlProblem(
                        f"duplicate key '{key}'{where}: YAML would silently keep only the last one; "
                        "the first is checked, remove one of them",
                        line,
                        dotted((*path, key)),
                    )
                )
                _to_data(loader, value_node, (*path, key), {}, notes)  # refusals inside still count
                continue
            lines[(*path, key)] = line
            value = out[key] = _to_data(loader, value_node, (*path, key), lines, notes)
            unreadable = unreadable or value is _UNREADABLE
        return {k: v for k, v in out.items() if v is not _UNREADABLE} if unreadable else out
    if isinstance(node, SequenceNode):
        items: list[Any] = []
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            value = _to_data(loader, item, (*path, i), lines, notes)
            items.append(None if value is _UNREADABLE else value)
        return items
    if isinstance(node, ScalarNode):
        if node.tag == _STR_TAG:  # most values: the constructor would return node.value as it is
            return node.value
        if node.tag == _ALIAS_TAG:
            notes.add(YamlProblem(_ALIAS_MESSAGE, node.start_mark.line + 1, dotted(path), path))
            return _UNREADABLE
        try:
            return loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            why = _short(err)
        except (ValueError, OverflowError) as err:  # e.g. an integer with too many digits
            why = str(err)
        notes.add(YamlProblem(f"cannot read this value: {why}", node.start_mark.line + 1, dotted(path), path))
        return _UNREADABLE
    raise YamlProblem("unsupported YAML node", node.start_mark.line + 1)  # pragma: no cover


def _short(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    return str(problem) if problem else str(err).splitlines()[0]


def decode(raw: bytes, limits: ReadLimits) -> str:
    """Bytes -> text, refusing oversized and non-UTF-8 input before YAML sees it."""
    if len(raw) > limits.max_bytes:
        raise YamlProblem(
            f"file is {len(raw)} bytes, larger than the {limits.max_bytes}-byte limit for a spec file"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise YamlProblem(
            f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})", line
        ) from None
    if "\x00" in text:
        raise YamlProblem(
            "contains a NUL character: not a text file", text[: text.index("\x00")].count("\n") + 1
        )
    return text


class _SyntaxProblem(YamlProblem):
    """The parser itself refused the text (as opposed to one of our own checks)."""


def read_documents(raw: bytes, limits: ReadLimits | None = None, *, pure: bool = False) -> list[RawDocument]:
    """Parse every document of one file. Empty documents (only comments, or `---`) are skipped.

    `pure=True` forces the pure-Python parser (what a PyYAML without libyaml does)."""
    limits = limits or ReadLimits()
    text = decode(raw, limits)
    if not LIBYAML:
        _warn_pure_python()
    if LIBYAML and not pure:
        try:
            return _read(_CLoader(text, limits.max_depth), limits)
        except _SyntaxProblem:
            if len(raw) > PURE_REREAD_MAX_BYTES:
                raise
            # fall through: the pure-Python parser words the error (or accepts what libyaml refused)
    return _read(_PyLoader(text, limits.max_depth), limits)


@functools.cache
def _warn_pure_python() -> None:
    """Once per process: same results, but a large tree reads about 13x slower, and users should know."""
    logging.getLogger(__name__).warning(
        "PyYAML was built without libyaml: spec files are read by the slower pure-Python parser "
        "(install a PyYAML wheel, or build it with libyaml-dev present)"
    )


def _read(loader: _Loader, limits: ReadLimits) -> list[RawDocument]:
    docs: list[RawDocument] = []
    notes = _Notes()
    try:
        count = 0
        while loader.check_node():
            count += 1
            if count > limits.max_documents:
                raise YamlProblem(f"more than {limits.max_documents} documents in one file")
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node() said there is one
                break
            lines: dict[Path_, int] = {}
            before = len(notes.items)
            line = node.start_mark.line + 1
            try:
                data = _to_data(loader, node, (), lines, notes)
            except YamlProblem as err:  # this document only: the parser is fine, the next one is read
                docs.append(RawDocument(line, None, lines, [*notes.items[before:], err], readable=False))
                continue
            if data is _UNREADABLE:  # the whole document is one value that cannot be read
                docs.append(RawDocument(line, None, lines, notes.items[before:], readable=False))
                continue
            if data is None and len(notes.items) == before:
                continue
            docs.append(RawDocument(line=line, data=data, lines=lines, problems=notes.items[before:]))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        context = ""
        if err.context and err.context_mark is not None and err.context_mark is not mark:
            context = f" ({err.context} that starts at line {err.context_mark.line + 1})"
        raise _with(
            _SyntaxProblem(f"invalid YAML: {_short(err)}{context}", mark.line + 1 if mark else None), docs
        ) from None
    except yaml.YAMLError as err:
        raise _with(_SyntaxProblem(f"invalid YAML: {_short(err)}"), docs) from None
    except RecursionError:
        raise _with(YamlProblem(f"nesting deeper than {limits.max_depth} levels"), docs) from None
    except YamlProblem as err:  # the composer's alias ban or depth cap, or too many documents
        raise _with(err, docs) from None
    finally:
        loader.dispose()
    return docs


def _with(problem: YamlProblem, documents: list[RawDocument]) -> YamlProblem:
    problem.documents = documents
    return problem

"""Hostile-input-safe YAML reading that remembers the line of every field.

PyYAML's SafeLoader is safe against code execution but not against the rest: it expands aliases
("billion laughs"), silently keeps the last of duplicate mapping keys, recurses without bound on
deep nesting, and forgets where a value came from. Specs come from pull requests, so this module:

* refuses aliases outright (`*name`); anchors alone are harmless and ignored. No expansion budget
  to tune, and a declarative spec has no real need for them;
* refuses duplicate mapping keys (the second one would silently win);
* refuses nesting deeper than `max_depth`, files larger than `max_bytes`, bytes that are not UTF-8,
  and more than `max_documents` documents per file;
* records `path -> line` for every node, so a pydantic error location maps to a file line.

Everything it raises is `YamlProblem` (the loader turns it into a SpecProblem).
"""

from __future__ import annotations

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


class YamlProblem(Exception):
    """A file that cannot be read as a spec; `line` is 1-based, or None for the whole file."""

    def __init__(self, message: str, line: int | None = None, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field


@dataclass
class RawDocument:
    """One YAML document as plain data, plus the line of each field path."""

    line: int
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """Line of `path`, or of its nearest ancestor that exists (a missing field -> its parent)."""
        for cut in range(len(path), -1, -1):
            found = self.lines.get(path[:cut])
            if found is not None:
                return found
        return self.line


class _Loader(Reader, Scanner, Parser, Composer, SafeConstructor, Resolver):
    """SafeLoader's parts, with an alias ban and a depth cap in the composer."""

    def __init__(self, text: str, max_depth: int) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._max_depth = max_depth

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise YamlProblem(
                "YAML aliases (*name) are not allowed in specs: they can expand without bound "
                "(a 'billion laughs' bomb); write the value out",
                event.start_mark.line + 1,
            )
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise YamlProblem(f"nesting deeper than {self._max_depth} levels", mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _to_data(loader: _Loader, node: Node, path: Path_, lines: dict[Path_, int]) -> Any:
    """Build plain data from a node tree (no aliases, bounded depth), recording each path's line."""
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem("a mapping key must be a plain string", key_node.start_mark.line + 1)
            key = loader.construct_scalar(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlProblem(
                    "YAML merge keys (<<) are not allowed in specs", key_node.start_mark.line + 1
                )
            if key in out:
                first = lines.get((*path, key))
                where = f" (first at line {first})" if first else ""
                raise YamlProblem(
                    f"duplicate key '{key}'{where}: YAML would silently keep only the last one",
                    key_node.start_mark.line + 1,
                    dotted((*path, key)),
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _to_data(loader, value_node, (*path, key), lines)
        return out
    if isinstance(node, SequenceNode):
        items: list[Any] = []
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            items.append(_to_data(loader, item, (*path, i), lines))
        return items
    if isinstance(node, ScalarNode):
        try:
            return loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            raise YamlProblem(f"cannot read this value: {_short(err)}", node.start_mark.line + 1) from None
        except (ValueError, OverflowError) as err:  # e.g. an integer with too many digits
            raise YamlProblem(f"cannot read this value: {err}", node.start_mark.line + 1) from None
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


def read_documents(raw: bytes, limits: ReadLimits | None = None) -> list[RawDocument]:
    """Parse every document of one file. Empty documents (only comments, or `---`) are skipped."""
    limits = limits or ReadLimits()
    text = decode(raw, limits)
    loader = _Loader(text, limits.max_depth)
    docs: list[RawDocument] = []
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
            data = _to_data(loader, node, (), lines)
            if data is None:
                continue
            docs.append(RawDocument(line=node.start_mark.line + 1, data=data, lines=lines))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        context = ""
        if err.context and err.context_mark is not None and err.context_mark is not mark:
            context = f" ({err.context} that starts at line {err.context_mark.line + 1})"
        raise YamlProblem(f"invalid YAML: {_short(err)}{context}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as err:
        raise YamlProblem(f"invalid YAML: {_short(err)}") from None
    except RecursionError:
        raise YamlProblem(f"nesting deeper than {limits.max_depth} levels") from None
    finally:
        loader.dispose()
    return docs

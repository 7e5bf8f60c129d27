"""Spec files -> DesiredState, or a SpecError that lists every problem with file:line: field.path.

Paths may be files or directory trees; directories contribute their `*.yaml`/`*.yml` files in sorted
order, so the same tree always loads the same way. Each document is dispatched on `apiVersion` and
`kind` first (an unknown kind gets one clear message, not a wall of union errors), then validated by
its pydantic model; pydantic's error locations are mapped back to lines through the node marks that
`yamlsafe` recorded. Cross-document rules run last (`validate.check_documents`), on every document
that could be read: one with schema errors is salvaged (`salvage`) so that its other fields are
checked in the same run, and a duplicate key is reported without hiding the rest of its file.

Nothing but SpecError ever leaves `load()`: a spec comes from a pull request and may be anything.
So the whole tree is bounded too (MAX_TOTAL_BYTES, MAX_TOTAL_DOCUMENTS: many files just under the
per-file cap would otherwise add up to more memory than the controller has), a symbolic link that
resolves outside the tree is refused rather than followed, and the value of an unrecognised `kind`
or `apiVersion` is not repeated unless it is a near miss of a valid one (it may be anything).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from controller.errors import SpecError, SpecProblem
from controller.loading.salvage import child, salvage
from controller.loading.validate import LoadedDocument, check_documents
from controller.loading.yamlsafe import Path_, RawDocument, ReadLimits, YamlProblem, dotted, read_documents
from controller.model import clouds
from controller.model.spec import (
    API_VERSION,
    Cluster,
    DesiredState,
    Settings,
    SettingsSpec,
    SourceLocation,
    WorkspaceSet,
)

KINDS: dict[str, type[Cluster | WorkspaceSet | Settings]] = {
    "Cluster": Cluster,
    "WorkspaceSet": WorkspaceSet,
    "Settings": Settings,
}
SPEC_SUFFIXES = (".yaml", ".yml")


# The whole tree, every file together. Loading costs ~11 bytes of memory per byte of YAML (validate
# of a 15.7 MB, 105,000-workspace tree peaks at 238 MB RSS); the Helm chart gives the controller
# 512Mi, which it also needs to observe Azure. 16 MiB is 2.7x fleet F (40,000 workspaces in 6 MB,
# 81 documents).
MAX_TOTAL_BYTES = 16 * 1024 * 1024
MAX_TOTAL_DOCUMENTS = 10_000


@dataclass(frozen=True)
class LoadLimits(ReadLimits):
    """Per-file caps (ReadLimits) plus how many files, bytes and documents one run may read."""

    max_files: int = 10_000
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_total_documents: int = MAX_TOTAL_DOCUMENTS


def discover(
    paths: Sequence[str | Path], problems: list[SpecProblem], max_files: int, root: Path | None = None
) -> list[Path]:
    """Expand directories into their spec files (sorted, deduplicated); note paths that don't exist.

    A symbolic link is followed only when it resolves inside `root` (the repository checkout, for
    the controller), or, without a root, inside the directory that was given: a committed link to
    /etc or to another checkout must not become part of the spec. A file named on the command line
    is the user's own choice and is read wherever it points, unless a root is set.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        try:
            if root is not None and not _inside(path, root):
                problems.append(SpecProblem(str(path), None, "", _outside(path, "the repository")))
                continue
            if path.is_dir():
                boundary = root.resolve() if root is not None else path.resolve()
                where = "the repository" if root is not None else str(path)
                before = len(problems)
                candidates = _walk(path, boundary, where, problems, set())
                if not candidates and len(problems) == before:
                    problems.append(SpecProblem(str(path), None, "", "no *.yaml or *.yml files here"))
            elif path.is_file():
                candidates = [path]
            elif path.exists():
                problems.append(SpecProblem(str(path), None, "", "not a regular file or directory"))
                continue
            else:
                problems.append(SpecProblem(str(path), None, "", "no such file or directory"))
                continue
        except OSError as err:
            problems.append(SpecProblem(str(path), None, "", f"cannot read: {err.strerror or err}"))
            continue
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved not in seen:
                seen.add(resolved)
                found.append(candidate)
    if len(found) > max_files:
        problems.append(SpecProblem(str(paths[0]), None, "", f"more than {max_files} spec files"))
        return []
    return found


def _walk(
    directory: Path, boundary: Path, where: str, problems: list[SpecProblem], visited: set[Path]
) -> list[Path]:
    """Spec files under `directory`, sorted; links followed only inside `boundary` (loops cut)."""
    visited.add(directory.resolve())
    out: list[Path] = []
    with os.scandir(directory) as entries:
        ordered = sorted(entries, key=lambda e: e.name)
    for entry in ordered:
        if entry.name.startswith("."):
            continue  # dot-directories (.git, .venv, .github) and dot-files hold no specs
        path = Path(entry.path)
        is_spec = path.suffix.lower() in SPEC_SUFFIXES
        if entry.is_symlink():
            if not (is_spec or entry.is_dir()):
                continue  # a link the loader would not read anyway (README.md -> ...)
            if not _inside(path, boundary):
                problems.append(SpecProblem(str(path), None, "", _outside(path, where)))
                continue
        if entry.is_dir():
            if path.resolve() not in visited:
                out += _walk(path, boundary, where, problems, visited)
        elif is_spec and entry.is_file():
            out.append(path)
    return out


def _inside(path: Path, boundary: Path) -> bool:
    """Does `path`, every link along it resolved, stay inside `boundary`? (A link loop does not.)"""
    try:
        return path.resolve().is_relative_to(boundary.resolve())
    except RuntimeError:  # "Symlink loop" (Python 3.11 raises it even with strict=False)
        return False


def _outside(path: Path, where: str) -> str:
    kind = "symbolic link" if path.is_symlink() else "path"
    return (
        f"{kind} does not resolve to a place inside {where}: refused (spec files are read only from "
        "inside the tree, so a committed link cannot pull in other files)"
    )


def _field_path(data: Any, loc: Sequence[str | int]) -> Path_:
    """Pydantic loc -> the path in the user's data, dropping union tags (e.g. '<entry>').

    A loc element that is not in the data is either a missing field (always last, inside a mapping:
    kept, so the message names it) or a validator/union tag (dropped).
    """
    out: list[str | int] = []
    here: Any = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        found, value = child(here, part)
        if found:
            out.append(part)
            here = value
        elif last and isinstance(here, dict) and isinstance(part, str) and not part.startswith("<"):
            out.append(part)
    return tuple(out)


def _first_model(annotation: Any) -> type[BaseModel] | None:
    """The first pydantic model inside a field annotation (Optional, list, tagged unions...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """YAML names allowed in the mapping that holds `loc`'s last element (for 'did you mean')."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None:
            return []
        if isinstance(part, int) or part.startswith("<"):
            continue  # list index or union tag: the model is already unwrapped
        field = next((f for n, f in current.model_fields.items() if part in (f.alias, n)), None)
        current = _first_model(field.annotation) if field is not None else None
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _message(error: Any, model: type[BaseModel] | None = None) -> str:
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        loc = error.get("loc", ())
        allowed = _fields_at(model, loc) if model is not None and loc else []
        close = get_close_matches(str(loc[-1]), allowed, n=1) if loc else []
        hint = (
            f"; did you mean '{close[0]}'?"
            if close
            else (f"; allowed: {', '.join(allowed)}" if allowed else "")
        )
        return f"unknown field (not part of the spec){hint}"
    if kind == "missing":
        return "required field is missing"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if kind == "literal_error" or kind.startswith("enum"):
        given = error.get("input")
        if isinstance(given, str | int | float | bool):
            msg = f"{msg} (got {given!r})"
    return msg


_PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9./-]{0,39}")


def _shown(value: object, valid: list[str]) -> str:
    """How an unrecognised kind or apiVersion appears in a message (and so in /status and logs).

    A near miss of a valid value, in plain letters, is quoted: it is a typo the user will recognise.
    Anything else is described, never repeated: a document we do not recognise may hold anything
    (a secret pasted into the wrong file, terminal escapes, megabytes of text).
    """
    if value is None:
        return "missing"
    if isinstance(value, str):
        if _PLAIN_WORD.fullmatch(value) and get_close_matches(value, valid, n=1, cutoff=0.6):
            return f"'{value}'"
        return f"an unrecognised value of {len(value)} characters, not shown"
    kinds = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "a mapping"}
    return kinds.get(type(value), "a value that is not text")


def _validate_document(
    file: str, raw: RawDocument, problems: list[SpecProblem], cloud: clouds.Cloud = clouds.DEFAULT
) -> LoadedDocument | None:
    """Dispatch on apiVersion/kind, validate, and translate errors to file:line: field messages."""
    data = raw.data
    if not isinstance(data, dict):
        problems.append(
            SpecProblem(
                file, raw.line, "", "a spec document must be a mapping with apiVersion, kind, metadata, spec"
            )
        )
        return None
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if api_version != API_VERSION:
        unknown = "" if api_version is None else "unknown apiVersion; "
        got = _shown(api_version, [API_VERSION])
        problems.append(
            SpecProblem(
                file,
                raw.line_of(("apiVersion",)),
                "apiVersion",
                f"{unknown}must be '{API_VERSION}' (got {got})",
            )
        )
        return None
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        unknown = "" if kind is None else "unknown kind; "
        got = _shown(kind, list(KINDS))
        message = f"{unknown}must be one of {', '.join(KINDS)} (got {got})"
        problems.append(SpecProblem(file, raw.line_of(("kind",)), "kind", message))
        return None
    context = {"cloud": cloud}
    try:
        # by_name=False: YAML uses the documented camelCase names only (`resource_group` is a typo here)
        # context: the selected cloud decides which Key Vault / Managed HSM host names a vaultUri may use
        doc: BaseModel = model.model_validate(data, by_alias=True, by_name=False, context=context)
    except ValidationError as err:
        left_out = {p.path for p in raw.problems if p.path is not None}
        for error in err.errors(include_url=False):
            path = _field_path(data, error["loc"])
            if left_out and any(path[:cut] in left_out for cut in range(len(path) + 1)):
                continue  # a value the reader left out, already reported
            problems.append(SpecProblem(file, raw.line_of(path), dotted(path), _message(error, model)))
        return _salvaged(file, raw, model, str(kind), context)
    assert isinstance(doc, Cluster | WorkspaceSet | Settings)  # noqa: S101 - narrowing for mypy
    return LoadedDocument(file=file, line=raw.line, lines=raw.lines, model=doc)


def _salvaged(
    file: str,
    raw: RawDocument,
    model: type[BaseModel],
    kind: str,
    context: dict[str, Any],
) -> LoadedDocument | None:
    """The document without its failed fields, for the rule checks (None: it cannot do without them).

    Best effort: the errors are already reported, so a failure here only means fewer checks."""
    try:
        found = salvage(model, kind, raw.data, context, _field_path)
    except Exception:  # a salvage bug must not hide the problems already found
        return None
    if found is None:
        return None
    doc = found.model
    assert isinstance(doc, Cluster | WorkspaceSet | Settings)  # noqa: S101 - narrowing for mypy
    return LoadedDocument(
        file=file,
        line=raw.line,
        lines=raw.lines,
        model=doc,
        unknown=found.unknown,
        positions=found.positions,
        partial=True,
    )


def load_documents(
    paths: Sequence[str | Path],
    limits: LoadLimits | None = None,
    *,
    cloud: clouds.Cloud = clouds.DEFAULT,
    root: Path | None = None,
) -> tuple[list[LoadedDocument], list[SpecProblem], int]:
    """Read and validate every document one by one: (documents, problems, number of files read).

    The documents are those valid on their own. `root`: links must resolve inside it (the controller
    passes its repository checkout)."""
    documents, problems, files, _ = _read_tree(paths, limits, cloud=cloud, root=root)
    return [d for d in documents if not d.partial], problems, files


def _read_tree(
    paths: Sequence[str | Path],
    limits: LoadLimits | None,
    *,
    cloud: clouds.Cloud,
    root: Path | None,
) -> tuple[list[LoadedDocument], list[SpecProblem], int, bool]:
    """(documents, also those salvaged from errors; problems; files read; was every document read?)"""
    limits = limits or LoadLimits()
    problems: list[SpecProblem] = []
    files = discover(paths, problems, limits.max_files, root)
    complete = not problems
    documents: list[LoadedDocument] = []
    total_bytes = total_documents = 0
    for path in files:
        file = str(path)
        try:
            size = path.stat().st_size
            if size > limits.max_bytes:  # refuse before reading a huge file into memory
                raise YamlProblem(
                    f"file is {size} bytes, larger than the {limits.max_bytes}-byte limit for a spec file"
                )
            if total_bytes + size > limits.max_total_bytes:
                problems.append(SpecProblem(file, None, "", _tree_too_big(total_bytes + size, limits)))
                complete = False
                break  # the point of the cap: read nothing more
            data = _read_at_most(path, limits.max_bytes)
            total_bytes += len(data)
            raws = read_documents(data, limits)
        except YamlProblem as err:
            # the rest of this file is unread; the documents before the problem are still checked
            raws = err.documents
            problems.append(SpecProblem(file, err.line, err.field, err.message))
            complete = False
        except OSError as err:
            problems.append(SpecProblem(file, None, "", f"cannot read: {err.strerror or err}"))
            complete = False
            continue
        total_documents += len(raws)
        if total_documents > limits.max_total_documents:
            problems.append(
                SpecProblem(
                    file,
                    raws[0].line if raws else None,
                    "",
                    f"the spec tree has more than {limits.max_total_documents} documents, the limit for "
                    "a whole tree (MAX_TOTAL_DOCUMENTS); nothing from here on was read",
                )
            )
            complete = False
            break
        for raw in raws:
            for note in raw.problems:  # what the reader refused (a duplicate key, an alias, ...)
                problems.append(SpecProblem(file, note.line, note.field, note.message))
            loaded = _validate_document(file, raw, problems, cloud) if raw.readable else None
            if loaded is not None:
                documents.append(loaded)
            else:
                complete = False
    return documents, problems, len(files), complete


def _tree_too_big(total: int, limits: LoadLimits) -> str:
    return (
        f"with this file the spec tree is {total} bytes, more than the {limits.max_total_bytes}-byte limit "
        "for a whole tree (MAX_TOTAL_BYTES); this file and any after it were not read"
    )


def _read_at_most(path: Path, limit: int) -> bytes:
    """The file's bytes, refusing one that grew past `limit` since it was measured."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise YamlProblem(f"file is larger than the {limit}-byte limit for a spec file")
    return data


def build_state(documents: Iterable[LoadedDocument]) -> DesiredState:
    """Assemble validated documents (already checked as a whole) into the planner's input."""
    docs = list(documents)
    settings = next((d.model.spec for d in docs if isinstance(d.model, Settings)), SettingsSpec())
    return DesiredState(
        clusters=tuple(d.model for d in docs if isinstance(d.model, Cluster)),
        workspace_sets=tuple(d.model for d in docs if isinstance(d.model, WorkspaceSet)),
        settings=settings,
        sources={
            f"{d.model.kind}/{d.model.metadata.name}": SourceLocation(file=d.file, line=d.line) for d in docs
        },
    )


def load(
    paths: Sequence[str | Path],
    limits: LoadLimits | None = None,
    *,
    cloud: clouds.Cloud = clouds.DEFAULT,
    root: Path | None = None,
) -> DesiredState:
    """Load a spec tree. Raises SpecError (and only SpecError) listing every problem found.

    `cloud` is the selected Azure cloud: key vaultUri values must be that cloud's vault/HSM hosts.
    `root`: symbolic links must resolve inside it; without one, inside each directory given.
    """
    try:
        documents, problems, _, complete = _read_tree(paths, limits, cloud=cloud, root=root)
        # Rules run on every document that could be read (those with schema errors salvaged), so one
        # run reports everything; a reference to a cluster is only judged when no document was lost.
        problems.extend(check_documents(documents, complete=complete))
        if not problems and not documents:
            problems.append(
                SpecProblem(", ".join(str(p) for p in paths) or ".", None, "", "no spec documents found")
            )
        if problems:
            raise SpecError(sorted(problems, key=lambda p: (p.file, p.line or 0)))
        return build_state(documents)
    except SpecError:
        raise
    except RecursionError:
        raise SpecError([SpecProblem(_first(paths), None, "", "spec is nested too deeply to read")]) from None
    except Exception as err:  # a bug in a validator must still reach the user as a spec problem
        raise SpecError(
            [SpecProblem(_first(paths), None, "", f"could not be read ({type(err).__name__}: {err})")]
        ) from None


def _first(paths: Sequence[str | Path]) -> str:
    return str(paths[0]) if paths else "."

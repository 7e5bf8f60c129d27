"""Spec files -> DesiredState, or a SpecError that lists every problem with file:line: field.path.

Paths may be files or directory trees; directories contribute their `*.yaml`/`*.yml` files in sorted
order, so the same tree always loads the same way. Each document is dispatched on `apiVersion` and
`kind` first (an unknown kind gets one clear message, not a wall of union errors), then validated by
its pydantic model; pydantic's error locations are mapped back to lines through the node marks that
`yamlsafe` recorded. Cross-document rules run last (`validate.check_documents`).

Nothing but SpecError ever leaves `load()`: a spec comes from a pull request and may be anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from controller.errors import SpecError, SpecProblem
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


@dataclass(frozen=True)
class LoadLimits(ReadLimits):
    """Per-file caps (ReadLimits) plus how many files one run may read."""

    max_files: int = 10_000


def discover(paths: Sequence[str | Path], problems: list[SpecProblem], max_files: int) -> list[Path]:
    """Expand directories into their spec files (sorted, deduplicated); note paths that don't exist."""
    found: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        try:
            if path.is_dir():
                candidates = sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix.lower() in SPEC_SUFFIXES and not _hidden(p.relative_to(path)) and p.is_file()
                )
                if not candidates:
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


def _hidden(relative: Path) -> bool:
    """Dot-directories (.git, .venv, .github) under a spec tree hold no specs: skip them."""
    return any(part.startswith(".") for part in relative.parts)


def _field_path(data: Any, loc: Sequence[str | int]) -> Path_:
    """Pydantic loc -> the path in the user's data, dropping union tags (e.g. '<entry>').

    A loc element that is not in the data is either a missing field (always last, inside a mapping:
    kept, so the message names it) or a validator/union tag (dropped).
    """
    out: list[str | int] = []
    here: Any = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        found, child = _child(here, part)
        if found:
            out.append(part)
            here = child
        elif last and isinstance(here, dict) and isinstance(part, str) and not part.startswith("<"):
            out.append(part)
    return tuple(out)


def _child(here: Any, part: str | int) -> tuple[bool, Any]:
    if isinstance(here, dict) and isinstance(part, str) and part in here:
        return True, here[part]
    if isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
        return True, here[part]
    return False, None


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
        got = "missing" if api_version is None else f"'{api_version}'"
        problems.append(
            SpecProblem(
                file, raw.line_of(("apiVersion",)), "apiVersion", f"must be '{API_VERSION}' (got {got})"
            )
        )
        return None
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        got = "missing" if kind is None else f"'{kind}'"
        problems.append(
            SpecProblem(
                file, raw.line_of(("kind",)), "kind", f"must be one of {', '.join(KINDS)} (got {got})"
            )
        )
        return None
    try:
        # by_name=False: YAML uses the documented camelCase names only (`resource_group` is a typo here)
        # context: the selected cloud decides which Key Vault / Managed HSM host names a vaultUri may use
        doc: BaseModel = model.model_validate(data, by_alias=True, by_name=False, context={"cloud": cloud})
    except ValidationError as err:
        for error in err.errors(include_url=False):
            path = _field_path(data, error["loc"])
            problems.append(SpecProblem(file, raw.line_of(path), dotted(path), _message(error, model)))
        return None
    assert isinstance(doc, Cluster | WorkspaceSet | Settings)  # noqa: S101 - narrowing for mypy
    return LoadedDocument(file=file, line=raw.line, lines=raw.lines, model=doc)


def load_documents(
    paths: Sequence[str | Path], limits: LoadLimits | None = None, *, cloud: clouds.Cloud = clouds.DEFAULT
) -> tuple[list[LoadedDocument], list[SpecProblem], int]:
    """Read and validate every document one by one: (documents, problems, number of files read)."""
    limits = limits or LoadLimits()
    problems: list[SpecProblem] = []
    files = discover(paths, problems, limits.max_files)
    documents: list[LoadedDocument] = []
    for path in files:
        file = str(path)
        try:
            size = path.stat().st_size
            if size > limits.max_bytes:  # refuse before reading a huge file into memory
                raise YamlProblem(
                    f"file is {size} bytes, larger than the {limits.max_bytes}-byte limit for a spec file"
                )
            raws = read_documents(path.read_bytes(), limits)
        except YamlProblem as err:
            problems.append(SpecProblem(file, err.line, err.field, err.message))
            continue
        except OSError as err:
            problems.append(SpecProblem(file, None, "", f"cannot read: {err.strerror or err}"))
            continue
        for raw in raws:
            loaded = _validate_document(file, raw, problems, cloud)
            if loaded is not None:
                documents.append(loaded)
    return documents, problems, len(files)


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
    paths: Sequence[str | Path], limits: LoadLimits | None = None, *, cloud: clouds.Cloud = clouds.DEFAULT
) -> DesiredState:
    """Load a spec tree. Raises SpecError (and only SpecError) listing every problem found.

    `cloud` is the selected Azure cloud: key vaultUri values must be that cloud's vault/HSM hosts.
    """
    try:
        documents, problems, _ = load_documents(paths, limits, cloud=cloud)
        # Cross-document rules run on the documents that are valid on their own, so one run reports
        # everything; a reference to a cluster is only judged when no document was dropped.
        problems.extend(check_documents(documents, complete=not problems))
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

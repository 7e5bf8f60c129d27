"""The product's own error types. Everything a user can see derives from CmkError.

The CLI catches CmkError and prints `str(err)` (never a traceback) with exit code `err.exit_code`.

    CmkError
    ├── SpecError            bad input: file, line, field path, message (exit 1)
    ├── StalePlanError       a saved plan whose observed fingerprint no longer matches (exit 1)
    ├── LockHeldError        another writer holds the lock (exit 1, names the holder)
    └── AzureError           mapped once at the Azure boundary (controller.azure.errors)
"""

from __future__ import annotations

from dataclasses import dataclass


class CmkError(Exception):
    exit_code = 1


@dataclass(frozen=True)
class SpecProblem:
    file: str
    line: int | None
    field: str  # dotted path, e.g. spec.identity.type, or "" for the whole document
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(CmkError):
    """One or more problems in the spec files; nothing was changed."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class StalePlanError(CmkError):
    pass


class LockHeldError(CmkError):
    pass


class AzureError(CmkError):
    """Base of the Azure boundary's errors (see controller.azure.errors for the tree)."""

"""The JSON plan artefact (`cmkctl plan --out`): versioned, schema in specs/plan.schema.json.

Secrets never belong in a plan; as a last line of defence any string that looks like a credential
(a JWT, a bearer token, a SAS signature, a storage account key) is redacted before writing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from controller.errors import CmkError
from controller.planning.plan import FORMAT_VERSION, Plan

_SECRETS = [
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"(?i)([?&]sig=)[A-Za-z0-9%+/=]{16,}"),  # SAS signature
    re.compile(r"(?i)(AccountKey=)[A-Za-z0-9+/=]{20,}"),
    re.compile(r"(?i)(client_?secret[\"'=:\s]+)[^\s\"',]{8,}"),
]


class PlanFormatError(CmkError):
    """A plan file that is not a plan of a format this version understands."""


def redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


def _redact_tree(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_tree(v) for v in value]
    return value


def to_json(plan: Plan) -> str:
    """The artefact: stable key order, ISO-8601 UTC dates, 2-space indent, trailing newline."""
    data = _redact_tree(plan.model_dump(mode="json"))
    data["summary"]["changes"] = plan.summary.changes
    data["complete"] = plan.complete
    data["next_not_before"] = _next_date(plan)
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _next_date(plan: Plan) -> str | None:
    nb = plan.next_not_before
    return nb.isoformat().replace("+00:00", "Z") if nb is not None else None


def from_json(text: str) -> Plan:
    """Read a plan file; a different major format version or a broken file is a clear error."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise PlanFormatError(f"not a plan file: invalid JSON at line {err.lineno}") from None
    if not isinstance(data, dict) or "format_version" not in data:
        raise PlanFormatError("not a plan file: no format_version")
    version = str(data["format_version"])
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise PlanFormatError(f"plan format {version} is not supported (this cmkctl reads {FORMAT_VERSION})")
    data.pop("complete", None)
    data.pop("next_not_before", None)
    if isinstance(data.get("summary"), dict):
        data["summary"].pop("changes", None)
    try:
        return Plan.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanFormatError(f"not a valid plan: {where}: {first['msg']}") from None

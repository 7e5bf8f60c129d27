"""The request/response values every handler works with, independent of the HTTP server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str  # upper-case
    host: str  # Host header without port, lower-case (routing key)
    path: str  # URL path, percent-decoded
    query: dict[str, str]  # first value of each query parameter (keys as sent)
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)

    def q(self, name: str) -> str | None:
        """Case-insensitive query parameter lookup (ARM ignores casing of `api-version`)."""
        lname = name.lower()
        for k, v in self.query.items():
            if k.lower() == lname:
                return v
        return None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


def arm_error(status: int, code: str, message: str | None, **extra: Any) -> Response:
    """ARM error envelope {"error": {"code", "message"}} (docs/azure-wire.md)."""
    err: dict[str, Any] = {"code": code}
    if message is not None:
        err["message"] = message
    err.update(extra)
    return Response(status, {"error": err})

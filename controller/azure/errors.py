"""SDK errors mapped once, at the Azure boundary, into the project's own types.

Everything above `controller.azure` sees only these (never `azure.core.exceptions`), so the executor
can decide retry / re-observe / give up from the type alone:

    controller.errors.AzureError
    ├── Transient(retry_after)   429, 408, 5xx, connection refused/reset/timeout before a response
    ├── Busy                     409 "link or unlink in process" (rule W5),
    │                            400 "async operation in progress" (rule C6)
    ├── RuleViolation(rule_id)   a 400/409 the service gives for one of the rules in docs/rules.md (C1..B2)
    ├── NotFound                 404 (a cluster may be soft-deleted, rule C11)
    ├── Forbidden                401/403 (credentials, RBAC, Key Vault access policy)
    ├── OutcomeUnknown           the request was sent but the response was lost: re-observe,
    │                            never re-send (a second link would burn the W3 budget)
    └── Terminal                 anything else: a bug or an unexpected answer; do not retry

Azure's `code` and `message` are kept verbatim (`err.code`, `err.azure_message`).
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from controller.errors import AzureError as _Base
from controller.model.rules import Rule


class AzureError(_Base):
    """An Azure call failed; `status`, `code` and `azure_message` are what Azure said."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        azure_message: str | None = None,
        operation: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.azure_message = azure_message
        self.operation = operation
        super().__init__(message)

    def context(self, what: str) -> Self:
        """The same error, its message prefixed with what we were doing."""
        clone = copy.copy(self)
        clone.args = (f"{what}: {self}",)
        clone.operation = self.operation or what
        return clone


class Transient(AzureError):
    """Worth retrying after `retry_after` seconds (None: use the caller's backoff)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class Busy(AzureError):
    """The resource is busy with another asynchronous operation (rules C6, W5): wait and re-observe."""

    def __init__(self, message: str, *, rule_id: Rule | None = None, **kw: Any) -> None:
        self.rule_id = rule_id
        super().__init__(message, **kw)


class RuleViolation(AzureError):
    """The service refused because of a domain rule; `rule_id` is the docs/rules.md id."""

    def __init__(self, message: str, *, rule_id: Rule, **kw: Any) -> None:
        self.rule_id = rule_id
        super().__init__(message, **kw)


class NotFound(AzureError):
    """404: the resource does not exist (or is soft-deleted, rule C11)."""


class Forbidden(AzureError):
    """401/403: our identity may not do this (RBAC or a Key Vault access policy)."""


class OutcomeUnknown(AzureError):
    """The request went out but no response came back: re-observe before doing anything else."""


class Terminal(AzureError):
    """Not retryable and not a known rule: surface to the user as is."""


class StillRunning(AzureError):
    """We stopped waiting for an operation Azure is still running (CMKCTL_OPERATION_TIMEOUT).

    Not a failure of the operation: its journal entry stays "sent" so the next run resumes it from its
    token and never sends it again (rules C6, W3)."""


# Azure error codes that name the rule outright (real codes where known, else the emulator's;
# docs/azure-wire.md). `None`: a known code that is not a rule refusal (stays Terminal).
_CODE_RULES: dict[str, Rule | None] = {
    "invalidclustername": Rule.C1,
    "clusterlimitexceeded": Rule.C2,
    "invalidsku": Rule.C3,
    "invalidcapacity": Rule.C3,
    "capacitylocked": Rule.C4,
    "keyvaultpropertiesoncreation": Rule.C5,
    "invalididentity": Rule.C5,
    "invalidkeyvaultproperties": Rule.C7,
    "doubleencryptionnotsupported": Rule.C9,
    "clusterworkspacelimitexceeded": Rule.W1,
    "workspacealreadylinked": Rule.W2,
    "workspacelinkoperationslimitexceeded": Rule.W3,
    "clusternotfound": None,
    "storageaccountnotfound": None,
    **{r.value.lower(): r for r in Rule},
}
_BUSY_CODES: dict[str, Rule] = {
    "asyncoperationinprogress": Rule.C6,
    "clusterdeleting": Rule.C6,
}
# Service messages -> rule ids, checked in order (docs/rules.md error catalogue, docs/azure-wire.md).
_BUSY_PATTERNS: tuple[tuple[re.Pattern[str], Rule], ...] = (
    (re.compile(r"link or unlink operation in process", re.I), Rule.W5),
    (re.compile(r"async operation is in (a )?(state other than succeeded|progress)", re.I), Rule.C6),
    (re.compile(r"wait for the async operation to complete", re.I), Rule.C6),
    (re.compile(r"can'?t delete a cluster while in provisioning", re.I), Rule.C6),
    (re.compile(r"cluster is in deleting state", re.I), Rule.C6),
)
_RULE_PATTERNS: tuple[tuple[re.Pattern[str], Rule], ...] = (
    (re.compile(r"cluster name (isn'?t|is not) valid", re.I), Rule.C1),
    (re.compile(r"capacity is locked", re.I), Rule.C4),
    (re.compile(r"keyvaultproperties.{0,40}on creation", re.I), Rule.C5),
    (re.compile(r"identity is null or empty", re.I), Rule.C5),
    (re.compile(r"failed to validate key|key isn'?t recoverable|keyvaultproperties.{0,30}bad format", re.I),
     Rule.C7),
    (re.compile(r"storage account.{0,200}(same region)|one storage account", re.I), Rule.B1),
    (re.compile(r"same region and tenant|must be in the same region", re.I), Rule.C8),
    (re.compile(r"double encryption|isdoubleencryptionenabled", re.I), Rule.C9),
    (re.compile(r"(move|moving).{0,40}(resource group|subscription)", re.I), Rule.C10),
    (re.compile(r"soft-?delete.{0,40}(14 days|reserved)|name is reserved", re.I), Rule.C11),
    (re.compile(r"clusters in region|clusters per region", re.I), Rule.C2),
    (re.compile(r"maximum.{0,40}linked workspaces|linked workspaces; the maximum", re.I), Rule.W1),
    (re.compile(r"already linked to (another )?cluster", re.I), Rule.W2),
    (re.compile(r"link or unlink operations in the last", re.I), Rule.W3),
    (re.compile(r"capacity|capacityreservation|sku name", re.I), Rule.C3),
)


def _retry_after_in_message(message: str | None) -> float | None:
    """The wait in "try again after '<n>' seconds" (throttling) when no header says it."""
    m = re.search(r"after '?(\d+)'? seconds", message or "", re.I)
    return float(m.group(1)) if m else None


def _error_fields(exc: HttpResponseError) -> tuple[str | None, str | None]:
    """Azure's code and message, whichever envelope carried them (ARM, Key Vault, Activity Log)."""
    code: str | None = None
    message: str | None = None
    err = getattr(exc, "error", None)
    if err is not None:
        code = getattr(err, "code", None)
        message = getattr(err, "message", None)
    if code is None or message is None:
        body: Any = None
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                body = response.json()
            except Exception:  # a non-JSON body is simply "no fields"
                body = None
        if isinstance(body, dict):
            inner: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else body
            code = code or inner.get("code") or inner.get("Code")
            message = message or inner.get("message") or inner.get("Message")
    if message is None:
        message = getattr(exc, "message", None) or str(exc)
    return code, message


def _retry_after(exc: Exception) -> float | None:
    """Seconds from Retry-After (seconds or HTTP date) or retry-after-ms, if the response has one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if headers.get(name):
            try:
                return float(headers[name]) / 1000.0
            except ValueError:
                pass
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def rule_for(code: str | None, message: str | None) -> Rule | None:
    """The docs/rules.md rule a service refusal is about, if we recognise it (by code, then message)."""
    if code and code.lower() in _CODE_RULES:
        return _CODE_RULES[code.lower()]
    text = message or ""
    for pattern, rule in _RULE_PATTERNS:
        if pattern.search(text):
            return rule
    return None


def _busy_rule(status: int | None, code: str | None, message: str | None) -> Rule | None:
    if code and code.lower() in _BUSY_CODES:
        return _BUSY_CODES[code.lower()]
    text = f"{code or ''} {message or ''}"
    for pattern, rule in _BUSY_PATTERNS:
        if pattern.search(text):
            return rule
    in_progress_codes = ("conflict", "anotheroperationinprogress", "operationinprogress")
    if status == 409 and (code or "").lower() in in_progress_codes and "link" in (message or "").lower():
        return Rule.W5
    return None


def map_error(exc: BaseException, *, operation: str | None = None) -> AzureError:
    """Translate one SDK exception into the project's tree (see the module docstring).

    Already-mapped errors pass through unchanged, so callers can wrap broadly without double mapping.
    """
    if isinstance(exc, AzureError):
        return exc
    if isinstance(exc, _Base):
        return Terminal(str(exc), operation=operation)
    where = f"{operation}: " if operation else ""
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        # raised by the credential itself (no token), not by a 401 from the service
        return Forbidden(f"{where}authentication failed: {_short(exc)}", operation=operation)
    if isinstance(exc, ServiceResponseError):
        # The request may have reached Azure; re-sending a link could cost a W3 operation twice.
        return OutcomeUnknown(
            f"{where}the request was sent but no response arrived ({_short(exc)}); "
            "re-observe before retrying",
            operation=operation,
        )
    if isinstance(exc, ServiceRequestError):
        return Transient(f"{where}could not reach Azure ({_short(exc)})", operation=operation)
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code, message = _error_fields(exc)
        kw: dict[str, Any] = {
            "status": status, "code": code, "azure_message": message, "operation": operation,
        }
        said = f"{where}Azure said {status}" + (f" {code}" if code else "")
        said += f": {message}" if message else ""
        if status in (408, 429) or (status is not None and status >= 500):
            wait = _retry_after(exc)
            if wait is None:
                wait = _retry_after_in_message(message)
            return Transient(said, retry_after=wait, **kw)
        if status in (401, 403):
            return Forbidden(said, **kw)
        if status == 404:
            return NotFound(said, **kw)
        busy = _busy_rule(status, code, message)
        if busy is not None:
            return Busy(f"{said} (rule {busy.value})", rule_id=busy, **kw)
        if status in (400, 409):
            rule = rule_for(code, message)
            if rule is None and status == 409 and (code or "").lower() == "conflict":
                rule = Rule.C11  # a create whose name is still reserved by a soft-deleted cluster
            if rule is not None:
                return RuleViolation(f"{said} (rule {rule.value})", rule_id=rule, **kw)
        return Terminal(said, **kw)
    return Terminal(f"{where}unexpected error from the Azure SDK: {type(exc).__name__}: {_short(exc)}",
                    operation=operation)


def _short(exc: BaseException) -> str:
    """First line only: SDK messages can carry whole responses; tokens never appear in them."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__

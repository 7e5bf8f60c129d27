"""SDK errors mapped once, at the Azure boundary, into the project's own types.

Everything above `controller.azure` sees only these (never `azure.core.exceptions`), so the executor
can decide retry / re-observe / give up from the type alone:

    controller.errors.AzureError
    ├── Transient(retry_after)   429, 408, 5xx, connection refused/reset/timeout before a response
    ├── Busy                     409 "link or unlink operation in process" (rule W5),
    │                            400 "Operation can't be executed now" (rule C6)
    ├── RuleViolation(rule_id)   a 400/409 the service gives for one of the rules in docs/rules.md (C1..B2);
    │                            permanent: never retried (C4 carries the date it lifts, `not_before`)
    ├── NotFound                 404 (a cluster may be soft-deleted, rule C11)
    ├── Forbidden                401/403 (credentials, RBAC, Key Vault access policy)
    ├── OutcomeUnknown           the request was sent but the response was lost: re-observe,
    │                            never re-send (a second link would burn the W3 budget)
    └── Terminal                 anything else: a bug or an unexpected answer; do not retry

Refusals are classified by HTTP status and Azure's message (the REFUSALS table), never by `code`:
today's codes are generic (BadRequest, InvalidInput, InvalidParameter, Conflict, ...) and the rule is in
the words. An operation that ends `Failed` surfaces from the SDK's poller as an HttpResponseError on the
final status response (HTTP 200, body `{"status": "Failed", "error": {...}}`); it is classified by the
same table, so a key that fails validation asynchronously is the same C7 as a synchronous refusal.

Azure's `code` and `message` are kept verbatim (`err.code`, `err.azure_message`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
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
        # not copy.copy: it rebuilds from `args` and loses keyword-only fields (RuleViolation.rule_id)
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
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
    """The service refused because of a domain rule; `rule_id` is the docs/rules.md id.

    `not_before`: when the refusal lifts by the calendar (rule C4), if known; else None."""

    def __init__(
        self, message: str, *, rule_id: Rule, not_before: datetime | None = None, **kw: Any
    ) -> None:
        self.rule_id = rule_id
        self.not_before = not_before
        super().__init__(message, **kw)

    def with_remedy(self, remedy: str) -> RuleViolation:
        """The same refusal followed by what to do about it (rule C7: the grant command)."""
        return RuleViolation(
            f"{self}; {remedy}",
            rule_id=self.rule_id,
            not_before=self.not_before,
            status=self.status,
            code=self.code,
            azure_message=self.azure_message,
            operation=self.operation,
        )

    def lifting(self, not_before: datetime) -> RuleViolation:
        """The same refusal, saying from when the request will be accepted (rule C4)."""
        return RuleViolation(
            f"{self} (allowed from {not_before.strftime('%Y-%m-%d %H:%M UTC')})",
            rule_id=self.rule_id,
            not_before=not_before,
            status=self.status,
            code=self.code,
            azure_message=self.azure_message,
            operation=self.operation,
        )


def lock_days(message: str | None) -> int | None:
    """The lock length Azure states in a C4 refusal ("Capacity is locked for 30 days. ...")."""
    m = re.search(r"locked for (\d+) days", message or "", re.I)
    return int(m.group(1)) if m else None


def window_days(message: str | None) -> int | None:
    """The window a W3 refusal states, in the documented limit's words ("... allowed in 30 day period")."""
    m = re.search(r"in (\d+)[ -]day period", message or "", re.I)
    return int(m.group(1)) if m else None


class NotFound(AzureError):
    """404: the resource does not exist (or is soft-deleted, rule C11)."""


class Forbidden(AzureError):
    """401/403: our identity may not do this (RBAC or a Key Vault access policy)."""


class OutcomeUnknown(AzureError):
    """The request went out but no response came back: re-observe before doing anything else."""


class Terminal(AzureError):
    """Not retryable and not a known rule: surface to the user as is."""


class UntrustedEndpoint(Terminal):
    """A URL from the journal or from Azure names a host the selected cloud does not own.

    Never contacted: a bearer token goes only to the cloud's Resource Manager host and to its Key Vault /
    Managed HSM hosts."""


class StillRunning(AzureError):
    """We stopped waiting for an operation Azure is still running (CMKCTL_OPERATION_TIMEOUT).

    Not a failure of the operation: its journal entry stays "sent" so the next run resumes it from its
    token and never sends it again (rules C6, W3)."""


class Kind(StrEnum):
    """What a refusal means for the caller."""

    BUSY = "busy"  # another operation runs on the target: wait and re-observe (retryable)
    RULE = "rule"  # a docs/rules.md rule: permanent until the request or the calendar changes


@dataclass(frozen=True)
class Refusal:
    """One row of the refusal table: Azure's words for one rule, and the statuses it comes with.

    `statuses` is where the message is documented; an operation that ends `Failed` carries the same
    words in its final status body (HTTP 200), so a pattern that matches there counts as well."""

    rule: Rule
    kind: Kind
    statuses: frozenset[int]
    pattern: re.Pattern[str]
    source: str  # where the wording comes from (docs/azure-wire.md lists them)


def _row(rule: Rule, kind: Kind, statuses: tuple[int, ...], pattern: str, source: str) -> Refusal:
    return Refusal(rule, kind, frozenset(statuses), re.compile(pattern, re.I | re.S), source)


# Azure's refusals, classified by status and message text. Today's codes are generic (BadRequest,
# InvalidInput, InvalidParameter, Conflict, ...): the rule is in the message. Texts are Azure's own
# where they are published (docs/azure-wire.md, error catalogue); where Azure publishes no text (C2,
# W1, W2, W3, C8, C10) the pattern keys on the words the documented limit itself uses. Checked in
# order: busy rows first, then the specific rules before the broad ones.
REFUSALS: tuple[Refusal, ...] = (
    # -- busy: wait for the running operation, then re-observe (rules W5, C6)
    _row(Rule.W5, Kind.BUSY, (409,), r"link or unlink operation in process",
         'doc, link/unlink 409: "Workspace link or unlink operation in process."'),
    _row(Rule.C6, Kind.BUSY, (409,), r"can'?t delete a cluster while in provisioning state",
         "doc, cluster delete 409: \"Can't delete a cluster while in provisioning state. ...\""),
    _row(Rule.C6, Kind.BUSY, (400,), r"cluster is in deleting state",
         'doc, cluster update 400: "Cluster is in deleting state. ..."'),
    _row(Rule.C6, Kind.BUSY, (400,),
         r"operation can(no|'?)t be executed now|wait for the async operation to complete"
         r"|async operation is in a state other than succeeded",
         "doc, cluster create/update 400: \"Operation can't be executed now. ...\""),
    _row(Rule.C6, Kind.BUSY, (400, 409),
         r"another operation (on this or dependent resource )?is (in progress|currently in progress)",
         'ARM 409 AnotherOperationInProgress: "Another operation on this or dependent resource is in '
         'progress."'),
    # -- rules: permanent refusals
    _row(Rule.C4, Kind.RULE, (400,), r"capacity is locked for \d+ days",
         'doc, 400: "Capacity is locked for 30 days. Decreasing capacity is permitted 30 days after '
         'update."'),
    _row(Rule.C1, Kind.RULE, (400,), r"cluster name (is not|isn'?t) valid",
         "doc, cluster create 400: \"Cluster name isn't valid. ...\""),
    _row(Rule.C3, Kind.RULE, (400,),
         r"capacityreservationlevel must be|sku name is invalid|sku (is not|isn'?t) capacityreservation"
         r"|missing capacity in sku|capacity in sku is not in range|no sku was set",
         'real 400 InvalidInput "CapacityReservationLevel must be an allowed value: [...]" (target '
         'sku.capacity); real 400 BadRequest "CapacityReservationLevel must be in the range of ..."; '
         "doc, the four SKU texts of cluster create"),
    _row(Rule.C5, Kind.RULE, (400,),
         r"identity is null or empty|keyvaultproperties are set on creation",
         'doc, cluster create 400: "Identity is null or empty. ..." / "KeyVaultProperties are set on '
         'creation. ..."'),
    _row(Rule.C7, Kind.RULE, (400,),
         r"keyvaultproperties (is not|isn'?t) empty but has a bad format"
         r"|failed to validate key in key vault|key (is not|isn'?t) recoverable",
         'doc, cluster update 400: "KeyVaultProperties isn\'t empty but has a bad format." / "Failed to '
         'validate key in Key Vault. ..." / "Key isn\'t recoverable. ..."'),
    _row(Rule.C9, Kind.RULE, (400,),
         r"support double encryption|isdoubleencryptionenabled"
         r"|support availability zones|isavailabilityzonesenabled",
         "doc, cluster create 400: \"<region> doesn't support Double Encryption for clusters.\"; "
         "doc: double encryption and availability zones are fixed at creation, zones only in some "
         "regions (the refusal names the property)"),
    _row(Rule.C10, Kind.RULE, (400, 409),
         r"\bmov(e|ed|ing)\b.{0,200}(resource group|subscription)",
         "doc: \"Moving a cluster to another resource group or subscription isn't currently supported.\""),
    _row(Rule.C11, Kind.RULE, (409,),
         r"soft-?delete|deletion process|deleted in the (past|last)|name (is|remains) reserved",
         "doc: a create with the name of a cluster deleted in the past 14 days gets a conflict (409); "
         "the name stays reserved"),
    _row(Rule.W3, Kind.RULE, (400, 409),
         r"link (or unlink )?operations?\b.{0,200}(\b30\b|limit|maximum|exceed|allowed)"
         r"|(limit|maximum|exceed)\w*\b.{0,200}link (or unlink )?operations?",
         'doc limit: "A maximum of two workspace link operations on particular workspace is allowed in '
         '30 day period." (no published refusal text)'),
    _row(Rule.W2, Kind.RULE, (400, 409), r"already linked",
         "doc: linking a workspace that's already linked to another cluster fails (no published text)"),
    _row(Rule.W1, Kind.RULE, (400, 409),
         r"(workspaces?\b.{0,200}(limit|maximum|exceed)|(limit|maximum|exceed)\w*\b.{0,200}workspaces)"
         r".{0,200}cluster|1,?000 (log analytics )?workspaces",
         'doc limit: "A maximum of 1,000 Log Analytics workspaces can be linked to a cluster." (no '
         "published refusal text)"),
    _row(Rule.C2, Kind.RULE, (400, 409),
         r"clusters?\b.{0,200}(limit|maximum|exceed|quota)|(limit|maximum|exceed|quota)\w*\b.{0,200}clusters",
         'doc limit: "A maximum of five active clusters can be created in each region and subscription." '
         "(no published refusal text)"),
    _row(Rule.B1, Kind.RULE, (400,),
         r"storage account.{0,200}(same region|only one|one storage account)"
         r"|(only one|one) storage account",
         "doc: one storage account per data source type, in the workspace's region (no published text)"),
    _row(Rule.C8, Kind.RULE, (400,), r"same region|same (azure ad |entra )?tenant",
         'doc: "Your Azure Key Vault, cluster and workspaces must be in the same region and in the same '
         'tenant" (no published refusal text)'),
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


def classify(status: int | None, message: str | None) -> Refusal | None:
    """The row of REFUSALS a refusal matches, by HTTP status and Azure's message (never by code).

    A status below 400 (or none) is an operation that ended `Failed`: its final status body carries
    the same words as the synchronous refusal would, so every row may match it."""
    text = message or ""
    failed_operation = status is None or status < 400
    for row in REFUSALS:
        if (failed_operation or status in row.statuses) and row.pattern.search(text):
            return row
    return None


def rule_for(status: int | None, message: str | None) -> Rule | None:
    """The docs/rules.md rule a service refusal is about, if we recognise it."""
    row = classify(status, message)
    return row.rule if row else None


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
        failed_operation = status is not None and status < 400  # raised by the poller: ended Failed
        if failed_operation:
            said = f"{where}Azure's operation failed" + (f": {code}" if code else "")
        else:
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
        row = classify(status, message)
        if row is not None and row.kind is Kind.BUSY:
            return Busy(f"{said} (rule {row.rule.value})", rule_id=row.rule, **kw)
        if row is not None:
            return RuleViolation(f"{said} (rule {row.rule.value})", rule_id=row.rule, **kw)
        # Anything else (400 invalid input we do not recognise, an operation that failed for a
        # reason Azure did not explain) is permanent: Terminal, never retried.
        return Terminal(said, **kw)
    return Terminal(f"{where}unexpected error from the Azure SDK: {type(exc).__name__}: {_short(exc)}",
                    operation=operation)


def _short(exc: BaseException) -> str:
    """First line only: SDK messages can carry whole responses; tokens never appear in them."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__

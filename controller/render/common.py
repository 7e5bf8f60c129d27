"""What the text and markdown renderers share: symbols, the summary sentence, date format."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.planning.plan import (
    Action,
    ByosLinkParams,
    ByosUnlinkParams,
    Change,
    CreateParams,
    KeyParams,
    LinkParams,
    Plan,
    SetKeyParams,
    Tally,
    UnlinkParams,
    UpdateParams,
)


def glyph(action: Action) -> str:
    """+ ~ - as the action's traits say."""
    return action.traits.glyph


def when(value: datetime | None) -> str:
    """ISO-8601 UTC, minutes precision, or a plain phrase when the wait has no date."""
    if value is None:
        return "after the steps it waits on"
    return value.strftime("%Y-%m-%dT%H:%MZ")


def summary_line(plan: Plan) -> str:
    """'Plan: N to add, N to change, N to destroy, N links, N deferred, N blocked.'

    Each action counts in the column its traits name (`Action.traits.tally`): add = creates and BYOS
    links; change = updates and key updates; destroy = deletes and BYOS unlinks; links = workspace
    links and unlinks.
    """
    s = plan.summary
    return (
        f"Plan: {s.tally(Tally.ADD)} to add, {s.tally(Tally.CHANGE)} to change, "
        f"{s.tally(Tally.DESTROY)} to destroy, {s.tally(Tally.LINKS)} links, "
        f"{s.deferred} deferred, {s.blocked} blocked."
    )


def short(value: Any) -> str:
    """ARM ids shortened to their name (the full id is in the JSON artefact); dicts compacted."""
    if isinstance(value, str) and value.lower().startswith("/subscriptions/"):
        return value.rstrip("/").rsplit("/", 1)[-1]
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {short(v)}" for k, v in value.items() if v not in (None, {}, "")) + "}"
    return str(value)


def key_text(key: KeyParams | dict[str, Any] | None) -> str:
    if isinstance(key, dict):
        key = KeyParams.model_validate(key)
    if key is None:
        return "none (Microsoft-managed keys)"
    host = key.vault_uri.replace("https://", "").rstrip("/")
    return f"{host}/keys/{key.name}/{key.version or '(versionless)'}"


def detail(change: Change) -> str:
    """One line saying what the step does, from its parameters (the executor's contract)."""
    p = change.parameters
    before = change.before or {}
    if isinstance(p, CreateParams):
        return (f"{p.location}, {p.capacity} GB/day, billing {p.billing_type}, identity "
                f"{p.identity.type}, key {key_text(p.key)}")
    if isinstance(p, SetKeyParams):
        if "key" in before:
            return f"key {key_text(before.get('key'))} -> {key_text(p.key)}"
        return f"key -> {key_text(p.key)}"
    if isinstance(p, UpdateParams):
        fields = p.model_dump(include={"capacity", "billing_type", "tags", "identity"}, exclude_none=True)
        return ", ".join(f"{k}: {short(before.get(k))} -> {short(v)}" for k, v in fields.items())
    if isinstance(p, LinkParams):
        return f"link to cluster {short(p.cluster_id)}"
    if isinstance(p, UnlinkParams):
        return f"unlink from cluster {short(p.cluster_id)}"
    if isinstance(p, ByosLinkParams):
        return f"{p.data_source_type} storage -> {short(p.storage_account_id)}"
    if isinstance(p, ByosUnlinkParams):
        return f"remove {p.data_source_type} storage"
    return ""


def deps_text(depends_on: tuple[str, ...]) -> str:
    return ", ".join(depends_on)

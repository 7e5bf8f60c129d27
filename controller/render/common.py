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


def left_out_line(plan: Plan, *, limit: int = 10) -> str | None:
    """'N changes left out by --target: update cluster.b, link workspace.c, ...' (None: not targeted).

    Terraform's -target warning, with what was left out named: a targeted plan never hides work."""
    t = plan.targeting
    if t is None:
        return None
    head = f"Targeted (--target): {', '.join(t.addresses)} and what they depend on. "
    if not t.left_out:
        return head + "0 changes left out by --target."
    named = [f"{x.action.value} {x.address}" + ("" if x.status == "change" else f" ({x.status})")
             for x in t.left_out[:limit]]
    more = f" and {len(t.left_out) - limit} more" if len(t.left_out) > limit else ""
    return head + f"{len(t.left_out)} changes left out by --target: {', '.join(named)}{more}."

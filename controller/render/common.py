"""What the text and markdown renderers share: symbols, the summary sentence, date format."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.planning.plan import Action, Change, Plan

SYMBOL = {
    Action.CREATE: "+", Action.UPDATE: "~", Action.SET_KEY: "~", Action.DELETE: "-",
    Action.LINK: "+", Action.UNLINK: "-", Action.BYOS_LINK: "+", Action.BYOS_UNLINK: "-",
}


def when(value: datetime | None) -> str:
    """ISO-8601 UTC, minutes precision, or a plain phrase when the wait has no date."""
    if value is None:
        return "after the steps it waits on"
    return value.strftime("%Y-%m-%dT%H:%MZ")


def summary_line(plan: Plan) -> str:
    """'Plan: N to add, N to change, N to destroy, N links, N deferred, N blocked.'

    add = creates and BYOS links; change = updates and key updates; destroy = deletes and BYOS
    unlinks; links = workspace links and unlinks.
    """
    s = plan.summary
    return (
        f"Plan: {s.create + s.byos_link} to add, {s.update + s.set_key} to change, "
        f"{s.delete + s.byos_unlink} to destroy, {s.link + s.unlink} links, "
        f"{s.deferred} deferred, {s.blocked} blocked."
    )


def short(value: Any) -> str:
    """ARM ids shortened to their name (the full id is in the JSON artefact); dicts compacted."""
    if isinstance(value, str) and value.lower().startswith("/subscriptions/"):
        return value.rstrip("/").rsplit("/", 1)[-1]
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {short(v)}" for k, v in value.items() if v not in (None, {}, "")) + "}"
    return str(value)


def key_text(key: Any) -> str:
    if not isinstance(key, dict):
        return "none (Microsoft-managed keys)"
    host = str(key.get("vault_uri", "")).replace("https://", "").rstrip("/")
    version = key.get("version") or "(versionless)"
    return f"{host}/keys/{key.get('name')}/{version}"


def detail(change: Change) -> str:
    """One line saying what the step does, from its parameters (the executor's contract)."""
    p = change.parameters
    before = change.before or {}
    if change.action == Action.CREATE:
        ident = p.get("identity") or {}
        return (f"{p.get('location')}, {p.get('capacity')} GB/day, billing {p.get('billing_type')}, identity "
                f"{ident.get('type')}, key {key_text(p.get('key'))}")
    if change.action == Action.SET_KEY:
        if "key" in before:
            return f"key {key_text(before.get('key'))} -> {key_text(p.get('key'))}"
        return f"key -> {key_text(p.get('key'))}"
    if change.action == Action.UPDATE:
        fields = [k for k in p if k not in ("subscription", "resource_group", "name")]
        return ", ".join(f"{k}: {short(before.get(k))} -> {short(p[k])}" for k in fields)
    if change.action == Action.LINK:
        return f"link to cluster {short(p.get('cluster_id'))}"
    if change.action == Action.UNLINK:
        return f"unlink from cluster {short(p.get('cluster_id'))}"
    if change.action == Action.BYOS_LINK:
        return f"{p.get('data_source_type')} storage -> {short(p.get('storage_account_id'))}"
    if change.action == Action.BYOS_UNLINK:
        return f"remove {p.get('data_source_type')} storage"
    return ""


def deps_text(depends_on: tuple[str, ...]) -> str:
    return ", ".join(depends_on)

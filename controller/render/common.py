"""What the text and markdown renderers share: symbols, the summary sentence, date format."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from controller.model import compare
from controller.model.spec import Byos, ClusterSpec, Identity, Key
from controller.planning.plan import (
    Action,
    Blocked,
    ByosLinkParams,
    ByosUnlinkParams,
    Change,
    CreateParams,
    Deferred,
    Drift,
    IdentityParams,
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
    """'Plan: N clusters to add, N to change, N to destroy; N workspace links to add, N to remove;
    N storage links to add, N to remove; N deferred, N blocked.'

    Every listed change counts once, in the column its action's traits name (`Action.traits.tally`),
    so the numbers add up to the numbered list; the deferred and blocked counts are the lengths of
    those sections. The link parts and the deferred/blocked part are left out when all their counts
    are zero; a plan with nothing to do says so instead.
    """
    s = plan.summary
    if not plan.changes and not plan.deferred and not plan.blocked:
        return "Plan: no changes."
    parts = [
        f"{_count(s.tally(Tally.CLUSTER_ADD), 'cluster')} to add, {s.tally(Tally.CLUSTER_CHANGE)} to change, "
        f"{s.tally(Tally.CLUSTER_DESTROY)} to destroy"
    ]
    for noun, add, remove in (("workspace link", Tally.LINK_ADD, Tally.LINK_REMOVE),
                              ("storage link", Tally.STORAGE_ADD, Tally.STORAGE_REMOVE)):
        if s.tally(add) or s.tally(remove):
            parts.append(f"{_count(s.tally(add), noun)} to add, {s.tally(remove)} to remove")
    if s.deferred or s.blocked:
        parts.append(f"{s.deferred} deferred, {s.blocked} blocked")
    return "Plan: " + "; ".join(parts) + "."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def field_name(field: str) -> str:
    """A plan field as the spec's YAML spells it: `double_encryption` -> `doubleEncryption` (the
    aliases of controller.model.spec), each dotted part alike (`key.version_state` -> `key.versionState`)."""
    return ".".join(_camel(part) for part in field.split("."))


def _camel(name: str) -> str:
    alias = _SPEC_ALIASES.get(name)
    if alias:
        return alias
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for model in (ClusterSpec, Identity, Key, Byos):
        for name, info in model.model_fields.items():
            if info.alias:
                out[name] = info.alias
    return out


_SPEC_ALIASES = _aliases()
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/@()+:-]*")


def show(value: Any) -> str:
    """A value as YAML would write it, on one line: null, true/false, numbers, bare strings (quoted
    when YAML would read them as something else), flow mappings and lists with the spec's field
    names. ARM ids are shortened to their name (the full id is in the JSON artefact)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _scalar(value)
    if isinstance(value, dict):
        if {"vault_uri", "name"} <= set(value):
            return key_text(value)
        items = [f"{_scalar(field_name(str(k)))}: {show(v)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple | set):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return _scalar(str(value))


def _scalar(text: str) -> str:
    if text.lower().startswith("/subscriptions/"):
        return text.rstrip("/").rsplit("/", 1)[-1]
    if (_PLAIN.fullmatch(text) and not _yaml_reads_otherwise(text) and text == text.strip()
            and ": " not in text and not text.endswith(":")):
        return text
    return json.dumps(text, ensure_ascii=False)


def _yaml_reads_otherwise(text: str) -> bool:
    """True for strings YAML would read as a number, a boolean or null ('4711', 'yes', 'null')."""
    lowered = text.lower()
    if lowered in {"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"}:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def key_text(key: KeyParams | dict[str, Any] | None) -> str:
    if isinstance(key, dict):
        key = KeyParams.model_validate({k: key.get(k) for k in ("vault_uri", "name", "version")})
    if key is None:
        return "none (Microsoft-managed keys)"
    host = key.vault_uri.replace("https://", "").rstrip("/")
    return f"{host}/keys/{key.name}/{key.version or '(versionless)'}"


def identity_text(identity: IdentityParams | dict[str, Any] | None) -> str:
    if isinstance(identity, dict):
        identity = IdentityParams.model_validate(identity)
    if identity is None:
        return "null"
    uai = identity.user_assigned_identity
    return identity.type + (f" ({show(uai)})" if uai else "")


def _pairs(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{field_name(k)}: {v}" for k, v in pairs)


def detail(change: Change) -> str:
    """One line saying what the step does, from its parameters (the executor's contract), with the
    spec's field names and YAML values."""
    p = change.parameters
    before = change.before or {}
    if isinstance(p, CreateParams):
        pairs = [("location", p.location), ("capacity", f"{p.capacity} GB/day"),
                 ("billing_type", show(p.billing_type)), ("identity", identity_text(p.identity)),
                 ("double_encryption", show(p.double_encryption))]
        if p.availability_zones is not None:
            pairs.append(("availability_zones", show(p.availability_zones)))
        pairs.append(("key", key_text(p.key)))
        return _pairs(pairs)
    if isinstance(p, SetKeyParams):
        if "key" in before:
            return f"key: {key_text(before.get('key'))} -> {key_text(p.key)}"
        return f"key: {key_text(p.key)}"
    if isinstance(p, UpdateParams):
        fields = p.model_dump(include={"capacity", "billing_type", "tags", "identity"}, exclude_none=True)
        return _pairs([(k, f"{_value(k, before.get(k))} -> {_value(k, v)}") for k, v in fields.items()])
    if isinstance(p, LinkParams):
        return f"link to cluster {show(p.cluster_id)}"
    if isinstance(p, UnlinkParams):
        return f"unlink from cluster {show(p.cluster_id)}"
    if isinstance(p, ByosLinkParams):
        return f"{p.data_source_type} storage -> {show(p.storage_account_id)}"
    if isinstance(p, ByosUnlinkParams):
        return f"remove {p.data_source_type} storage"
    return ""


def left_out_line(plan: Plan, *, limit: int = 10) -> str | None:
    """'N changes left out by --target: update cluster.b, link workspace.c, ...' (None: not targeted).

    Terraform's -target warning, with what was left out named: a targeted plan never hides work."""
    t = plan.targeting
    if t is None:
        return None
    head = (f"Targeted (--target): {', '.join(t.addresses)} and what "
            f"{'it depends' if len(t.addresses) == 1 else 'they depend'} on. ")
    if not t.left_out:
        return head + "0 changes left out by --target."
    named = [f"{x.action.value} {x.address}" + ("" if x.status == "change" else f" ({x.status})")
             for x in t.left_out[:limit]]
    more = f" and {len(t.left_out) - limit} more" if len(t.left_out) > limit else ""
    changes = "change" if len(t.left_out) == 1 else "changes"
    return head + f"{len(t.left_out)} {changes} left out by --target: {', '.join(named)}{more}."


def _value(field: str, value: Any) -> str:
    if field == "tags" and isinstance(value, dict):
        # cmkctl's ownership tag is sent with the others but is not the spec's to declare
        value = {k: v for k, v in value.items() if k != compare.OWNER_TAG}
    if field == "identity" and isinstance(value, dict) and "type" in value:
        return identity_text(value)
    if field == "key" and (value is None or isinstance(value, dict)):
        return key_text(value)
    return show(value)


def drift_value(field: str, value: Any) -> str:
    """A drift entry's live or desired value (keys and identities in their one-line form)."""
    return _value(field, value)


def numbered(plan: Plan) -> dict[str, str]:
    """Step id -> how the text names it ('#2 create cluster.prod-weu'): ids stay in the JSON artefact."""
    names = {c.id: f"#{n} {c.action.value} {c.address}" for n, c in enumerate(plan.changes, 1)}
    waiting: list[Deferred | Blocked] = [*plan.deferred, *plan.blocked]
    for item in waiting:
        names.setdefault(item.id, f"{item.action.value} {item.address} ({_section(item)})")
    return names


def _section(item: Deferred | Blocked) -> str:
    return "deferred" if isinstance(item, Deferred) else "blocked"


def after_text(depends_on: tuple[str, ...], names: dict[str, str], *, brief: bool = False) -> str:
    """The steps a step waits on, by their number in the list ('#2 create cluster.prod-weu'; with
    `brief`, '#2' alone where it has one)."""
    shown = [names.get(d, d) for d in depends_on]
    return ", ".join(n.split(" ", 1)[0] if brief and n.startswith("#") else n for n in shown)


def shown_drift(plan: Plan) -> list[Drift]:
    """The drift entries worth a reader's time: a field missing live (a workspace not linked yet, a
    storage link not made yet) on a resource the plan acts on is what that step does, not drift."""
    acted_on = {c.address for c in plan.changes} | {d.address for d in plan.deferred} | {
        b.address for b in plan.blocked}
    return [d for d in plan.drift if not (d.live is None and d.address in acted_on)]

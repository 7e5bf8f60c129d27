"""The one way to compare a declared value with a live one, shared by the planner and the executor.

The planner decides a change is needed with these functions; the executor's precheck ("already
done?") and verify ("did it take?") ask the same questions of the same observed model. Two
comparisons that disagree make a change that is planned forever and never sent, or sent and then
called inconsistent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.model import ids
from controller.model.ids import KeyRef

# provisioning states after which no operation runs on the resource any more
_SETTLED = frozenset({"succeeded", "failed", "canceled"})


def busy(provisioning_state: str | None) -> bool:
    """Rules C6/W5: an asynchronous operation runs on the resource (Creating, Updating, Deleting,
    ProvisioningAccount, ...). No state at all (a link that was never read) is not busy."""
    state = (provisioning_state or "").strip().lower()
    return bool(state) and state not in _SETTLED


def key_form(ref: KeyRef | None) -> tuple[str, str, str] | None:
    """A key as (vault URI, name, version): vault URIs through `ids.normalise_vault_uri`, names and
    versions case-insensitive, versionless as "". No key, or the empty strings of a removed key
    (rule C13), is None."""
    if ref is None or (not ref.vault_uri.strip() and not ref.name.strip()):
        return None
    uri = ids.normalise_vault_uri(ref.vault_uri) if ref.vault_uri.strip() else ""
    return (uri, ref.name.lower(), (ref.version or "").lower())


def same_key(want: KeyRef | None, live: KeyRef | None) -> bool:
    """True when the live key is the declared one (vault, name and version; None == None)."""
    return key_form(want) == key_form(live)


# Azure tag names may not contain "/" (nor < > % & \\ ?), so not the Kubernetes-style "cmkctl.io/scope"
OWNER_TAG = "cmkctl-scope"


def same_tags(want: Mapping[str, str], live: Mapping[str, str]) -> bool:
    """Tags in the spec are the complete set; names compare case-insensitively (ARM), values exactly.

    The ownership tag cmkctl puts on the clusters it creates is not the spec's: it never counts."""
    def user(tags: Mapping[str, str]) -> dict[str, str]:
        return {k.lower(): v for k, v in tags.items() if k.lower() != OWNER_TAG}

    return user(want) == user(live)


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a user manages: all but cmkctl's ownership tag (what drift reports show)."""
    return {k: v for k, v in tags.items() if k.lower() != OWNER_TAG}


def owner_scope(tags: Mapping[str, str]) -> str | None:
    """The scope id of the cmkctl that created the resource, from its ownership tag (None: not ours)."""
    return next((v for k, v in tags.items() if k.lower() == OWNER_TAG), None)


def same_identity(
    want_type: str, want_user_assigned: str | None, live_type: str, live_user_assigned: Iterable[str]
) -> bool:
    """The type (case-insensitive) and the exact set of user-assigned identities (ARM ids)."""
    wanted = {ids.id_key(want_user_assigned)} if want_user_assigned else set()
    return want_type.lower() == live_type.lower() and wanted == {ids.id_key(u) for u in live_user_assigned}


def same_id(want: str | None, live: str | None) -> bool:
    """Two ARM ids (or two absences) naming the same resource."""
    return ids.id_key(want or "") == ids.id_key(live or "")

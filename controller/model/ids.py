"""ARM resource ids and Key Vault key references as value objects.

ARM is case-insensitive on path segments and names, and real responses mix casings (workspace ids
come back with `resourcegroups`/`microsoft.operationalinsights` lower-cased). Every comparison in the
product goes through `key()` so that casing never creates a phantom diff.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from controller.model import clouds

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ARM = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/(?P<ns>[^/]+)/(?P<rest>.+)$",
    re.IGNORECASE,
)
# An id of one type and name in plain characters (no URL syntax, no controls, a GUID subscription):
# what Azure's lists and most specs hold, parsed in one match; anything else takes `_ARM` and the checks.
_SIMPLE_ID = re.compile(
    r"/subscriptions/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"/resourcegroups/([A-Za-z0-9_.()-]+)/providers/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.()-]+)",
    re.IGNORECASE,
)
# rule C1: the REST spec's pattern, 4-63 characters; letters, digits and hyphens, not at either end
CLUSTER_NAME = re.compile(r"^(?=.{4,63}$)[A-Za-z0-9][A-Za-z0-9-]+[A-Za-z0-9]$")
CLUSTER_NAME_RULE = "4-63 characters: letters, digits and hyphens, starting and ending with a letter or digit"

# Azure's own name patterns and lengths (the ARM REST specs' name parameters and Azure's naming-rules
# table): a name outside them is refused by Azure at the first write, so the spec loader refuses it first
RESOURCE_GROUP = re.compile(r"^[A-Za-z0-9_.()-]{0,89}[A-Za-z0-9_()-]$")
RESOURCE_GROUP_RULE = "1-90 characters: letters, digits and -_.() not ending in '.'"
# Microsoft.OperationalInsights workspaces: the REST spec's WorkspaceNameParameter (minLength 4,
# maxLength 63, the same pattern as clusters)
WORKSPACE_NAME = CLUSTER_NAME
_NAME_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "microsoft.operationalinsights/workspaces": (
        WORKSPACE_NAME,
        f"workspace names are {CLUSTER_NAME_RULE}",
    ),
    "microsoft.operationalinsights/clusters": (CLUSTER_NAME, f"cluster names are {CLUSTER_NAME_RULE}"),
    "microsoft.storage/storageaccounts": (
        re.compile(r"^[a-z0-9]{3,24}$"),
        "storage account names are 3-24 lowercase letters and digits",
    ),
    "microsoft.managedidentity/userassignedidentities": (
        re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$"),
        "identity names are 3-128 letters, digits, hyphens and underscores, "
        "starting with a letter or digit",
    ),
}
_FORBIDDEN_IN_SEGMENT = set("?#%\\&")


class InvalidId(ValueError):
    """A resource id or key URI that does not have the expected shape."""


def unsafe_character(value: str, *, ascii_only: bool = True) -> str | None:
    """Why `value` must not reach a plan or a PR comment, or None.

    Control and format characters (bidi overrides, zero-width joiners) make text read differently from
    what it is; a non-ASCII letter can be a lookalike of an ASCII one (Cyrillic 'а' for 'a'). Azure's
    names and ids here are ASCII, so `ascii_only` refuses any other character.
    """
    if value.isascii() and value.isprintable():
        # printable ASCII has no control character and no separator but the space: the per-character
        # walk below (~10 µs per id, 40,000 workspace ids per fleet) would find nothing
        return None
    for ch in value:
        category = unicodedata.category(ch)
        if category[0] in "CZ" and ch != " ":
            return f"the invisible or control character U+{ord(ch):04X}"
        if ascii_only and not ch.isascii():
            label = unicodedata.name(ch, "unnamed")
            return f"the non-ASCII character U+{ord(ch):04X} {label}, which may look like an ASCII one"
    return None


def escaped(value: str) -> str:
    """`value` safe to print: every non-ASCII or control character as a \\u escape."""
    return "".join(ch if " " <= ch <= "~" else f"\\u{ord(ch):04x}" for ch in value)


def check_resource_group(value: str) -> str:
    """A resource group name as Azure accepts it; InvalidId naming the rule otherwise."""
    bad = unsafe_character(value)
    if bad:
        raise InvalidId(f"resource group '{escaped(value)}' contains {bad}")
    if not RESOURCE_GROUP.match(value):
        raise InvalidId(f"resource group '{value}' is not a valid name ({RESOURCE_GROUP_RULE})")
    return value


_UNROUTABLE = re.compile(r"[?#%\\&]")


def _check_segments(value: str, segments: list[str]) -> None:
    """Every path segment of an id is a name ARM can route: not `.`/`..`, no URL syntax, no controls.

    `.` and `..` are resolved away by HTTP clients, so a segment would silently disappear from the
    request path.
    """
    joined = "/".join(segments)
    if (
        joined.isascii()
        and joined.isprintable()
        and not _UNROUTABLE.search(joined)
        and not any(seg in ("", ".", "..") for seg in segments)
    ):
        return  # the usual id, checked in one pass; the walk below names what is wrong
    for seg in segments:
        bad = unsafe_character(seg, ascii_only=False)
        if seg in ("", ".", "..") or bad or _FORBIDDEN_IN_SEGMENT & set(seg):
            why = bad or "an empty, '.' or '..' segment, or one of ?#%\\&"
            raise InvalidId(f"'{escaped(value)}' is not an ARM resource id: it contains {why}")


def _check_names(value: str, rid: ResourceId) -> None:
    """The spec's ids: ASCII only and Azure's name pattern for the resource group and the name."""
    bad = unsafe_character(value)
    if bad:
        raise InvalidId(f"'{escaped(value)}' contains {bad}")
    if not RESOURCE_GROUP.match(rid.resource_group):
        group = rid.resource_group
        raise InvalidId(f"'{value}': resource group '{group}' is not valid ({RESOURCE_GROUP_RULE})")
    rule = _NAME_RULES.get(rid.type.lower())
    if rule is not None and not rule[0].match(rid.name):
        raise InvalidId(f"'{value}': name '{rid.name}' is not valid ({rule[1]})")


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


@dataclass(frozen=True, slots=True)
class ResourceId:
    """A parsed ARM id: /subscriptions/S/resourceGroups/RG/providers/NS/type/name[/type/name...]."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def type(self) -> str:
        return f"{self.namespace}/{'/'.join(self.types)}"

    def __str__(self) -> str:
        tail = "/".join(f"{t}/{n}" for t, n in zip(self.types, self.names, strict=True))
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}/{tail}"
        )

    def key(self) -> str:
        """Case-insensitive identity of the resource."""
        return str(self).lower()

    @classmethod
    def parse(cls, value: str, *, expected_type: str | None = None) -> ResourceId:
        """Parse (and check the type of) an ARM id; InvalidId if it has another shape.

        Memoised: a 40,000-workspace fleet parses each id ~10 times (spec validation, observe, plan),
        which was ~5 s of one plan. ResourceId is immutable, so sharing instances is safe; a failed
        parse raises every time (exceptions are not cached).
        """
        if cls is not ResourceId:
            return cls._parse(value, expected_type)
        return _parse_cached(value, expected_type)

    @classmethod
    def _parse(cls, value: str, expected_type: str | None) -> ResourceId:
        groups = _simple_groups(value)
        if groups is not None:  # the usual id: nothing for the checks of `_split` to find
            sub, group, namespace, kind, name = groups
            types: tuple[str, ...] = (sys.intern(kind),)
            names: tuple[str, ...] = (name,)
        else:
            sub, group, namespace, types, names = _split(value)
        # Shared parts interned: memoised ids of a large fleet repeat a few subscriptions, resource
        # groups and types; only the names are unique.
        rid = cls(
            subscription=sys.intern(sub.lower()),
            resource_group=sys.intern(group),
            namespace=sys.intern(namespace),
            types=_TYPES.setdefault(types, types),
            names=names,
        )
        if expected_type is not None and rid.type.lower() != expected_type.lower():
            raise InvalidId(f"'{value}' is a {rid.type}, expected a {expected_type}")
        if expected_type is not None:  # an id the user wrote (the spec): Azure's own name rules
            _check_names(value, rid)
        return rid


def _simple_groups(value: str) -> tuple[str, ...] | None:
    """(subscription, group, namespace, type, name) of an id of one type and name in plain characters
    (no `.` or `..` segment), whole in one match; None for any other id."""
    m = _SIMPLE_ID.fullmatch(value)
    groups = m.groups() if m is not None else None
    return groups if groups is not None and "." not in groups and ".." not in groups else None


def simple_parts(value: str) -> tuple[str, str, str] | None:
    """(subscription lower-cased, resource group, name) of an id `ResourceId.parse` takes in one match,
    else None: for the 40,000 ids of a large fleet's lists, without building (and memoising) a
    ResourceId each."""
    groups = _simple_groups(value)
    if groups is None:
        return None
    return sys.intern(groups[0].lower()), sys.intern(groups[1]), groups[4]


def _split(value: str) -> tuple[str, str, str, tuple[str, ...], tuple[str, ...]]:
    """Any id's subscription, resource group, namespace, types and names, every check made."""
    m = _ARM.match(value.strip().rstrip("/"))
    if not m:
        raise InvalidId(
            f"'{value}' is not an ARM resource id "
            "(/subscriptions/<guid>/resourceGroups/<rg>/providers/<namespace>/<type>/<name>)"
        )
    parts = m.group("rest").split("/")
    _check_segments(value, [m.group("sub"), m.group("rg"), m.group("ns"), *parts])
    if len(parts) % 2:
        raise InvalidId(f"'{value}' has a resource type without a name")
    if not is_guid(m.group("sub")):
        raise InvalidId(f"'{value}': subscription '{m.group('sub')}' is not a GUID")
    types = tuple(sys.intern(t) for t in parts[0::2])
    return m.group("sub"), m.group("rg"), m.group("ns"), types, tuple(parts[1::2])


_TYPES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _guid_for_id(value: str, expected_type: str) -> str:
    """A GUID where a resource id belongs: say which GUID it probably is and the form to write."""
    form = f"/subscriptions/<sub>/resourceGroups/<rg>/providers/{expected_type}/<name>"
    if expected_type.lower() == WORKSPACE_TYPE.lower():
        return (
            f"'{value}' is a GUID (a workspace's customer id?), not the workspace's resource id: write "
            f"{form} (`az monitor log-analytics workspace show --query id` prints it)"
        )
    if expected_type.lower() == USER_IDENTITY_TYPE.lower():
        return (
            f"'{value}' is a GUID (an identity's client or principal id?), not the identity's resource "
            f"id: write {form} (`az identity show --query id` prints it)"
        )
    return f"'{value}' is a GUID, not a resource id: write {form}"


@functools.lru_cache(maxsize=1 << 18)
def _parse_cached(value: str, expected_type: str | None) -> ResourceId:
    if expected_type is None:
        return ResourceId._parse(value, None)
    # the spec names an id and Azure's lists return it: the shape is checked once for both
    try:
        rid = _parse_cached(value, None)
    except InvalidId:
        if is_guid(value.strip()):  # a GUID where an id of a known type belongs: say which id
            raise InvalidId(_guid_for_id(value, expected_type)) from None
        raise
    if rid.type.lower() != expected_type.lower():
        raise InvalidId(f"'{value}' is a {rid.type}, expected a {expected_type}")
    _check_names(value, rid)
    return rid


def forget_parsed() -> None:
    """Drop the memo of parsed ids: once a plan is made its ~160,000 entries for a 40,000-workspace
    fleet (~60 MB) serve nothing, and an apply needs that memory for its operations in flight."""
    _parse_cached.cache_clear()


WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"
CLUSTER_TYPE = "Microsoft.OperationalInsights/clusters"
STORAGE_TYPE = "Microsoft.Storage/storageAccounts"
USER_IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
VAULT_TYPE = "Microsoft.KeyVault/vaults"


def cluster_id(subscription: str, resource_group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.OperationalInsights/clusters/{name}"
    )


def id_key(value: str) -> str:
    """Normalise any ARM id for comparison (casing and trailing slash).

    Interned: the same key is made from the spec, each list and the history (~5 copies of 40,000
    ~190-byte keys in a 40,000-workspace fleet's plan); one shared copy each is ~30 MB less."""
    return sys.intern(value.strip().rstrip("/").lower())


def normalise_location(value: str) -> str:
    """'West Europe' and 'westeurope' are the same region (real responses use both)."""
    return value.replace(" ", "").lower()


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A Key Vault or Managed HSM key: vault URI, key name, and an optional pinned version.

    `version is None` means versionless: the cluster follows the key's current version (auto-rotation).
    """

    vault_uri: str
    name: str
    version: str | None = None

    @property
    def vault_host(self) -> str:
        return urlsplit(self.vault_uri).hostname or ""

    @property
    def vault_name(self) -> str:
        return self.vault_host.split(".", 1)[0]

    @property
    def is_managed_hsm(self) -> bool:
        return clouds.is_managed_hsm_host(self.vault_host)

    def key(self) -> str:
        return f"{self.vault_host.lower()}/{self.name.lower()}"

    def uri(self) -> str:
        base = f"https://{self.vault_host}/keys/{self.name}"
        return f"{base}/{self.version}" if self.version else base

    def same_as(self, other: KeyRef | None) -> bool:
        if other is None:
            return False
        return self.key() == other.key() and (self.version or "") == (other.version or "")

    def __str__(self) -> str:
        return self.uri()


_VAULT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")


def normalise_vault_uri(value: str) -> str:
    """The one comparable form of a vault URI: `https://host/`, host lower-cased, default port dropped.

    Azure echoes keyVaultUri as sent, and some api-versions answer `https://x.vault.azure.net:443`
    for a key set as `https://x.vault.azure.net/` (docs/azure-wire.md): both name the same vault, so
    every comparison of vault URIs goes through here. Never raises: a value that is not a URL is
    returned stripped and lower-cased, so it simply compares unequal to every real vault.
    """
    text = value.strip()
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:  # a malformed port ("https://x:abc"): not a vault URI
        return text.lower()
    if not host:
        return text.lower()
    scheme = (parts.scheme or "https").lower()
    default = {"https": 443, "http": 80}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}/"


# A key's URI (what the portal's "Key Identifier" shows): https://<vault>/keys/<name>[/<version>]
_KEY_PATH = re.compile(r"/keys/(?P<name>[0-9A-Za-z-]{1,127})(?:/(?P<version>[0-9A-Za-z]{1,64}))?/?")


def parse_vault_uri(value: str, cloud: clouds.Cloud | None = None) -> str:
    """Validate a Key Vault / Managed HSM URI and return it normalised as https://host/.

    `cloud`: the selected cloud, whose vault and HSM suffixes are the only ones accepted (a spec);
    None accepts any known cloud's (what Azure itself returns).
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidId(f"'{value}' is not a vault URI ({exc})") from exc
    host = (parts.hostname or "").lower()
    name, _, suffix = host.partition(".")
    owner = clouds.cloud_of_vault_host(host)
    accepted = cloud.key_vault_suffixes if cloud is not None else tuple(
        s for c in clouds.CLOUDS for s in c.key_vault_suffixes
    )
    if owner is not None and cloud is not None and owner != cloud and parts.scheme == "https":
        raise InvalidId(
            f"'{value}' is a vault in {owner.name}, but the selected cloud is {cloud.name} "
            f"(vaults there end in .{cloud.vault_suffix} or .{cloud.hsm_suffix}); "
            f"select the cloud with --cloud or {clouds.ENV_VAR}"
        )
    key_path = _KEY_PATH.fullmatch(parts.path)
    if key_path and parts.scheme == "https" and suffix in accepted:
        version = key_path.group("version")
        raise InvalidId(
            f"'{value}' is a key URI, not a vault URI: split it into vaultUri: https://{host}/, "
            f"name: {key_path.group('name')}"
            + (f", version: {version}" if version else "")
            + " (leave version out for automatic rotation)"
        )
    if parts.scheme != "https" or not _VAULT_NAME.match(name) or suffix not in accepted or parts.path not in (
        "",
        "/",
    ):
        example = cloud or clouds.DEFAULT
        raise InvalidId(
            f"'{value}' is not a vault URI (https://<name>.{example.vault_suffix}/ or "
            f"https://<name>.{example.hsm_suffix}/)"
        )
    if port not in (None, 443):
        raise InvalidId(f"'{value}': a vault URI has no port other than 443")
    return normalise_vault_uri(value)

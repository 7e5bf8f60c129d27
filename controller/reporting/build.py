"""build_report(desired, observed, history, plan, now) -> Report. Pure: values in, a value out.

The report answers "which data is protected by our key, since when, and what could break it".
It reads the same inputs as the planner, plus the plan itself for the deferred changes'
dates, so the calendar and the plan never disagree about when something becomes possible.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.model import ids
from controller.model.history import History
from controller.model.limits import Limits, for_profile
from controller.model.observed import KeyVersion, ObservedCluster, ObservedKey, ObservedState, ObservedVault
from controller.model.spec import Cluster, DesiredState, WorkspaceEntry
from controller.planning.budget import ops_in_window, with_associate_dates
from controller.planning.plan import Plan
from controller.reporting.model import (
    SEVERITY_RANK,
    CalendarEvent,
    ClusterReport,
    Counts,
    EventKind,
    Finding,
    KeyState,
    Report,
    Severity,
    VaultState,
    WorkspaceReport,
)

# Within one severity, the order the issue lists what could break protection.
_CODE_RANK = {
    "revoked": 0,
    "identity-none": 0,
    "key-expired": 1,
    "revocation-risk": 2,
    "key-expiring": 3,
    "vault-not-recoverable": 4,
    "not-protected": 5,
    "link-budget-exhausted": 6,
}
_UNRECOVERABLE_LEVELS = ("purgeable",)  # recoveryLevel values that allow a purge (rule C7)


def _name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _recoverable(vault: ObservedVault | None, key: ObservedKey | None) -> bool | None:
    """Rule C7: soft delete + purge protection; from the vault, else from the key's recoveryLevel."""
    if vault is not None and vault.readable and vault.soft_delete is not None:
        return bool(vault.soft_delete and vault.purge_protection)
    level = (key.recovery_level or "").lower() if key is not None else ""
    if not level:
        return None
    return "recoverable" in level and not any(x in level for x in _UNRECOVERABLE_LEVELS)


def _key_state(ref: ids.KeyRef, observed: ObservedState) -> tuple[KeyState, KeyVersion | None]:
    ok = observed.keys.get(ref.key())
    base = {"uri": ref.uri(), "vault_uri": ref.vault_uri, "name": ref.name, "pinned": ref.version is not None}
    if ok is None or not ok.readable:
        return KeyState(**base, version_in_force=ref.version, readable=False, read=ok is not None), None
    in_force = ref.version or ok.current_version
    version = ok.version(in_force) if in_force else None
    newer = 0
    if ref.version is not None and version is not None and version.created is not None:
        made = version.created
        newer = sum(1 for v in ok.versions if v.enabled and v.created is not None and v.created > made)
    state = KeyState(
        **base,
        version_in_force=version.version if version else in_force,
        exists=ok.exists and version is not None,
        enabled=version.enabled if version else None,
        expires=version.expires if version else None,
        recovery_level=ok.recovery_level,
        newer_versions=newer,
    )
    return state, version


class _Builder:
    def __init__(
        self, desired: DesiredState, observed: ObservedState, history: History, plan: Plan | None,
        now: datetime, limits: Limits,
    ) -> None:
        self.desired = desired
        self.observed = observed
        self.history = with_associate_dates(history, observed)
        self.plan = plan
        self.now = now
        self.limits = limits
        self.warn_days = desired.settings.key_expiry_warning_days
        self.findings: list[Finding] = []
        self.events: list[CalendarEvent] = []
        self.cluster_protects: dict[str, KeyState] = {}  # cluster id_key -> key in force (not revoked)

    def finding(
        self, severity: Severity, code: str, subject: str, resource_id: str, message: str,
        rule: str | None = None, date: datetime | None = None,
    ) -> None:
        self.findings.append(Finding(severity=severity, code=code, subject=subject, resource_id=resource_id,
                                     message=message, rule=rule, date=date))

    def event(
        self, date: datetime, kind: EventKind, subject: str, resource_id: str, description: str,
        rule: str | None,
    ) -> None:
        if date >= self.now:
            self.events.append(CalendarEvent(date=date, kind=kind, subject=subject, resource_id=resource_id,
                                             description=description, rule=rule))

    # ---- clusters ---------------------------------------------------------------------------

    def clusters(self) -> list[ClusterReport]:
        spec_by_key = {ids.id_key(c.arm_id): c for c in self.desired.clusters}
        out = []
        for key in sorted(set(spec_by_key) | set(self.observed.clusters)):
            oc = self.observed.clusters.get(key)
            if oc is None:
                out.append(self._missing_cluster(spec_by_key[key]))
            else:
                out.append(self._cluster(oc, in_spec=key in spec_by_key))
        return out

    def _missing_cluster(self, spec: Cluster) -> ClusterReport:
        self.finding(Severity.INFO, "cluster-missing", spec.azure_name, spec.arm_id,
                     "declared in the spec but does not exist yet: nothing is encrypted with its key")
        return ClusterReport(id=spec.arm_id, name=spec.azure_name, in_spec=True, exists=False,
                             location=spec.spec.location, capacity=spec.spec.capacity)

    def _cluster(self, oc: ObservedCluster, *, in_spec: bool) -> ClusterReport:
        linked = set(oc.associated_workspaces) | {
            k for k, w in self.observed.workspaces.items()
            if w.cluster_id and ids.id_key(w.cluster_id) == ids.id_key(oc.id)
        }
        decrease_from = None
        if oc.last_sku_update is not None and oc.last_sku_update + self.limits.capacity_lock > self.now:
            decrease_from = oc.last_sku_update + self.limits.capacity_lock
            self.event(decrease_from, EventKind.CAPACITY_LOCK_ENDS, oc.name, oc.id,
                       f"capacity ({oc.capacity} GB/day) may be decreased from this date", "C4")
        if oc.provisioning_state == "Failed":
            self.finding(Severity.WARNING, "cluster-failed", oc.name, oc.id,
                         "the last operation on the cluster failed (provisioning state Failed)", "C6")
        if len(linked) >= self.limits.workspaces_per_cluster * 0.9:
            self.finding(Severity.WARNING, "workspace-limit", oc.name, oc.id,
                         f"{len(linked)} of {self.limits.workspaces_per_cluster} workspaces linked", "W1")
        key_state = vault_state = None
        if oc.identity_type == "None":
            self.finding(Severity.CRITICAL, "identity-none", oc.name, oc.id,
                         "identity is None: the cluster's access to its key is revoked irreversibly", "C12")
        if oc.key is not None:
            key_state, version = _key_state(oc.key, self.observed)
            vault = self.observed.vaults.get(oc.key.vault_host.lower())
            vault_state = VaultState(
                uri=oc.key.vault_uri,
                readable=vault.readable if vault else False,
                soft_delete=vault.soft_delete if vault else None,
                purge_protection=vault.purge_protection if vault else None,
                recoverable=_recoverable(vault, self.observed.keys.get(oc.key.key())),
                access_granted=vault.grants_key_access(oc.principal_id) if vault else None,
            )
            if self._key_findings(oc, key_state, version, vault_state) and oc.identity_type != "None":
                self.cluster_protects[ids.id_key(oc.id)] = key_state
        return ClusterReport(
            id=oc.id, name=oc.name, in_spec=in_spec, exists=True, location=oc.location,
            provisioning_state=oc.provisioning_state, identity_type=oc.identity_type,
            principal_id=oc.principal_id, key=key_state, vault=vault_state, capacity=oc.capacity,
            last_sku_update=oc.last_sku_update, capacity_decrease_from=decrease_from,
            linked_workspaces=len(linked), workspace_limit=self.limits.workspaces_per_cluster,
        )

    def _key_findings(
        self, oc: ObservedCluster, key: KeyState, version: KeyVersion | None, vault: VaultState
    ) -> bool:
        """Findings about the key in force; True when the key protects the cluster's data now."""
        protects = True
        if not key.readable:
            if key.read:  # a cluster outside the spec: its key is not ours to read, not a finding
                self.finding(Severity.WARNING, "key-unreadable", oc.name, oc.id,
                             f"Key Vault refused to show {key.uri}: its state is unknown")
        elif not key.exists:
            what = (f"the key version in force ({key.uri}) does not exist" if key.pinned
                    else f"key {key.uri} has no enabled version")
            self.finding(Severity.CRITICAL, "revoked", oc.name, oc.id, f"{what}: access is revoked", "K1")
            protects = False
        elif key.enabled is False:
            self.finding(Severity.CRITICAL, "revoked", oc.name, oc.id,
                         f"key version {key.version_in_force} is disabled: access is revoked, "
                         "new data is dropped and queries fail", "K2")
            protects = False
        if vault.access_granted is False:
            self.finding(Severity.CRITICAL, "revoked", oc.name, oc.id,
                         "the cluster identity lacks get/wrapKey/unwrapKey on the vault: access is revoked",
                         "K2")
            protects = False
        if key.expires is not None and version is not None:
            left = key.expires - self.now
            if left <= timedelta(0):
                self.finding(Severity.CRITICAL, "key-expired", oc.name, oc.id,
                             f"key version {key.version_in_force} expired on {_day(key.expires)}: "
                             "it can no longer wrap or unwrap", "K2", key.expires)
                protects = False
            else:
                days = round(left.total_seconds() / 86400)
                self.event(key.expires, EventKind.KEY_EXPIRES, oc.name, oc.id,
                           f"key {key.name} version {key.version_in_force} expires", "K1")
                if left <= timedelta(days=self.warn_days):
                    self.finding(Severity.WARNING, "key-expiring", oc.name, oc.id,
                                 f"key version {key.version_in_force} expires on {_day(key.expires)} "
                                 f"(in {days} days): rotate and update the cluster before then",
                                 "K1", key.expires)
        if key.pinned and protects and key.readable:
            newer = f"; {key.newer_versions} newer version(s) exist" if key.newer_versions else ""
            self.finding(Severity.WARNING, "revocation-risk", oc.name, oc.id,
                         f"pinned to version {key.version_in_force}: disabling or deleting it before the "
                         f"cluster is updated revokes access{newer}", "K1")
        if vault.recoverable is False:
            self.finding(Severity.WARNING, "vault-not-recoverable", oc.name, oc.id,
                         f"vault {vault.uri} lacks soft delete or purge protection: a purged key loses the "
                         "data for good, and key updates are refused", "C7")
        return protects

    # ---- workspaces -------------------------------------------------------------------------

    def workspaces(self) -> list[WorkspaceReport]:
        entries = self.desired.workspace_entries()
        expected = {k: ids.id_key(c.arm_id) for k, c in self.desired.desired_links().items()}
        keys = set(entries)
        for oc in self.observed.clusters.values():
            keys |= set(oc.associated_workspaces)
        keys |= {k for k, w in self.observed.workspaces.items() if w.cluster_id}
        return [self._workspace(k, entries.get(k), expected.get(k)) for k in sorted(keys)]

    def _linked_cluster(self, key: str) -> str | None:
        ow = self.observed.workspaces.get(key)
        if ow is not None:
            return ow.cluster_id
        for oc in self.observed.clusters.values():
            if key in oc.associated_workspaces:
                return oc.id
        return None

    def _workspace(self, key: str, entry: WorkspaceEntry | None, expected: str | None) -> WorkspaceReport:
        ow = self.observed.workspaces.get(key)
        ws_id = ow.id if ow is not None else (entry.id if entry is not None else key)
        name = _name(ws_id)
        linked = self._linked_cluster(key)
        since, source = self._linked_since(key, linked)
        protected_by = self.cluster_protects.get(ids.id_key(linked)) if linked else None

        used = sorted(ops_in_window(self.history, key, self.now, self.limits))
        frees = used[0] + self.limits.link_window if used else None
        for at in used:
            self.event(at + self.limits.link_window, EventKind.LINK_BUDGET_FREES, name, ws_id,
                       f"a link/unlink operation of {_day(at)} leaves the 30-day window", "W3")

        expected_cluster = None
        if expected is not None:
            expected_cluster = next(
                (c.arm_id for c in self.desired.clusters if ids.id_key(c.arm_id) == expected), expected)
            if protected_by is None or ids.id_key(linked or "") != expected:
                why = self._why_unprotected(ow is not None, linked, expected)
                self.finding(Severity.WARNING, "not-protected", name, ws_id, why, "W6")
        if frees is not None and len(used) >= self.limits.link_ops_per_window:
            needs_move = expected is not None and ids.id_key(linked or "") != expected
            self.finding(Severity.WARNING if needs_move else Severity.INFO, "link-budget-exhausted", name,
                         ws_id, f"{len(used)} of {self.limits.link_ops_per_window} link operations used in "
                         f"30 days: no link or unlink until {_day(frees)}", "W3", frees)
        return WorkspaceReport(
            id=ws_id, name=name, in_spec=entry is not None, exists=ow is not None,
            expected_cluster=expected_cluster, linked_cluster=linked, linked_since=since,
            linked_since_source=source, cmk_protected=protected_by is not None,
            cmk_since=since if protected_by is not None else None,
            key_uri=protected_by.uri if protected_by else None,
            key_version=protected_by.version_in_force if protected_by else None,
            byos=dict(ow.byos) if ow is not None else {},
            link_ops_used=len(used), link_ops_limit=self.limits.link_ops_per_window,
            next_link_op_frees=frees,
        )

    def _linked_since(self, key: str, linked: str | None) -> tuple[datetime | None, str | None]:
        """associateDate of the live link, else the newest link operation in history (rule W6)."""
        if linked is None:
            return None, None
        oc = self.observed.clusters.get(ids.id_key(linked))
        if oc is not None and oc.associated_workspaces.get(key) is not None:
            return oc.associated_workspaces[key], "associateDate"
        links = [op for op in self.history.link_operations
                 if op.workspace_key == key and op.kind == "link" and op.at <= self.now
                 and (op.cluster_key is None or op.cluster_key == ids.id_key(linked))]
        if not links:
            return None, None
        newest = max(links, key=lambda op: op.at)
        return newest.at, newest.source

    def _why_unprotected(self, exists: bool, linked: str | None, expected: str) -> str:
        want = _name(expected)
        if not exists:
            return f"expected on cluster {want} (CMK) but the workspace does not exist"
        if linked is None:
            return f"expected on cluster {want} but not linked: its data is stored with Microsoft keys"
        if ids.id_key(linked) != expected:
            return f"expected on cluster {want} but linked to {_name(linked)}"
        return f"linked to {want}, but that cluster's key is not in force: data is not protected by it"

    # ---- the rest ---------------------------------------------------------------------------

    def plan_items(self) -> None:
        if self.plan is None:
            return
        for d in self.plan.deferred:
            if d.not_before is not None:
                self.event(d.not_before, EventKind.DEFERRED_POSSIBLE, _name(d.resource_id), d.resource_id,
                           f"{d.action} {d.address} becomes possible: {d.reason}", d.rule)
        for b in self.plan.blocked:
            self.finding(Severity.WARNING, "blocked", _name(b.resource_id), b.resource_id,
                         f"{b.action} {b.address} can never run as declared: {b.reason} ({b.remedy})", b.rule)

    def deletions(self) -> None:
        for d in self.history.cluster_deletions:
            self.event(d.at + self.limits.soft_delete_retention, EventKind.NAME_RELEASED, d.name,
                       d.cluster_key, f"soft-deleted cluster {d.name} is purged; its name is free again",
                       "C11")


def build_report(
    *,
    desired: DesiredState,
    observed: ObservedState,
    history: History,
    plan: Plan | None,
    now: datetime,
    limits: Limits | None = None,
) -> Report:
    """The whole report; `plan` (from make_plan on the same inputs) supplies deferred-change dates."""
    lim = limits or for_profile(desired.settings.limits_profile)
    b = _Builder(desired, observed, history, plan, now, lim)
    clusters = b.clusters()
    workspaces = b.workspaces()
    b.plan_items()
    b.deletions()
    findings = sorted(
        {(f.code, f.resource_id.lower(), f.message): f for f in b.findings}.values(),
        key=lambda f: (SEVERITY_RANK[f.severity], _CODE_RANK.get(f.code, 9), f.subject, f.message),
    )
    calendar = sorted(b.events, key=lambda e: (e.date, e.kind, e.subject, e.description))
    expiries = [c.key.expires for c in clusters if c.key is not None and c.key.expires is not None]
    expected = [w for w in workspaces if w.expected_cluster is not None]
    counts = Counts(
        clusters=len(clusters),
        workspaces=len(workspaces),
        workspaces_expected_on_cmk=len(expected),
        workspaces_cmk_protected=sum(1 for w in workspaces if w.cmk_protected),
        workspaces_expected_not_protected=sum(
            1 for f in findings if f.code == "not-protected"),
        critical=sum(1 for f in findings if f.severity is Severity.CRITICAL),
        warning=sum(1 for f in findings if f.severity is Severity.WARNING),
        info=sum(1 for f in findings if f.severity is Severity.INFO),
        days_to_nearest_key_expiry=(
            round((min(expiries) - now).total_seconds() / 86400, 2) if expiries else None),
    )
    return Report(
        generated_at=now, limits_profile=lim.profile, key_expiry_warning_days=b.warn_days, counts=counts,
        clusters=tuple(clusters), workspaces=tuple(workspaces), findings=tuple(findings),
        calendar=tuple(calendar), observe_warnings=observed.warnings,
    )

"""`make demo`: the whole story on the embedded Azure emulator, offline, in well under two minutes.

validate -> review the fleet -> start the emulator and seed what the fleet assumes exists -> plan ->
apply (the SystemAssigned clusters' keys are refused: their identities have no vault access yet, rule
C7) -> the platform team grants access out of band -> apply again (converges) -> plan (no changes) ->
someone changes Azure by hand -> drift reports it -> report.

Every cmkctl command runs as the real CLI in a subprocess, through the real Azure SDKs over HTTPS to
the emulator (the same path a user's CI takes); only the out-of-band changes use the SDK directly. The
emulator runs realistic operation durations (cluster create ~2 h, link ~90 min) scaled down by
SPEEDUP, so a create takes ~3 s. The demo is a list of STEPS sharing one DemoContext; an unexpected
exit code or outcome ends it with exit 1 and one line saying why, never a traceback.

    python -m demo [--summary FILE] [--spec PATH]   # FILE: the key outcomes as JSON (tests/demo reads it)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.table import Table

from controller.azure.clients import AzureClients
from controller.errors import CmkError
from controller.loading import load
from controller.model import ids
from controller.model.limits import for_profile
from controller.model.spec import DesiredState, IdentityType
from demo.estate import CRYPTO_ROLE, KEY_RESOURCE_GROUP, fleet_estate
from emulator.server import RunningEmulator, start
from emulator.state import DEFAULT_DURATIONS

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "examples" / "fleet"
# 2 h cluster create -> 3 s; 90 min link -> 2.25 s. The test sets CMKCTL_DEMO_SPEEDUP higher to stay fast.
SPEEDUP = float(os.environ.get("CMKCTL_DEMO_SPEEDUP") or 2400.0)


class DemoFailed(Exception):
    """A step did not end as the story says it must (an unexpected exit code or outcome)."""


@dataclass
class DemoContext:
    """What steps share: the console, the spec, the emulator and CLI environment, and the outcomes."""

    console: Console
    spec_path: Path = FLEET
    desired: DesiredState | None = None
    notes: list[str] = field(default_factory=list)
    emulator: RunningEmulator | None = None
    workdir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, Any] = field(default_factory=dict)

    def need_desired(self) -> DesiredState:
        if self.desired is None:
            raise DemoFailed("the spec was not loaded (step validate must run first)")
        return self.desired

    def need_emulator(self) -> RunningEmulator:
        if self.emulator is None:
            raise DemoFailed("the emulator is not running (step start must run first)")
        return self.emulator

    @property
    def state_dir(self) -> Path:
        if self.workdir is None:
            raise DemoFailed("no working directory yet")
        return self.workdir / "state"

    def rel(self, path: Path) -> str:
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def cmkctl(ctx: DemoContext, *args: str, expect: Sequence[int] = (0,)) -> tuple[int, str]:
    """Run the real CLI, echo its output as it comes, and fail the demo on an unexpected exit code."""
    ctx.console.print(f"[bold cyan]$ cmkctl {' '.join(args)}[/]", highlight=False)
    env = {**os.environ, **ctx.env}
    proc = subprocess.Popen(  # noqa: S603 - our own CLI, with arguments the demo wrote
        [sys.executable, "-m", "controller.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    for line in proc.stdout or ():
        lines.append(line)
        ctx.console.out(line.rstrip("\n"), highlight=False)
    code = proc.wait()
    text = "".join(lines)
    if "Traceback (most recent call last)" in text:
        raise DemoFailed(f"cmkctl {args[0]} printed a traceback")
    if code not in expect:
        raise DemoFailed(f"cmkctl {args[0]} exited {code}, expected {' or '.join(map(str, expect))}")
    return code, text


def admin(ctx: DemoContext, method: str, what: str, body: Any = None) -> Any:
    """The emulator's admin API (seed, harm events), over HTTPS like any client."""
    running = ctx.need_emulator()
    with requests.Session() as http:
        http.trust_env = False
        r = http.request(method, f"{running.url}/_emulator/{what}", json=body, timeout=30,
                         verify=running.ca_file)
    if r.status_code >= 400:
        raise DemoFailed(f"emulator admin {method} {what}: {r.status_code} {r.text[:300]}")
    return r.json()


def azure(ctx: DemoContext) -> AzureClients:
    """SDK clients for the out-of-band actors (the platform team, someone in the portal)."""
    return AzureClients(env={**ctx.env})


def step_validate(ctx: DemoContext) -> None:
    """Validate the spec: schema, static rules and cross-document consistency (cmkctl validate)"""
    cmkctl(ctx, "validate", ctx.rel(ctx.spec_path))
    ctx.desired = load([ctx.spec_path])


def step_show_fleet(ctx: DemoContext) -> None:
    """The fleet as a platform engineer reviews it: clusters, keys, linked workspaces, BYOS."""
    desired = ctx.need_desired()
    links = desired.desired_links()
    entries = desired.workspace_entries()
    table = Table(title=f"Desired fleet ({ctx.rel(ctx.spec_path)})")
    for col in (
        "cluster",
        "Azure name",
        "subscription",
        "region",
        "GB/day",
        "identity",
        "key",
        "workspaces",
        "BYOS",
    ):
        table.add_column(col)
    for cluster in desired.clusters:
        mine = [k for k, c in links.items() if c.metadata.name == cluster.metadata.name]
        byos = sum(1 for k in mine if entries[k].byos is not None)
        key = cluster.spec.key
        key_text = "Microsoft-managed"
        if key is not None:
            ref = key.ref()
            key_text = f"{ref.vault_name}/{ref.name} " + (
                f"(pinned {ref.version[:8]}…)" if ref.version else "(versionless)"
            )
        table.add_row(
            cluster.metadata.name,
            cluster.azure_name,
            cluster.spec.subscription[:8] + "…",
            cluster.spec.location,
            str(cluster.spec.capacity),
            str(cluster.spec.identity.type),
            key_text,
            str(len(mine)),
            str(byos),
        )
    unlinked = [e for k, e in entries.items() if k not in links]
    if unlinked:
        byos = sum(1 for e in unlinked if e.byos is not None)
        table.add_row("(no cluster)", "", "", "", "", "", "", str(len(unlinked)), str(byos))
    ctx.console.print(table)
    for entry in entries.values():
        if entry.byos is not None and entry.byos.query and entry.byos.allow_saved_search_loss:
            name = ids.ResourceId.parse(entry.id).name
            ctx.console.print(
                f"  note: {name} opts in to BYOS Query, which removes its saved searches (rule B2)"
            )


def step_start_emulator(ctx: DemoContext) -> None:
    """Start the Azure emulator and seed what the fleet assumes already exists"""
    desired = ctx.need_desired()
    durations = {kind: seconds / SPEEDUP for kind, seconds in DEFAULT_DURATIONS.items()}
    ctx.emulator = start(clock=datetime.now(UTC), time_scale=1.0, durations=durations)
    ctx.workdir = Path(tempfile.mkdtemp(prefix="cmkctl-demo-"))
    ctx.env = {
        **ctx.emulator.env,
        "CMKCTL_STATE": str(ctx.state_dir),
        "CMKCTL_POLLING_INTERVAL": "0.25",  # real Azure: 30 s; the emulator's operations are scaled
        "CMKCTL_RETRY_BACKOFF": "0.1",
        "NO_COLOR": "1",
        "COLUMNS": "150",
    }
    estate = fleet_estate(desired)
    admin(ctx, "POST", "seed", estate)
    ctx.console.print(
        f"emulator on {ctx.emulator.url} (real Azure SDKs over HTTPS; operations {SPEEDUP:g}x faster: "
        f"cluster create {durations['cluster_create']:.1f}s, link {durations['link']:.1f}s)"
    )
    ctx.console.print(
        f"seeded: {len(estate['resource_groups'])} resource groups, {len(estate['workspaces'])} "
        f"workspaces, {len(estate['storage_accounts'])} storage accounts, {len(estate['identities'])} "
        f"user-assigned identities, {len(estate['vaults'])} key vaults with purge protection (rule C7); "
        "no clusters, no links"
    )
    ctx.console.print(f"journal and lock: {ctx.state_dir}")


def step_first_plan(ctx: DemoContext) -> None:
    """Plan: what apply would do, in order (cmkctl plan; exit 2 = changes)"""
    cmkctl(ctx, "plan", "-f", ctx.rel(ctx.spec_path), "--detailed-exitcode", expect=(2,))


def step_first_apply(ctx: DemoContext) -> None:
    """Apply: create the clusters, set their keys, link the workspaces"""
    code, out = cmkctl(ctx, "apply", "-f", ctx.rel(ctx.spec_path), "--auto-approve", expect=(0, 1))
    ctx.outcomes["first_apply_exit"] = code
    if code == 1:
        if "(rule C7)" not in out:
            raise DemoFailed("the first apply failed for another reason than key access (rule C7)")
        ctx.console.print(
            "\n[yellow]expected[/]: the SystemAssigned clusters only get their identity when they are "
            "created, so their key cannot be set until someone grants that identity access to the vault "
            "(rule C7); their links wait, because a workspace is never linked before its cluster's key "
            "(rule W4)."
        )


def step_grant_key_access(ctx: DemoContext) -> None:
    """The platform team grants the new cluster identities key access (out of band, not cmkctl)"""
    desired = ctx.need_desired()
    clients = azure(ctx)
    granted = 0
    try:
        for cluster in desired.clusters:
            key = cluster.spec.key
            if key is None or cluster.spec.identity.type is not IdentityType.SYSTEM_ASSIGNED:
                continue
            live = clients.loganalytics(cluster.spec.subscription).clusters.get(
                cluster.spec.resource_group, cluster.azure_name
            )
            principal = live.identity.principal_id if live.identity else None
            if not principal:
                raise DemoFailed(f"cluster {cluster.azure_name} has no system-assigned identity yet")
            ref = key.ref()
            if ref.is_managed_hsm:
                # no Microsoft.Authorization API is emulated: the role goes straight into the emulator
                ctx.console.print(
                    f"$ az keyvault role assignment create --hsm-name {ref.vault_name} --role "
                    f"'{CRYPTO_ROLE}' --assignee-object-id {principal} --scope /keys", highlight=False
                )
                ctx.need_emulator().state.vaults.role_grant(key.vault_uri, principal, CRYPTO_ROLE)
                granted += 1
                continue
            vaults = clients.keyvault_mgmt(cluster.spec.subscription).vaults
            tenant = vaults.get(KEY_RESOURCE_GROUP, ref.vault_name).properties.tenant_id
            ctx.console.print(
                f"$ az keyvault set-policy -n {ref.vault_name} --object-id {principal} "
                "--key-permissions get wrapKey unwrapKey", highlight=False
            )
            vaults.update_access_policy(
                KEY_RESOURCE_GROUP,
                ref.vault_name,
                "add",
                {"properties": {"accessPolicies": [{
                    "tenantId": tenant,
                    "objectId": principal,
                    "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]},
                }]}},
            )
            granted += 1
    finally:
        clients.close()
    ctx.outcomes["identities_granted"] = granted
    if granted == 0:
        ctx.console.print("nothing to grant: every cluster uses a user-assigned identity granted up front")


def step_second_apply(ctx: DemoContext) -> None:
    """Apply again: the keys go on, then the waiting links (cmkctl apply)"""
    _, out = cmkctl(ctx, "apply", "-f", ctx.rel(ctx.spec_path), "--auto-approve")
    ctx.outcomes["converged"] = " 0 failed" in out or "No changes" in out
    if not ctx.outcomes["converged"]:
        raise DemoFailed("the second apply did not report zero failures")


def step_plan_again(ctx: DemoContext) -> None:
    """Plan again: Azure matches the spec (cmkctl plan; exit 0 = no changes)"""
    code, _ = cmkctl(ctx, "plan", "-f", ctx.rel(ctx.spec_path), "--detailed-exitcode", expect=(0,))
    ctx.outcomes["second_plan_empty"] = code == 0


def step_out_of_band(ctx: DemoContext) -> None:
    """Someone changes Azure by hand: raises a cluster's capacity and unlinks a workspace"""
    desired = ctx.need_desired()
    linked = desired.desired_links()
    if not linked:
        raise DemoFailed("the spec links no workspace, so there is nothing to unlink by hand")
    first = sorted(linked)[0]  # a workspace and its cluster, the same on every run
    cluster = linked[first]
    spec = cluster.spec
    workspace = ids.ResourceId.parse(desired.workspace_entries()[first].id)
    raised = _next_capacity(desired, spec.capacity)
    clients = azure(ctx)
    try:
        la = clients.loganalytics(spec.subscription)
        ctx.console.print(
            f"$ az monitor log-analytics cluster update -n {cluster.azure_name} "
            f"--sku-capacity {raised}", highlight=False
        )
        la.clusters.begin_update(
            spec.resource_group, cluster.azure_name, {"sku": {"name": "CapacityReservation",
                                                             "capacity": raised}}
        ).result()
        ctx.console.print(
            f"$ az monitor log-analytics workspace linked-service delete --workspace-name {workspace.name} "
            "-n cluster", highlight=False
        )
        wla = clients.loganalytics(workspace.subscription)
        wla.linked_services.begin_delete(workspace.resource_group, workspace.name, "cluster").result()
    finally:
        clients.close()
    ctx.outcomes["changed_by_hand"] = {"cluster": cluster.metadata.name, "workspace": workspace.name}
    ctx.outcomes["capacity_by_hand"] = {"spec": spec.capacity, "live": raised}


def _next_capacity(desired: DesiredState, capacity: int) -> int:
    """The smallest capacity above `capacity` that the spec's limits profile allows (rule C3)."""
    limits = for_profile(desired.settings.limits_profile)
    if limits.capacity_tiers is not None:
        return min(t for t in limits.capacity_tiers if t > capacity)
    return capacity + (limits.capacity_step or 1)


def step_drift(ctx: DemoContext) -> None:
    """Drift check: what differs from the spec (cmkctl drift; exit 2 = drift)"""
    hand = ctx.outcomes.get("changed_by_hand") or {}
    code, out = cmkctl(ctx, "drift", "-f", ctx.rel(ctx.spec_path), expect=(2,))
    missed = [name for name in hand.values() if name not in out]
    if missed:
        raise DemoFailed(f"drift did not name what was changed by hand: {', '.join(missed)}")
    ctx.outcomes["drift_found"] = code == 2


def step_report(ctx: DemoContext) -> None:
    """Report: the fleet's state for humans (cmkctl report)"""
    cmkctl(ctx, "report", "-f", ctx.rel(ctx.spec_path))


def step_harm(ctx: DemoContext) -> None:
    """Harm check: did anything break on the way? (the emulator's harm events)"""
    events = admin(ctx, "GET", "events")["events"]
    ctx.outcomes["harm_events"] = len(events)
    if events:
        for event in events:
            ctx.console.print(f"[red]harm[/]: {event}", highlight=False)
        raise DemoFailed(f"{len(events)} harm event(s): data dropped, a key revoked or searches lost")
    ctx.console.print(
        "[green]zero harm events[/]: no data dropped by a link before its key (W4), no key revoked (K1), "
        "no saved searches lost (B2)"
    )


Step = Callable[[DemoContext], None]
STEPS: list[Step] = [
    step_validate,
    step_show_fleet,
    step_start_emulator,
    step_first_plan,
    step_first_apply,
    step_grant_key_access,
    step_second_apply,
    step_plan_again,
    step_out_of_band,
    step_drift,
    step_report,
    step_harm,
]


def run(console: Console, spec_path: Path = FLEET) -> tuple[int, DemoContext]:
    """Run the steps in order; the first unexpected outcome ends the demo (exit 1) with one line."""
    ctx = DemoContext(console=console, spec_path=spec_path)
    began = time.monotonic()
    code = 0
    try:
        for number, step in enumerate(STEPS, start=1):
            title = (step.__doc__ or step.__name__).strip().splitlines()[0]
            console.rule(f"[bold]{number}. {title}")
            try:
                step(ctx)
            except (DemoFailed, CmkError) as err:
                console.print(f"[red]step failed[/red]: {err}", highlight=False)
                code = 1
                break
            except Exception as err:
                console.print(f"[red]step failed (internal error)[/red]: {type(err).__name__}: {err}")
                code = 1
                break
    finally:
        if ctx.emulator is not None:
            ctx.emulator.stop()
    ctx.outcomes["seconds"] = round(time.monotonic() - began, 1)
    ctx.outcomes["exit"] = code
    if code == 0:
        console.rule(f"[bold]done in {ctx.outcomes['seconds']:g}s")
    return code, ctx


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--summary", metavar="FILE", help="write the key outcomes here as JSON")
    parser.add_argument("--spec", metavar="PATH", type=Path, default=FLEET,
                        help="the spec to tell the story with (default examples/fleet)")
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or in CI: rich would assume 80 columns and squeeze the table
        console = Console(width=150)
    code, ctx = run(console, spec_path=args.spec.resolve())
    if args.summary:
        Path(args.summary).write_text(json.dumps(ctx.outcomes, indent=2), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())

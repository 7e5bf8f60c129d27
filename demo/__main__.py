"""`make demo`: validate the example fleet and show it; later steps (plan, apply, drift) are appended.

The demo is a list of named steps run in order. Each step gets the shared context and returns
normally or raises; the first failing step ends the demo with its message (exit 1), never a traceback.
To add a step: write `def step_x(ctx: DemoContext) -> None` and append it to STEPS.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from controller.errors import CmkError
from controller.loading import load
from controller.model import ids
from controller.model.spec import DesiredState

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "examples" / "fleet"


@dataclass
class DemoContext:
    """What steps share: the console, the spec path, and what earlier steps produced."""

    console: Console
    spec_path: Path = FLEET
    desired: DesiredState | None = None
    notes: list[str] = field(default_factory=list)


def step_validate(ctx: DemoContext) -> None:
    """Load and validate the spec tree exactly as `cmkctl validate` does."""
    rel = ctx.spec_path.relative_to(ROOT) if ctx.spec_path.is_relative_to(ROOT) else ctx.spec_path
    ctx.console.print(f"$ cmkctl validate {rel}")
    ctx.desired = load([ctx.spec_path])
    files = {s.file for s in ctx.desired.sources.values()}
    ctx.console.print(
        f"[green]valid[/green]: {len(ctx.desired.sources)} documents in {len(files)} files, "
        f"limits profile '{ctx.desired.settings.limits_profile}', drift mode '{ctx.desired.settings.drift}'"
    )


def step_show_fleet(ctx: DemoContext) -> None:
    """The fleet as a platform engineer reviews it: clusters, keys, linked workspaces, BYOS."""
    desired = ctx.desired
    if desired is None:
        raise RuntimeError("step_show_fleet needs step_validate first")
    links = desired.desired_links()
    entries = desired.workspace_entries()
    table = Table(title="Desired fleet (examples/fleet)")
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


Step = Callable[[DemoContext], None]
STEPS: list[Step] = [step_validate, step_show_fleet]


def main() -> int:
    console = Console()
    if not console.is_terminal:  # piped or in CI: rich would assume 80 columns and squeeze the table
        console = Console(width=150)
    ctx = DemoContext(console=console)
    for number, step in enumerate(STEPS, start=1):
        title = (step.__doc__ or step.__name__).strip().splitlines()[0]
        console.rule(f"[bold]{number}. {title}")
        try:
            step(ctx)
        except CmkError as err:
            console.print(f"[red]step failed[/red]: {err}", markup=True, highlight=False)
            return 1
        except Exception as err:
            console.print(f"[red]step failed (internal error)[/red]: {type(err).__name__}: {err}")
            return 1
    console.rule("[bold]done")
    return 0


if __name__ == "__main__":
    sys.exit(main())

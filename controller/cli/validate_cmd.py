"""`cmkctl validate PATH...` (or `-f PATH`, as plan and apply take it): check spec files without Azure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.cli.cloud_option import CloudOption, selected_cloud
from controller.errors import CmkError, SpecError
from controller.loading import load
from controller.model import ids


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def validate(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[PATH]...",
            help="Spec files or directories (*.yaml, *.yml, recursively)",
            show_default=False,
        ),
    ] = None,
    files: Annotated[
        list[Path] | None,
        typer.Option(
            "-f", "--file", metavar="PATH", help="Spec file or directory (repeatable), as plan takes it"
        ),
    ] = None,
    cloud: CloudOption = None,
) -> None:
    """Validate spec files: schema, static rules (C1, C3, W1, B1) and cross-document consistency.

    Exit 0 with a summary, or exit 1 listing every problem of every document as
    file:line: field: message.
    """
    paths = [*(files or []), *(paths or [])]
    if not paths:
        ctx.fail("Missing argument 'PATH...': give spec files or directories (or -f PATH)")
    try:
        desired = load(paths, cloud=selected_cloud(cloud))
    except SpecError as err:
        for problem in err.problems:
            typer.echo(str(problem), err=True)
        bad_files = len({p.file for p in err.problems})
        typer.echo(
            f"{len(err.problems)} problem(s) in {bad_files} file(s); fix them and run validate again",
            err=True,
        )
        raise typer.Exit(1) from None
    except CmkError as err:  # an unknown --cloud / AZURE_CLOUD
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    spec_files = {s.file for s in desired.sources.values()}
    entries = desired.workspace_entries()
    links = desired.desired_links()
    byos = sum(1 for e in entries.values() if e.byos is not None)
    keys = sum(1 for c in desired.clusters if c.spec.key is not None)
    pinned = sum(1 for c in desired.clusters if c.spec.key is not None and c.spec.key.version)
    typer.echo(
        f"OK: {len(desired.clusters)} cluster(s) with {keys} key(s) ({pinned} pinned, "
        f"{keys - pinned} versionless), {len(links)} linked workspace(s), "
        f"{byos} with BYOS, in {len(desired.subscriptions())} subscription(s), "
        f"{len({c.spec.location for c in desired.clusters})} region(s); "
        f"limits profile '{desired.settings.limits_profile}', drift '{desired.settings.drift}'; "
        f"from {len(spec_files)} file(s)"
    )
    for cluster in desired.clusters:
        linked = sum(1 for c in links.values() if c.metadata.name == cluster.metadata.name)
        key = cluster.spec.key.ref() if cluster.spec.key else None
        typer.echo(
            f"  Cluster/{cluster.metadata.name}: {ids.ResourceId.parse(cluster.arm_id).name} in "
            f"{cluster.spec.location}, {cluster.spec.capacity} GB/day, key "
            f"{key if key else 'Microsoft-managed'}, {linked} workspace(s)"
        )

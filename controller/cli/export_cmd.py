"""`cmkctl export`: adopt an existing estate as spec files.

    cmkctl export --subscription SUB [--subscription SUB2 ...] [--resource-group RG] [--out DIR] [--force]

Reads the clusters, keys, links and BYOS accounts that exist in the subscriptions (list calls only,
nothing is changed) and writes one spec file per cluster with its WorkspaceSet, plus `byos-only.yaml`
for workspaces with BYOS accounts and no link, and the JSON Schema the files point their editors at.
The files validate and plan to no changes: `cmkctl plan --detailed-exitcode` exits 0 right after.
Without `--out` the documents go to stdout as one YAML stream. Exit 0 on success, 1 on any error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from controller.azure.clients import AzureClients
from controller.azure.inventory import read_inventory
from controller.cli.cloud_option import CloudOption, selected_cloud
from controller.cli.guard import guarded, quiet_sdk_logging
from controller.model import ids
from controller.service import export as exporting


class ExportArgumentError(exporting.ExportError):
    """An option value export cannot use."""


def run(
    subscriptions: list[str],
    *,
    resource_group: str | None = None,
    out: str | None = None,
    force: bool = False,
    cloud: str | None = None,
    clients: AzureClients | None = None,
) -> int:
    """The command body; returns the exit code and never lets a traceback reach the user."""

    def body() -> int:
        bad = [s for s in subscriptions if not ids.is_guid(s)]
        if bad:
            raise ExportArgumentError(f"--subscription {bad[0]!r} is not a subscription id (GUID)")
        quiet_sdk_logging()
        azure = clients or AzureClients(cloud=selected_cloud(cloud))
        try:
            inventory = read_inventory(azure, subscriptions, resource_group=resource_group)
        finally:
            if clients is None:
                azure.close()
        if out is None:
            files = exporting.spec_files(inventory.clusters, inventory.workspaces)
            sys.stdout.write("---\n".join(f.text for f in files))
            return 0
        files = exporting.spec_files(inventory.clusters, inventory.workspaces)
        exporting.write(files, Path(out), force=force)
        linked = sum(1 for w in inventory.workspaces if w.cluster_id)
        print(
            f"exported {len(inventory.clusters)} clusters and {linked} linked workspaces into {len(files)} "
            f"files in {out} (with {exporting.SCHEMA_FILE}); next: cmkctl plan -f {out} --detailed-exitcode"
        )
        return 0

    return guarded(body)


def export_command(
    subscription: Annotated[
        list[str],
        typer.Option("--subscription", metavar="SUB", help="Subscription id to read (repeatable)"),
    ],
    resource_group: Annotated[
        str | None,
        typer.Option("--resource-group", metavar="RG", help="Only clusters (and BYOS-only workspaces) in it"),
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", metavar="DIR", help="Write the files here (default: stdout)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files already in --out")] = False,
    cloud: CloudOption = None,
) -> None:
    """Write spec files for the clusters, keys, links and BYOS accounts that exist (plans to no changes)."""
    raise typer.Exit(run(subscription, resource_group=resource_group, out=out, force=force, cloud=cloud))


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)

"""`cmkctl schema`: the JSON Schema of spec documents, for editors and CI checks."""

from __future__ import annotations

import typer

from controller.loading.schema import spec_json_schema_text


def register(app: typer.Typer) -> None:
    app.command("schema")(schema)


def schema() -> None:
    """Print the JSON Schema of one spec document (the copy in specs/ is generated from this)."""
    typer.echo(spec_json_schema_text(), nl=False)

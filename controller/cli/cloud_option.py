"""`--cloud NAME`: the one setting that picks the Azure cloud (else $AZURE_CLOUD, else public Azure).

Every command that reads the spec or talks to Azure takes it, so `cmkctl plan --cloud AzureUSGovernment`
validates vault URIs, signs in and calls Resource Manager in Azure US Government alike.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from controller.model import clouds

CloudOption = Annotated[
    str | None,
    typer.Option(
        "--cloud",
        metavar="NAME",
        help=f"Azure cloud, as `az cloud list` names it: {', '.join(clouds.NAMES)} "
        f"(default ${clouds.ENV_VAR}, else {clouds.DEFAULT.name})",
        show_default=False,
    ),
]


def selected_cloud(option: str | None) -> clouds.Cloud:
    """`--cloud` if given, else $AZURE_CLOUD, else public Azure; UnknownCloud (a CmkError) lists the names."""
    return clouds.select(option, os.environ)

"""The JSON Schema of a spec document, generated from the pydantic models (never written by hand).

A copy is checked in at specs/cmk-spec.schema.json for editors (yaml-language-server); a test fails
when it no longer matches the models.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from controller.model.spec import Document

SCHEMA_ID = "https://cmk.azure.io/schemas/v1/cmk-spec.schema.json"


def spec_json_schema() -> dict[str, Any]:
    """Schema of ONE document (Cluster, WorkspaceSet or Settings); editors apply it per `---`."""
    schema = TypeAdapter(Document).json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "cmk-controller spec document (apiVersion cmk.azure.io/v1)",
        **schema,
    }


def spec_json_schema_text() -> str:
    """The schema as the exact text checked in (stable key order, trailing newline)."""
    return json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n"

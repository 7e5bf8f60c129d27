"""The JSON Schema of the plan artefact, generated from the model (specs/plan.schema.json).

A test regenerates it and fails when the committed file is out of date, so other tools can trust it.
"""

from __future__ import annotations

import json
from typing import Any

from controller.planning.plan import FORMAT_VERSION, Plan


def plan_schema() -> dict[str, Any]:
    schema = Plan.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://cmk.azure.io/schemas/plan-{FORMAT_VERSION}.json"
    schema["title"] = "cmkctl plan"
    props = schema.setdefault("properties", {})
    props["complete"] = {"type": "boolean", "description": "false while anything is deferred or blocked"}
    props["next_not_before"] = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
                                "description": "earliest not_before among deferred items"}
    summary = schema.get("$defs", {}).get("Summary", {}).get("properties")
    if isinstance(summary, dict):
        summary["changes"] = {"type": "integer", "description": "total changes to run now"}
    return schema


def plan_schema_text() -> str:
    return json.dumps(plan_schema(), indent=2, sort_keys=True) + "\n"

"""Renderers of the plan artefact: JSON (the artefact itself), Terraform-like text, PR markdown.

They read only a `Plan` (which round-trips through JSON), never the live state: what a reviewer
reads in a PR comment is exactly what `cmkctl apply PLANFILE` will run.
"""

from controller.render.json_plan import PlanFormatError, from_json, to_json
from controller.render.markdown import MARKDOWN_LIMIT, to_markdown
from controller.render.schema import plan_schema
from controller.render.text import to_text

__all__ = ["MARKDOWN_LIMIT", "PlanFormatError", "from_json", "plan_schema", "to_json", "to_markdown",
           "to_text"]

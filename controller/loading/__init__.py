"""YAML spec files -> DesiredState, with every problem reported as file:line: field.path: message.

from controller.loading import load
desired = load(["examples/fleet"])      # raises SpecError (only) listing all problems
"""

from controller.loading.loader import LoadLimits, load, load_documents
from controller.loading.schema import spec_json_schema

__all__ = ["LoadLimits", "load", "load_documents", "spec_json_schema"]

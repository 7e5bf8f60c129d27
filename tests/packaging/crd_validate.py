"""Strict validation of rendered custom resources (ServiceMonitor), run with .venv-tools/bin/python.

kubernetes-validate has schemas for built-in kinds only. The ServiceMonitor schema comes from a
registry package (cloudcoil's prometheus-operator models, generated from the operator's CRD); it is
made strict the way `kubernetes-validate --strict` is: an object with declared properties accepts
no other property. Usage: python crd_validate.py FILE...  (exit 1 and one line per problem).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor

MODELS = {("monitoring.coreos.com/v1", "ServiceMonitor"): ServiceMonitor}


def strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


def main(paths: list[str]) -> int:
    problems: list[str] = []
    checked = 0
    for path in paths:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d]
        for doc in docs:
            model = MODELS.get((doc.get("apiVersion"), doc.get("kind")))
            if model is None:
                continue
            schema = strict(model.model_json_schema(by_alias=True))
            # metadata is ObjectMeta (checked by the API server's own rules, not this CRD's schema)
            schema["properties"]["metadata"] = {"type": "object"}
            validator = jsonschema.Draft202012Validator(schema)
            for err in validator.iter_errors(doc):
                where = "/".join(str(p) for p in err.absolute_path)
                problems.append(f"{path}: {doc['kind']}/{doc['metadata']['name']}: {where}: {err.message}")
            checked += 1
    for line in problems:
        print(line)
    print(f"checked {checked} custom resource(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

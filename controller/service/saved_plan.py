"""`cmkctl apply PLANFILE`: read a reviewed plan and check it against Azure *and* against the spec.

Two checks before anything runs:
- the live state is still the one the plan was made from (its fingerprint), else it is stale;
- a fresh plan of the spec the file names contains every change the file would apply. A saved plan
  is a file anyone with write access to the artefact store can edit; it must never be able to ask
  for more than the spec allows (a `delete` typed into it, a destructive change without its opt-in).
"""

from __future__ import annotations

import json
from pathlib import Path

from controller.errors import CmkError, StalePlanError
from controller.planning import fingerprint as fp
from controller.planning.plan import Change, Plan
from controller.render import json_plan


def load_plan_file(path: str) -> Plan:
    """The saved artefact, read by the same code that wrote it (controller.render.json_plan)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CmkError(f"cannot read plan file {path}: {exc.strerror or exc}") from None
    try:
        return json_plan.from_json(text)
    except CmkError as exc:
        raise CmkError(f"{path}: {exc} (expected the JSON from `cmkctl plan --out`)") from None


def stale_reason(saved: Plan, current: Plan, digests_now: dict[str, str]) -> list[str]:
    """What changed between the saved plan's observation and now, in resource terms when we can."""
    if saved.resource_digests:
        changed = fp.changed_resources(saved.resource_digests, digests_now)
        if changed:
            return [
                f"{name} changed"
                if name in saved.resource_digests and name in digests_now
                else (f"{name} appeared" if name in digests_now else f"{name} disappeared")
                for name in changed
            ]
    before = {(c.action, c.address) for c in saved.changes}
    after = {(c.action, c.address) for c in current.changes}
    lines = [f"no longer needed: {a} {addr}" for a, addr in sorted(before - after)]
    lines += [f"now also needed: {a} {addr}" for a, addr in sorted(after - before)]
    return lines or ["the observed state differs (fingerprint changed)"]


def _identity(change: Change) -> str:
    """What a change would do, independent of ids, order and explanations."""
    return json.dumps(
        {
            "action": str(change.action),
            "resource": change.resource_id.lower(),
            "parameters": change.parameters.model_dump(mode="json"),
            "destructive": change.destructive,
        },
        sort_keys=True,
        default=str,
    )


def check_saved(
    saved: Plan, fresh: Plan, *, planfile: str, fingerprint_now: str, digests_now: dict[str, str]
) -> Plan:
    """The saved plan if it may run now; StalePlanError (nothing runs) if not."""
    if saved.fingerprint != fingerprint_now:
        raise StalePlanError(
            f"saved plan {planfile} is stale: the live state changed since it was made:\n  "
            + "\n  ".join(stale_reason(saved, fresh, digests_now))
            + "\nrun `cmkctl plan` again and review the new plan"
        )
    allowed = {_identity(c) for c in fresh.changes}
    foreign = [c for c in saved.changes if _identity(c) not in allowed]
    if foreign:
        raise StalePlanError(
            f"saved plan {planfile} asks for changes a fresh plan of its spec does not contain "
            "(edited, or made from another spec): "
            + ", ".join(f"{c.action} {c.address}" for c in foreign[:5])
            + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            + "; nothing was changed. Run `cmkctl plan --out` again and review the new plan"
        )
    return saved

"""cmk-controller: keeps Log Analytics dedicated clusters with customer-managed keys as declared in git.

Layout (each package holds one concern; import-linter contracts in `.importlinter` keep the layers):

    model/      pure value types: ids, the desired spec, the observed snapshot, history, limits, rules
    loading/    YAML files -> spec, with file:line:field errors
    planning/   pure: make_plan(desired, observed, now, history, limits) -> Plan
    render/     pure: Plan -> JSON artefact -> text | markdown
    azure/      the only importer of azure.*: clients, observe, operations, error mapping
    state/      history store (journal) and locks
    execution/  the executor that applies a plan
    reconcile/  the long-running controller loop
    cli/        `cmkctl`
"""

__version__ = "0.1.0"

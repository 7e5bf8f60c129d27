"""Every invalid spec gives `file:line: field.path: message` on stderr, exit 1, and no traceback.

Table-driven through the real CLI entry point (`controller.cli.app.main`), as a user runs it.
Line numbers in the expectations are the lines of the YAML texts below (1-based).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controller.cli.app import main

SUB = "3f2a6c1e-7b4d-4c2a-9e51-0a8b6d2f4c11"
SUB2 = "8d41b7a2-5e93-4f06-b1c8-27e9a4d3f5b2"
KV = "https://kv-cmk-test.vault.azure.net/"
WS_TYPE = "Microsoft.OperationalInsights/workspaces"


def ws(name: str, sub: str = SUB) -> str:
    """A workspace id; a short name gets a prefix, as Azure's names are 4-63 characters."""
    name = name if len(name) >= 4 else f"law-{name}"
    return f"/subscriptions/{sub}/resourceGroups/rg-apps/providers/{WS_TYPE}/{name}"


def storage(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg-apps/providers/Microsoft.Storage/storageAccounts/{name}"


def cluster(
    name: str = "cmkprod01",
    *,
    sub: str = SUB,
    capacity: str = "1000",
    vault: str = KV,
    identity: str = "SystemAssigned",
    extra_spec: str = "",
) -> str:
    """A Cluster document whose lines are fixed: 4 name, 6 subscription, 10 identity type, 11 capacity,
    13 vaultUri, 14 key name; `extra_spec` lines start at 15."""
    return (
        "apiVersion: cmk.azure.io/v1\n"  # 1
        "kind: Cluster\n"  # 2
        "metadata:\n"  # 3
        f"  name: {name}\n"  # 4
        "spec:\n"  # 5
        f"  subscription: {sub}\n"  # 6
        "  resourceGroup: rg-mon\n"  # 7
        "  location: westeurope\n"  # 8
        "  identity:\n"  # 9
        f"    type: {identity}\n"  # 10
        f"  capacity: {capacity}\n"  # 11
        "  key:\n"  # 12
        f"    vaultUri: {vault}\n"  # 13
        "    name: cmk\n"  # 14
        f"{extra_spec}"
    )


def wset(name: str, cluster_name: str | None, items: list[str]) -> str:
    """A WorkspaceSet document: line 7 is `workspaces:`, item i starts at line 8 + i (plain ids)."""
    return (
        "apiVersion: cmk.azure.io/v1\n"  # 1
        "kind: WorkspaceSet\n"  # 2
        "metadata:\n"  # 3
        f"  name: {name}\n"  # 4
        "spec:\n"  # 5
        + (f"  cluster: {cluster_name}\n" if cluster_name else "  cluster: null\n")  # 6
        + "  workspaces:\n"  # 7
        + "".join(f"    - {item}\n" for item in items)
    )


SETTINGS_CURRENT = (
    "apiVersion: cmk.azure.io/v1\nkind: Settings\nmetadata:\n  name: s\nspec:\n  limitsProfile: current\n"
)
SETTINGS_SEED = (
    "apiVersion: cmk.azure.io/v1\nkind: Settings\nmetadata:\n  name: s\nspec:\n  limitsProfile: seed\n"
)


@dataclass
class Case:
    id: str
    files: dict[str, str]
    # (file, line, field, message fragment): each must appear as `<dir>/file:line: field: ...fragment`
    expected: list[tuple[str, int | None, str, str]]
    raw: dict[str, bytes] = field(default_factory=dict)


CASES = [
    Case(
        "typo-in-field-name",
        {"c.yaml": cluster().replace("  capacity: 1000", "  capacty: 1000")},
        [
            ("c.yaml", 11, "spec.capacty", "unknown field (not part of the spec); did you mean 'capacity'?"),
            ("c.yaml", 5, "spec.capacity", "required field"),
        ],
    ),
    Case(
        "python-field-name-instead-of-yaml-name",
        {"c.yaml": cluster().replace("  resourceGroup: rg-mon", "  resource_group: rg-mon")},
        [
            ("c.yaml", 7, "spec.resource_group", "did you mean 'resourceGroup'?"),
            ("c.yaml", 5, "spec.resourceGroup", "required"),
        ],
    ),
    Case("C1-name-too-short", {"c.yaml": cluster("ab")}, [("c.yaml", 4, "metadata.name", "rule C1")]),
    Case("C1-three-characters", {"c.yaml": cluster("abc")}, [("c.yaml", 4, "metadata.name", "rule C1")]),
    Case(
        "C1-name-too-long-suggests-spec-name",
        {"c.yaml": cluster("p" * 64)},
        [("c.yaml", 4, "metadata.name", "4-63 characters: letters, digits and hyphens")],
    ),
    Case(
        "C1-leading-hyphen",
        {"c.yaml": cluster("-prodweu")},
        [("c.yaml", 4, "metadata.name", "set spec.name to the Azure name")],
    ),
    Case(
        "C1-trailing-hyphen-in-spec-name",
        {"c.yaml": cluster("prod-weu", extra_spec="  name: cmkprod-\n")},
        [("c.yaml", 15, "spec.name", "rule C1")],
    ),
    Case(
        "C1-spec-name",
        {"c.yaml": cluster("prod-weu", extra_spec="  name: bad_name!\n")},
        [("c.yaml", 15, "spec.name", "rule C1")],
    ),
    Case(
        "C3-seed-step-of-100",
        {"c.yaml": cluster(capacity="1050"), "settings.yaml": SETTINGS_SEED},
        [
            (
                "c.yaml",
                11,
                "spec.capacity",
                "'seed' limits profile: 1000-50000 GB/day in steps of 100 (rule C3)",
            )
        ],
    ),
    Case(
        "C3-seed-below-min",
        {"c.yaml": cluster(capacity="500"), "settings.yaml": SETTINGS_SEED},
        [("c.yaml", 11, "spec.capacity", "rule C3")],
    ),
    Case(
        "C3-current-tiers",
        {"c.yaml": cluster(capacity="1500"), "settings.yaml": SETTINGS_CURRENT},
        [("c.yaml", 11, "spec.capacity", "'current' limits profile: one of 100, 200")],
    ),
    Case(
        "C3-default-profile-refuses-1100",
        {"c.yaml": cluster(capacity="1100")},
        [
            (
                "c.yaml",
                11,
                "spec.capacity",
                "capacity 1100 GB/day is not allowed by the 'current' limits profile: one of 100, 200, 300, "
                "400, 500, 1000, 2000, 5000, 10000, 25000, 50000 GB/day (rule C3)",
            )
        ],
    ),
    Case(
        "capacity-not-a-number",
        {"c.yaml": cluster(capacity="lots")},
        [("c.yaml", 11, "spec.capacity", "valid integer")],
    ),
    Case(
        "subscription-not-guid",
        {"c.yaml": cluster(sub="prod-subscription")},
        [("c.yaml", 6, "spec.subscription", "not a subscription id")],
    ),
    Case(
        "vault-uri-malformed",
        {"c.yaml": cluster(vault="http://kv.example.com/")},
        [("c.yaml", 13, "spec.key.vaultUri", "is not a vault URI")],
    ),
    Case(
        "key-version-malformed",
        {"c.yaml": cluster().replace("    name: cmk\n", "    name: cmk\n    version: v2\n")},
        [("c.yaml", 15, "spec.key.version", "should match pattern")],
    ),
    Case(
        "user-assigned-without-id",
        {"c.yaml": cluster(identity="UserAssigned")},
        [("c.yaml", 9, "spec.identity", "userAssignedIdentity is required")],
    ),
    Case(
        "user-assigned-id-of-wrong-type",
        {
            "c.yaml": cluster(identity="UserAssigned").replace(
                "    type: UserAssigned\n",
                f"    type: UserAssigned\n    userAssignedIdentity: {storage('x')}\n",
            )
        },
        [("c.yaml", 11, "spec.identity.userAssignedIdentity", "expected a Microsoft.ManagedIdentity")],
    ),
    Case(
        "C12-identity-none-needs-opt-in",
        {"c.yaml": cluster(identity="None")},
        [("c.yaml", 5, "spec", "rule C12")],
    ),
    Case(
        "identity-type-unknown",
        {"c.yaml": cluster(identity="Both")},
        [("c.yaml", 10, "spec.identity.type", "'Both'")],
    ),
    Case(
        "unknown-kind",
        {"c.yaml": cluster().replace("kind: Cluster", "kind: Klaster")},
        [("c.yaml", 2, "kind", "must be one of Cluster, WorkspaceSet, Settings (got 'Klaster')")],
    ),
    Case(
        "unknown-api-version",
        {"c.yaml": cluster().replace("cmk.azure.io/v1", "cmk.azure.io/v2")},
        [("c.yaml", 1, "apiVersion", "must be 'cmk.azure.io/v1'")],
    ),
    Case(
        "duplicate-yaml-key",
        {
            "c.yaml": cluster().replace(
                "  location: westeurope\n", "  location: westeurope\n  resourceGroup: rg-b\n"
            )
        },
        [("c.yaml", 9, "spec.resourceGroup", "duplicate key 'resourceGroup' (first at line 7)")],
    ),
    Case(
        "yaml-alias-refused",
        {
            "c.yaml": cluster().replace(
                "  resourceGroup: rg-mon", "  resourceGroup: &rg rg-mon\n  location2: *rg"
            )
        },
        [("c.yaml", 8, "", "aliases")],
    ),
    Case(
        "yaml-syntax-error",
        {"c.yaml": cluster().replace("  location: westeurope", "  location: [westeurope")},
        [
            (
                "c.yaml",
                9,
                "",
                "expected ',' or ']', but got ':' (while parsing a flow sequence that starts at line 8)",
            )
        ],
    ),
    Case(
        "document-not-a-mapping",
        {"c.yaml": cluster() + "---\n- just\n- a list\n"},
        [("c.yaml", 16, "", "must be a mapping")],
    ),
    Case(
        "workspace-id-wrong-type",
        {"c.yaml": cluster(), "w.yaml": wset("apps", "cmkprod01", [ws("a"), storage("notaworkspace")])},
        [("w.yaml", 9, "spec.workspaces[1]", "expected a Microsoft.OperationalInsights/workspaces")],
    ),
    Case(
        "workspace-id-garbage",
        {"c.yaml": cluster(), "w.yaml": wset("apps", "cmkprod01", ["law-a"])},
        [("w.yaml", 8, "spec.workspaces[0]", "is not an ARM resource id")],
    ),
    Case(
        "B1-byos-not-a-storage-account",
        {
            "c.yaml": cluster(),
            "w.yaml": wset("apps", "cmkprod01", [f"id: {ws('a')}\n      byos:\n        query: {ws('b')}"]),
        },
        [("w.yaml", 10, "spec.workspaces[0].byos.query", "expected a Microsoft.Storage/storageAccounts")],
    ),
    Case(
        "byos-unknown-data-source",
        {
            "c.yaml": cluster(),
            "w.yaml": wset(
                "apps", "cmkprod01", [f"id: {ws('a')}\n      byos:\n        ingestion: {storage('s')}"]
            ),
        },
        [("w.yaml", 10, "spec.workspaces[0].byos.ingestion", "allowed: query, alerts, allowSavedSearchLoss")],
    ),
    Case(
        "workspace-entry-missing-id",
        {"c.yaml": cluster(), "w.yaml": wset("apps", "cmkprod01", ["byos: {}"])},
        [("w.yaml", 8, "spec.workspaces[0].id", "required field")],
    ),
    Case(
        "W2-workspace-listed-twice-across-files",
        {
            "c.yaml": cluster() + "---\n" + cluster("cmkprod02"),
            "team-a.yaml": wset("team-a", "cmkprod01", [ws("a"), ws("shared")]),
            "team-b.yaml": wset("team-b", "cmkprod02", [ws("SHARED")]),
        },
        [
            (
                "team-b.yaml",
                8,
                "spec.workspaces[0]",
                "listed twice: also in WorkspaceSet/team-a at {dir}/team-a.yaml:9",
            )
        ],
    ),
    Case(
        "same-azure-cluster-twice",
        {"a.yaml": cluster("cmkprod01"), "b.yaml": cluster("other", extra_spec="  name: CMKPROD01\n")},
        [("b.yaml", 15, "spec.name", "the same Azure cluster as Cluster/cmkprod01 at {dir}/a.yaml:1")],
    ),
    Case(
        "same-document-name-twice",
        {"a.yaml": wset("apps", None, [ws("a")]), "b.yaml": wset("apps", None, [ws("b")])},
        [("b.yaml", 4, "metadata.name", "WorkspaceSet/apps is declared twice: also at {dir}/a.yaml:4")],
    ),
    Case(
        "workspace-set-unknown-cluster",
        {"c.yaml": cluster(), "w.yaml": wset("apps", "cmkprod1", [ws("a")])},
        [("w.yaml", 6, "spec.cluster", "no Cluster document named 'cmkprod1' (known: cmkprod01)")],
    ),
    Case(
        "two-settings-documents",
        {"s1.yaml": SETTINGS_CURRENT, "s2.yaml": SETTINGS_CURRENT.replace("name: s", "name: t")},
        [("s2.yaml", 2, "kind", "a second Settings document (the first is Settings/s at {dir}/s1.yaml:1)")],
    ),
    Case(
        "W1-more-than-1000-workspaces",
        {
            "c.yaml": cluster(),
            "a.yaml": wset("a", "cmkprod01", [ws(f"a{i}") for i in range(600)]),
            "b.yaml": wset("b", "cmkprod01", [ws(f"b{i}", SUB2) for i in range(401)]),
        },
        [
            (
                "b.yaml",
                7,
                "spec.workspaces",
                "would have 1001 linked workspaces (from WorkspaceSet/a, WorkspaceSet/b)",
            )
        ],
    ),
    Case(
        "not-utf8",
        {},
        [("c.yaml", 2, "", "not UTF-8 text")],
        raw={"c.yaml": b"apiVersion: cmk.azure.io/v1\nkind: Clus\xe9ter\n"},
    ),
    Case(
        "deep-nesting",
        {"c.yaml": cluster(extra_spec="  tags: " + "[" * 200 + "]" * 200 + "\n")},
        [("c.yaml", 15, "", "nesting deeper than 32 levels")],
    ),
    Case(
        "problems-in-several-files-all-reported",
        {"a.yaml": cluster("ab"), "b.yaml": cluster("cmkprod09", capacity="7")},
        [("a.yaml", 4, "metadata.name", "rule C1"), ("b.yaml", 11, "spec.capacity", "rule C3")],
    ),
    # ARM name segments: Azure's own patterns, before anything builds a request path from them
    *[
        Case(
            f"resource-group-{label}",
            {"c.yaml": cluster().replace("  resourceGroup: rg-mon", f"  resourceGroup: {rg}")},
            [("c.yaml", 7, "spec.resourceGroup", fragment)],
        )
        for label, rg, fragment in [
            ("slash", "a/b", "1-90 characters: letters, digits and -_.() not ending in '.'"),
            ("dot-dot", "'..'", "not ending in '.'"),
            ("dot", "'.'", "not ending in '.'"),
            ("too-long", "r" * 91, "at most 90 characters"),
            ("cyrillic-lookalike", "rg-m\u043en", "U+043E CYRILLIC SMALL LETTER O"),
        ]
    ],
    Case(
        "resource-group-bidi-override",
        {"c.yaml": cluster().replace("  resourceGroup: rg-mon", '  resourceGroup: "rg-\u202emon"')},
        [("c.yaml", 7, "spec.resourceGroup", "invisible or control character U+202E")],
    ),
    Case(
        "metadata-name-bidi-override",
        {"c.yaml": cluster().replace("  name: cmkprod01", '  name: "cmk\u202eprod01"')},
        [("c.yaml", 4, "metadata.name", "U+202E")],
    ),
    Case(
        "location-lookalike",
        {"c.yaml": cluster().replace("  location: westeurope", "  location: w\u0435steurope")},
        [("c.yaml", 8, "spec.location", "U+0435 CYRILLIC SMALL LETTER IE")],
    ),
    Case(
        "tag-bidi-override",
        {"c.yaml": cluster(extra_spec='  tags:\n    team: "pay\u202ements"\n')},
        [("c.yaml", 15, "spec.tags", "tag 'team' contains the invisible or control character U+202E")],
    ),
    *[
        Case(
            f"workspace-id-{label}",
            {"c.yaml": cluster(), "w.yaml": wset("apps", "cmkprod01", [wid])},
            [("w.yaml", 8, "spec.workspaces[0]", fragment)],
        )
        for label, wid, fragment in [
            ("dot-dot-rg", ws("x").replace("rg-apps", ".."), "'..'"),
            ("underscore", ws("law_1"), "workspace names are 4-63 characters: letters, digits and hyphens"),
            ("trailing-hyphen", ws("apps-"), "starting and ending with a letter or digit"),
            # Azure's minimum length: the REST spec's workspace name is 4-63 characters
            ("too-short", ws("abcd").replace("/abcd", "/law"), "'law' is not valid (workspace names are 4"),
            ("rg-trailing-dot", ws("apps").replace("rg-apps", "rg."), "not ending in '.'"),
            ("homoglyph", ws("p\u0430yments"), "U+0430 CYRILLIC SMALL LETTER A"),
            ("zero-width", ws("pay\u200bments"), "U+200B"),
        ]
    ],
    Case(
        "storage-account-uppercase",
        {
            "c.yaml": cluster(),
            "w.yaml": wset("apps", "cmkprod01", []).replace(
                "  workspaces:\n",
                f"  workspaces:\n    - id: {ws('law1')}\n"
                f"      byos:\n        alerts: {storage('StAlerts')}\n",
            ),
        },
        [("w.yaml", 10, "spec.workspaces[0].byos.alerts", "storage account names are 3-24 lowercase")],
    ),
    Case(
        "storage-account-too-short",
        {
            "c.yaml": cluster(),
            "w.yaml": wset("apps", "cmkprod01", []).replace(
                "  workspaces:\n",
                f"  workspaces:\n    - id: {ws('law1')}\n"
                f"      byos:\n        query: {storage('st')}\n",
            ),
        },
        [("w.yaml", 10, "spec.workspaces[0].byos.query", "name 'st' is not valid (storage account names")],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_spec_names_file_line_field(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for rel, text in case.files.items():
        (tmp_path / rel).write_text(text, encoding="utf-8")
    for rel, data in case.raw.items():
        (tmp_path / rel).write_bytes(data)

    code = main(["validate", str(tmp_path)])

    out = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out.err + out.out
    assert "\u202e" not in out.err and "\u200b" not in out.err  # bidi / invisible characters escaped
    assert out.out == ""
    lines = out.err.splitlines()
    for rel, line, field_path, fragment in case.expected:
        where = f"{tmp_path}/{rel}:{line}: " if line is not None else f"{tmp_path}/{rel}"
        head = where + (f"{field_path}: " if field_path else "")
        fragment = fragment.replace("{dir}", str(tmp_path))
        matching = [m for m in lines if m.startswith(head) and fragment in m]
        assert matching, f"expected a line starting {head!r} containing {fragment!r}; got:\n{out.err}"


def test_too_short_names_are_refused_by_cmkctl_validate(tmp_path: Path) -> None:
    """`cmkctl validate` (the CLI, as CI runs it): a workspace and a storage account name shorter than
    Azure allows are named with file, line and field, before any plan promises them."""
    import subprocess
    import sys

    short_ws = ws("abcd").replace("/abcd", "/law")
    (tmp_path / "c.yaml").write_text(cluster(), encoding="utf-8")
    (tmp_path / "w.yaml").write_text(
        wset("apps", "cmkprod01", []).replace(
            "  workspaces:\n",
            f"  workspaces:\n    - id: {short_ws}\n      byos:\n        alerts: {storage('st')}\n",
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli", "validate", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    w = tmp_path / "w.yaml"
    assert f"{w}:8: spec.workspaces[0].id: " in done.stderr and "(workspace names are 4-63" in done.stderr
    assert f"{w}:10: spec.workspaces[0].byos.alerts: " in done.stderr, done.stderr
    assert "storage account names are 3-24" in done.stderr, done.stderr

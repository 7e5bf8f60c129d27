"""`cmkctl validate` in a real process: every problem of every document in one run, messages that say
what to do, and `-f PATH` as well as positional paths.

Line numbers in the expectations are the lines of the YAML texts below (1-based).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUB = "3f2a6c1e-7b4d-4c2a-9e51-0a8b6d2f4c11"
WS = f"/subscriptions/{SUB}/resourceGroups/rg-apps/providers/Microsoft.OperationalInsights/workspaces"


def cmkctl(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CMKCTL_", "AZURE_"))}
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def cluster(name: str, *, spec: str) -> str:
    """A Cluster document: line 4 is the name, `spec` starts at line 6."""
    return f"apiVersion: cmk.azure.io/v1\nkind: Cluster\nmetadata:\n  name: {name}\nspec:\n{spec}"


GOOD_SPEC = (
    f"  subscription: {SUB}\n"  # 6
    "  resourceGroup: rg-mon\n"  # 7
    "  location: westeurope\n"  # 8
    "  identity:\n"  # 9
    "    type: SystemAssigned\n"  # 10
    "  capacity: 1000\n"  # 11
)


def lines_of(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr
    return proc.stderr.splitlines()


def has(lines: list[str], head: str, fragment: str) -> bool:
    return any(line.startswith(head) and fragment in line for line in lines)


def test_a_duplicate_key_and_a_schema_error_hide_no_other_problem_of_the_file(tmp_path: Path) -> None:
    """One document with a duplicate key, an unknown field and a missing capacity still gets its
    rule checks (C1 on its name); the document after it in the same file gets all of its own."""
    spec = tmp_path / "clusters.yaml"
    spec.write_text(
        cluster(
            "ab",  # rule C1: too short
            spec=(
                f"  subscription: {SUB}\n"  # 6
                "  resourceGroup: rg-mon\n"  # 7
                "  location: westeurope\n"  # 8
                "  resourceGroup: rg-other\n"  # 9 duplicate key
                "  identity:\n"  # 10
                "    type: SystemAssigned\n"  # 11
                "  capacty: 1000\n"  # 12 typo: capacity is missing
            ),
        )
        + "---\n"  # 13
        + "apiVersion: cmk.azure.io/v1\n"  # 14
        + "kind: WorkspaceSet\n"  # 15
        + "metadata:\n"  # 16
        + "  name: apps\n"  # 17
        + "spec:\n"  # 18
        + "  cluster: ab\n"  # 19
        + "  workspaces:\n"  # 20
        + "    - law-not-an-id\n"  # 21
        + f"    - {WS}/law-a\n"  # 22
        + f"    - {WS}/LAW-A\n"  # 23 rule W2, after a malformed item
        + "  cluster: cd\n"  # 24 duplicate key
    )

    proc = cmkctl("validate", str(spec))

    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = lines_of(proc)
    at = f"{spec}:"
    expected = [
        (f"{at}4: metadata.name: ", "rule C1"),
        (f"{at}5: spec.capacity: ", "required field is missing"),
        (f"{at}9: spec.resourceGroup: ", "duplicate key 'resourceGroup' (first at line 7)"),
        (f"{at}12: spec.capacty: ", "did you mean 'capacity'?"),
        (f"{at}21: spec.workspaces[0]: ", "is not an ARM resource id"),
        (f"{at}23: spec.workspaces[2]: ", f"listed twice: also in WorkspaceSet/apps at {at}22"),
        (f"{at}24: spec.cluster: ", "duplicate key 'cluster' (first at line 19)"),
    ]
    for head, fragment in expected:
        assert has(lines, head, fragment), f"no line {head!r}...{fragment!r} in:\n{proc.stderr}"
    assert lines[-1] == f"{len(expected)} problem(s) in 1 file(s); fix them and run validate again"


def test_rule_checks_run_on_a_document_whose_schema_is_wrong(tmp_path: Path) -> None:
    """A bad subscription id does not hide C3 (capacity) of the same cluster; a cluster needing the
    C12 opt-in still has its name checked; a workspace set whose cluster document has errors is not
    told its cluster is unknown, while a real unknown reference is still reported."""
    (tmp_path / "a.yaml").write_text(
        cluster("cmkprod01", spec=GOOD_SPEC.replace(SUB, "not-a-guid").replace("1000", "7"))
    )
    (tmp_path / "b.yaml").write_text(cluster("x", spec=GOOD_SPEC.replace("SystemAssigned", "None")))
    (tmp_path / "c.yaml").write_text(
        "apiVersion: cmk.azure.io/v1\nkind: WorkspaceSet\nmetadata:\n  name: apps\nspec:\n"
        f"  cluster: cmkprod01\n  workspaces:\n    - {WS}/law-a\n"
        "---\n"
        "apiVersion: cmk.azure.io/v1\nkind: WorkspaceSet\nmetadata:\n  name: other\nspec:\n"
        f"  cluster: cmkprod1\n  workspaces:\n    - {WS}/law-b\n"
    )

    proc = cmkctl("validate", "-f", str(tmp_path))

    assert proc.returncode == 1
    lines = lines_of(proc)
    assert has(lines, f"{tmp_path / 'a.yaml'}:6: spec.subscription: ", "is not a subscription id")
    assert has(lines, f"{tmp_path / 'a.yaml'}:11: spec.capacity: ", "rule C3")  # C3
    assert has(lines, f"{tmp_path / 'b.yaml'}:5: spec: ", "rule C12")  # C12
    assert has(lines, f"{tmp_path / 'b.yaml'}:4: metadata.name: ", "rule C1")  # C1
    assert has(lines, f"{tmp_path / 'c.yaml'}:15: spec.cluster: ", "no Cluster document named 'cmkprod1'")
    assert not any("named 'cmkprod01'" in line for line in lines)


def test_documents_before_a_syntax_error_are_still_checked(tmp_path: Path) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text(cluster("ab", spec=GOOD_SPEC) + "---\nkind: [Cluster\n")

    lines = lines_of(proc := cmkctl("validate", str(spec)))

    assert proc.returncode == 1
    assert has(lines, f"{spec}:4: metadata.name: ", "rule C1")
    assert has(lines, f"{spec}:14: ", "invalid YAML")


def test_a_merge_key_or_an_unreadable_value_hides_nothing_else(tmp_path: Path) -> None:
    """Both are refused and reported once (not again as a missing field); the rest of the document
    is still checked (C1 on its name), and so is the next document."""
    spec = tmp_path / "c.yaml"
    spec.write_text(
        cluster("ab", spec=GOOD_SPEC.replace("  capacity: 1000\n", "  capacity: !!int 1x\n"))  # 11
        + "  tags: {<<: {team: a}}\n"  # 12
        + "---\n"  # 13
        + cluster("cd", spec=GOOD_SPEC)  # 17: name
    )

    lines = lines_of(proc := cmkctl("validate", str(spec)))

    assert proc.returncode == 1
    assert has(lines, f"{spec}:11: spec.capacity: ", "cannot read this value")
    assert has(lines, f"{spec}:12: spec.tags: ", "YAML merge keys (<<) are not allowed")
    assert has(lines, f"{spec}:4: metadata.name: ", "rule C1")
    assert has(lines, f"{spec}:17: metadata.name: ", "rule C1")
    assert not any("spec.capacity: required field is missing" in line for line in lines)
    assert lines[-1].startswith("4 problem(s) in 1 file(s)")


def test_a_full_key_uri_in_vault_uri_says_how_to_split_it(tmp_path: Path) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text(
        cluster(
            "cmkprod01",
            spec=GOOD_SPEC + "  key:\n    vaultUri: https://v.vault.azure.net/keys/k/abc123\n    name: k\n",
        )
    )

    lines = lines_of(proc := cmkctl("validate", str(spec)))

    assert proc.returncode == 1
    assert has(
        lines,
        f"{spec}:13: spec.key.vaultUri: ",
        "is a key URI, not a vault URI: split it into vaultUri: https://v.vault.azure.net/, "
        "name: k, version: abc123",
    )


def test_a_workspace_guid_says_which_resource_id_to_write(tmp_path: Path) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text(
        "apiVersion: cmk.azure.io/v1\nkind: WorkspaceSet\nmetadata:\n  name: apps\nspec:\n"
        f"  workspaces:\n    - {SUB}\n    - id: {SUB.upper()}\n"
    )

    lines = lines_of(proc := cmkctl("validate", str(spec)))

    assert proc.returncode == 1
    form = "/subscriptions/<sub>/resourceGroups/<rg>/providers/"
    form += "Microsoft.OperationalInsights/workspaces/<name>"
    hint = f"customer id?), not the workspace's resource id: write {form}"
    assert has(lines, f"{spec}:7: spec.workspaces[0]: ", hint)
    assert has(lines, f"{spec}:8: spec.workspaces[1].id: ", form)


def test_validate_takes_dash_f_and_positional_paths_alike() -> None:
    fleet = ROOT / "examples" / "fleet"
    by_argument = cmkctl("validate", str(fleet))
    by_option = cmkctl("validate", "-f", str(fleet))
    mixed = cmkctl("validate", "--file", str(fleet / "clusters"), str(fleet / "teams" / "nonprod.yaml"))

    assert by_argument.returncode == by_option.returncode == mixed.returncode == 0
    assert by_option.stdout == by_argument.stdout
    assert by_option.stdout.startswith("OK: 3 cluster(s)")
    assert "5 linked workspace(s)" in mixed.stdout


def test_validate_without_any_path_is_a_usage_error() -> None:
    proc = cmkctl("validate")

    assert proc.returncode == 2
    assert "Missing argument 'PATH...'" in proc.stderr and "-f PATH" in proc.stderr
    assert "Traceback" not in proc.stderr

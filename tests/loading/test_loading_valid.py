"""Valid specs load into the DesiredState the planner consumes; caps and discovery behave as documented."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from controller.errors import SpecError
from controller.loading import LoadLimits, load
from controller.loading.yamlsafe import MAX_NOTES_PER_FILE
from controller.model import ids
from controller.model.spec import DriftMode, LimitsProfile

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "examples" / "fleet"
MINIMAL = ROOT / "examples" / "minimal"
SUB = "0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a41"


def cluster_doc(name: str, capacity: int = 1000) -> str:
    return f"""apiVersion: cmk.azure.io/v1
kind: Cluster
metadata:
  name: {name}
spec:
  subscription: {SUB}
  resourceGroup: rg
  location: West Europe
  identity:
    type: SystemAssigned
  capacity: {capacity}
"""


def problems_of(err: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return [str(p) for p in err.value.problems]


def test_fleet_example_is_the_estate_later_work_relies_on() -> None:
    desired = load([FLEET])

    assert {c.metadata.name for c in desired.clusters} == {"prod-weu", "prod-eus", "nonprod-weu"}
    assert len(desired.subscriptions()) == 2
    assert {c.spec.location for c in desired.clusters} == {"westeurope", "eastus"}
    assert len(desired.workspace_entries()) == 20
    assert len(desired.desired_links()) == 18  # two workspaces manage BYOS only
    keys = [c.spec.key for c in desired.clusters if c.spec.key is not None]
    assert len(keys) == 3
    assert sum(1 for k in keys if k.version) == 1
    assert any(k.ref().is_managed_hsm for k in keys)
    byos = [e.byos for e in desired.workspace_entries().values() if e.byos is not None]
    assert any(b.query for b in byos) and any(b.alerts for b in byos)
    assert desired.settings.limits_profile is LimitsProfile.CURRENT
    assert desired.settings.drift is DriftMode.REPORT


def test_sources_point_at_the_declaring_file_and_line() -> None:
    desired = load([FLEET])

    where = desired.sources["WorkspaceSet/checkout-nonprod"]
    assert where.file.endswith("teams/nonprod.yaml")
    assert Path(where.file).read_text().splitlines()[where.line - 1] == "apiVersion: cmk.azure.io/v1"


def test_a_tree_loads_deterministically_and_each_file_once() -> None:
    first = load([FLEET])
    again = load([FLEET])
    # a directory and a file inside it: the file is read once, not reported as declared twice
    overlap = load([FLEET, FLEET / "teams" / "nonprod.yaml"])

    assert first.model_dump() == again.model_dump() == overlap.model_dump()
    names = [c.metadata.name for c in first.clusters]
    assert names == ["nonprod-weu", "prod-eus", "prod-weu"]  # clusters/ files in sorted order


def test_hidden_directories_are_not_part_of_the_spec(tmp_path: Path) -> None:
    shutil.copytree(MINIMAL, tmp_path / "spec")
    (tmp_path / "spec" / ".github").mkdir()
    (tmp_path / "spec" / ".github" / "ci.yaml").write_text("on: push\n")

    assert len(load([tmp_path / "spec"]).clusters) == 1


def test_minimal_example_loads_with_default_settings() -> None:
    desired = load([MINIMAL])

    assert len(desired.clusters) == 1
    assert len(desired.desired_links()) == 2
    assert desired.settings.limits_profile is LimitsProfile.CURRENT  # today's Azure unless Settings says seed
    assert desired.settings.prune.clusters is False


def test_location_and_casing_are_normalised(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text(cluster_doc("cmkone"))

    desired = load([tmp_path / "c.yml"])

    assert desired.clusters[0].spec.location == "westeurope"
    assert desired.clusters[0].arm_id == ids.cluster_id(SUB, "rg", "cmkone")


def test_default_profile_accepts_small_tiers_the_seed_profile_refuses(tmp_path: Path) -> None:
    """Rule C3: with no Settings, today's tiers apply (100 is one); the seed profile wants 1000+."""
    (tmp_path / "c.yaml").write_text(cluster_doc("cmkone", capacity=100))
    assert load([tmp_path]).clusters[0].spec.capacity == 100

    (tmp_path / "settings.yaml").write_text(
        "apiVersion: cmk.azure.io/v1\nkind: Settings\nmetadata: {name: s}\nspec: {limitsProfile: seed}\n"
    )
    with pytest.raises(SpecError) as err:
        load([tmp_path])
    problems = problems_of(err)
    assert any("spec.capacity" in p and "'seed' limits profile" in p and "rule C3" in p for p in problems)


def test_hyphenated_cluster_name_with_capacity_100_loads_under_the_default_profile(tmp_path: Path) -> None:
    """Rules C1 and C3 as Azure enforces them today: inner hyphens are valid, 100 GB/day is a tier."""
    (tmp_path / "c.yaml").write_text(cluster_doc("cmk-prod-weu-01", capacity=100))

    desired = load([tmp_path])

    assert desired.clusters[0].azure_name == "cmk-prod-weu-01"
    assert desired.clusters[0].spec.capacity == 100
    assert desired.settings.limits_profile is LimitsProfile.CURRENT


def test_file_size_cap_is_configurable(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(cluster_doc("cmkone") + "#" * 500 + "\n")

    with pytest.raises(SpecError) as err:
        load([tmp_path], LoadLimits(max_bytes=400))
    assert "larger than the 400-byte limit" in problems_of(err)[0]
    assert len(load([tmp_path]).clusters) == 1  # the default cap is far above real specs


def test_document_count_cap(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("---\n".join(cluster_doc(f"cmk{i:03}") for i in range(4)))

    with pytest.raises(SpecError) as err:
        load([tmp_path], LoadLimits(max_documents=3))
    assert "more than 3 documents" in problems_of(err)[0]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "no *.yaml or *.yml files here"),
        (lambda d: (d / "notes.yaml").write_text("# only a comment\n---\n"), "no spec documents found"),
        (lambda d: (d / "x.yaml").write_text("42\n"), "must be a mapping"),
    ],
    ids=["empty-dir", "comments-only", "scalar-document"],
)
def test_nothing_to_load_is_an_error(tmp_path: Path, setup: object, message: str) -> None:
    setup(tmp_path)  # type: ignore[operator]
    with pytest.raises(SpecError) as err:
        load([tmp_path])
    assert any(message in p for p in problems_of(err))


def test_missing_path_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    shutil.copytree(MINIMAL, tmp_path / "spec")
    with pytest.raises(SpecError) as err:
        load([tmp_path / "spec", tmp_path / "nope.yaml"])
    assert problems_of(err) == [f"{tmp_path / 'nope.yaml'}: no such file or directory"]


def test_a_device_is_not_read_as_a_spec() -> None:
    with pytest.raises(SpecError) as err:
        load([Path("/dev/zero")])
    assert problems_of(err) == ["/dev/zero: not a regular file or directory"]


def test_integer_with_thousands_of_digits_is_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        cluster_doc("cmkone", capacity=0).replace("capacity: 0", "capacity: " + "9" * 6000)
    )

    with pytest.raises(SpecError) as err:
        load([tmp_path])
    assert problems_of(err)[0].startswith(f"{tmp_path / 'c.yaml'}:11: ")


def test_yaml_anchor_without_alias_is_harmless(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        cluster_doc("cmkone").replace("resourceGroup: rg", "resourceGroup: &rg rg")
    )

    assert load([tmp_path]).clusters[0].spec.resource_group == "rg"


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lol = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lol += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lol) + "\n")

    started = time.process_time()
    with pytest.raises(SpecError) as err:
        load([tmp_path])
    assert time.process_time() - started < 1.0  # never expanded
    aliases = [p for p in problems_of(err) if "YAML aliases (*name) are not allowed" in p]
    # each alias is reported where it stands (at most MAX_NOTES_PER_FILE per file), none followed
    assert len(aliases) == min(8 * 9, MAX_NOTES_PER_FILE)
    assert aliases[0].startswith(f"{tmp_path / 'bomb.yaml'}:2: b[0]: ")

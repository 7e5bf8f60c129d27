"""A spec tree from a pull request is bounded as a whole, cannot reach outside itself through a
symbolic link, and an unrecognised document's values are not repeated back to the user.

Through the real CLI entry point (`cmkctl validate`), as a user or CI runs it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controller.cli.app import main
from controller.errors import SpecError
from controller.loading import LoadLimits, load
from controller.loading.loader import MAX_TOTAL_BYTES
from controller.loading.yamlsafe import ReadLimits

SUB = "0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a41"


def cluster_doc(name: str) -> str:
    return (
        "apiVersion: cmk.azure.io/v1\n"  # 1
        "kind: Cluster\n"  # 2
        "metadata:\n"  # 3
        f"  name: {name}\n"  # 4
        "spec:\n"  # 5
        f"  subscription: {SUB}\n"
        "  resourceGroup: rg\n"
        "  location: westeurope\n"
        "  identity:\n"
        "    type: SystemAssigned\n"
        "  capacity: 1000\n"
    )


def validate(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, str]:
    code = main(["validate", *map(str, paths)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out + captured.err


# -- the whole tree is bounded -------------------------------------------------------------------


def test_files_just_under_the_per_file_cap_cannot_add_up_past_the_tree_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four files of almost 5 MB each: the fourth would take the tree past MAX_TOTAL_BYTES, so it is
    refused by name before it is read, and nothing after it is read either."""
    per_file = ReadLimits().max_bytes - 1024
    spec = tmp_path / "spec"
    spec.mkdir()
    for i, name in enumerate(("a.yaml", "b.yaml", "c.yaml", "d.yaml")):
        text = cluster_doc(f"cmkbig{i}")
        (spec / name).write_text(text + ("#" * 1023 + "\n") * ((per_file - len(text)) // 1024))
    (spec / "e.yaml").write_text("kind: [unclosed\n")  # would be a problem, if it were read
    assert 3 * per_file < MAX_TOTAL_BYTES < 4 * per_file

    started = time.monotonic()
    code, out = validate(capsys, spec)

    assert code == 1
    assert f"{spec / 'd.yaml'}: with this file the spec tree is" in out
    assert f"more than the {MAX_TOTAL_BYTES}-byte limit for a whole tree (MAX_TOTAL_BYTES)" in out
    assert "e.yaml" not in out
    assert time.monotonic() - started < 30


def test_the_document_count_is_bounded_across_files(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"c{i}.yaml").write_text(cluster_doc(f"cmk{i}a") + "---\n" + cluster_doc(f"cmk{i}b"))

    with pytest.raises(SpecError) as err:
        load([tmp_path], LoadLimits(max_total_documents=5))

    messages = [str(p) for p in err.value.problems]
    assert messages == [
        f"{tmp_path / 'c2.yaml'}:1: the spec tree has more than 5 documents, the limit for a whole tree "
        "(MAX_TOTAL_DOCUMENTS); nothing from here on was read"
    ]
    assert len(load([tmp_path], LoadLimits(max_total_documents=6)).clusters) == 6


# -- symbolic links ------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A valid spec outside the tree: loading it would declare a cluster nobody reviewed."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "rogue.yaml").write_text(cluster_doc("cmkrogue"))
    return elsewhere


def test_a_link_to_a_file_outside_the_tree_is_refused_by_name(
    tmp_path: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "ok.yaml").write_text(cluster_doc("cmkok"))
    (spec / "shared.yaml").symlink_to(outside / "rogue.yaml")

    code, out = validate(capsys, spec)

    assert code == 1
    assert f"{spec / 'shared.yaml'}: symbolic link does not resolve to a place inside {spec}: refused" in out
    assert "cmkrogue" not in out and str(outside) not in out


def test_a_link_to_a_directory_outside_the_tree_is_refused(
    tmp_path: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec"
    (spec / "teams").mkdir(parents=True)
    (spec / "ok.yaml").write_text(cluster_doc("cmkok"))
    (spec / "teams" / "more").symlink_to(outside, target_is_directory=True)

    code, out = validate(capsys, spec)

    assert code == 1
    assert f"{spec / 'teams' / 'more'}: symbolic link does not resolve to a place inside {spec}" in out


def test_links_that_stay_inside_the_tree_are_followed(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    (spec / "common").mkdir(parents=True)
    (spec / "common" / "c.yaml").write_text(cluster_doc("cmkshared"))
    (spec / "team").mkdir()
    (spec / "team" / "c.yaml").symlink_to(Path("..") / "common" / "c.yaml")  # the same file twice
    (spec / "team" / "loop").symlink_to(Path(".."), target_is_directory=True)  # a cycle, cut
    (spec / "notes.md").symlink_to("/etc/passwd")  # not a spec file: never read, not a problem

    desired = load([spec])

    assert [c.metadata.name for c in desired.clusters] == ["cmkshared"]


def test_a_link_loop_is_refused_not_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "ok.yaml").write_text(cluster_doc("cmkok"))
    (spec / "a.yaml").symlink_to(spec / "b.yaml")
    (spec / "b.yaml").symlink_to(spec / "a.yaml")

    code, out = validate(capsys, spec)

    assert code == 1
    assert f"{spec / 'a.yaml'}: symbolic link does not resolve" in out


def test_a_file_named_on_the_command_line_is_read_where_it_points(tmp_path: Path, outside: Path) -> None:
    """Locally, a link the user names themselves is their choice; only links met inside a
    directory are bounded by it."""
    link = tmp_path / "mine.yaml"
    link.symlink_to(outside / "rogue.yaml")

    assert [c.metadata.name for c in load([link]).clusters] == ["cmkrogue"]


def test_with_a_root_every_path_must_resolve_inside_it(tmp_path: Path, outside: Path) -> None:
    """The controller passes its checkout as the root: links inside the checkout but outside the
    spec directory are fine, anything leaving the checkout is not."""
    checkout = tmp_path / "checkout"
    (checkout / "specs").mkdir(parents=True)
    (checkout / "shared").mkdir()
    (checkout / "shared" / "c.yaml").write_text(cluster_doc("cmkshared"))
    (checkout / "specs" / "c.yaml").symlink_to(Path("..") / "shared" / "c.yaml")

    assert [c.metadata.name for c in load([checkout / "specs"], root=checkout).clusters] == ["cmkshared"]

    (checkout / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SpecError) as err:
        load([checkout / "escape"], root=checkout)
    assert [str(p) for p in err.value.problems] == [
        f"{checkout / 'escape'}: symbolic link does not resolve to a place inside the repository: refused "
        "(spec files are read only from inside the tree, so a committed link cannot pull in other files)"
    ]


# -- values of unrecognised documents ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
        ("kind", "Cluster\x1b[2J\x1b[31mrm -rf"),
        ("kind", "x" * 5000),
        ("apiVersion", "sk-live-4f9c2d1e8b7a6f5e4d3c2b1a"),
    ],
)
def test_an_unrecognised_kind_or_api_version_is_not_repeated(
    field: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = cluster_doc("cmkone")
    text = (
        text.replace("kind: Cluster", f'kind: "{value}"')
        if field == "kind"
        else text.replace("apiVersion: cmk.azure.io/v1", f'apiVersion: "{value}"')
    )
    text = text.replace("\x1b", "\\e")  # YAML's escape for ESC, so the file holds it as a value
    (tmp_path / "c.yaml").write_text(text)

    code, out = validate(capsys, tmp_path)

    line = 2 if field == "kind" else 1
    assert code == 1
    assert f"{tmp_path / 'c.yaml'}:{line}: {field}: unknown {field}; must be" in out
    assert f"an unrecognised value of {len(value)} characters, not shown" in out
    assert value[:12] not in out and "\x1b" not in out


def test_a_near_miss_of_a_kind_is_shown_as_a_typo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.yaml").write_text(cluster_doc("cmkone").replace("kind: Cluster", "kind: WorkspaceSett"))
    (tmp_path / "d.yaml").write_text(cluster_doc("cmktwo").replace("kind: Cluster", "kind: [1, 2]"))

    code, out = validate(capsys, tmp_path)

    assert code == 1
    assert (
        "c.yaml:2: kind: unknown kind; must be one of Cluster, WorkspaceSet, Settings (got 'WorkspaceSett')"
        in out
    )
    assert "d.yaml:2: kind: unknown kind; must be one of Cluster, WorkspaceSet, Settings (got a list)" in out

"""The git source: real repositories, clone once then fetch; force-pushes followed; secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitops_repo import GitRepo

from controller.reconcile.source import DirectorySource, GitSource, SourceError, open_source, redact


def test_clones_once_then_follows_new_commits_and_force_pushes(repo: GitRepo, tmp_path: Path) -> None:
    first = repo.commit_spec("a: 1\n", "one")
    src = GitSource(repo.url, ref="main", path="specs", workdir=tmp_path / "work")
    got = src.fetch()
    assert got.revision == first
    assert (got.spec_dir / "estate.yaml").read_text() == "a: 1\n"

    second = repo.commit_spec("a: 2\n", "two")
    assert src.fetch().revision == second
    assert (got.spec_dir / "estate.yaml").read_text() == "a: 2\n"

    repo.git("reset", "--hard", first)  # upstream rewrote history: follow it, don't merge
    assert src.fetch().revision == first
    assert (got.spec_dir / "estate.yaml").read_text() == "a: 1\n"


def test_a_tag_ref_and_a_local_edit_in_the_clone_is_discarded(repo: GitRepo, tmp_path: Path) -> None:
    tagged = repo.commit_spec("a: 1\n", "one")
    repo.git("tag", "v1")
    repo.commit_spec("a: 2\n", "two")
    src = GitSource(repo.url, ref="v1", path="specs", workdir=tmp_path / "work")
    got = src.fetch()
    assert got.revision == tagged
    (got.spec_dir / "estate.yaml").write_text("tampered\n")
    (got.spec_dir / "extra.yaml").write_text("x: 1\n")
    again = src.fetch()
    assert (again.spec_dir / "estate.yaml").read_text() == "a: 1\n"
    assert not (again.spec_dir / "extra.yaml").exists()


def test_a_local_repository_path_is_treated_as_git_not_as_its_working_tree(
    repo: GitRepo, tmp_path: Path
) -> None:
    committed = repo.commit_spec("a: 1\n", "one")
    (repo.root / "specs" / "estate.yaml").write_text("uncommitted: true\n")
    src = open_source(str(repo.root), ref="main", path="specs", workdir=tmp_path / "work")
    got = src.fetch()
    assert got.revision == committed
    assert (got.spec_dir / "estate.yaml").read_text() == "a: 1\n"


def test_unknown_ref_is_a_source_error_naming_the_ref(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit_spec("a: 1\n", "one")
    src = GitSource(repo.url, ref="no-such-branch", path="specs", workdir=tmp_path / "work")
    with pytest.raises(SourceError, match="no-such-branch"):
        src.fetch()


def test_credentials_in_the_url_never_appear_in_errors(tmp_path: Path) -> None:
    url = "https://bot:s3cr3t-token@127.0.0.1:9/org/specs.git"  # port 9: nothing listens
    src = GitSource(url, ref="main", workdir=tmp_path / "work")
    assert "s3cr3t" not in src.display
    with pytest.raises(SourceError) as caught:
        src.fetch()
    assert "s3cr3t" not in str(caught.value)
    assert "***@127.0.0.1" in str(caught.value)


def test_redact_removes_userinfo_everywhere() -> None:
    text = "fatal: unable to access 'https://user:pw@host/x.git/' and ssh://git:tok@h2/y"
    assert redact(text) == "fatal: unable to access 'https://***@host/x.git/' and ssh://***@h2/y"


@pytest.mark.parametrize("bad", ["../outside", "/etc", "specs/../../x"])
def test_path_must_stay_inside_the_source(bad: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="relative path"):
        GitSource("file:///nowhere", path=bad, workdir=tmp_path)


def test_ref_cannot_smuggle_options(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a branch"):
        GitSource("file:///nowhere", ref="--upload-pack=touch /tmp/x", workdir=tmp_path)


def test_a_plain_directory_revision_changes_with_its_content(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    root.mkdir()
    (root / "a.yaml").write_text("a: 1\n")
    src = DirectorySource(str(root))
    one = src.fetch().revision
    assert src.fetch().revision == one
    (root / "a.yaml").write_text("a: 2\n")
    assert src.fetch().revision != one

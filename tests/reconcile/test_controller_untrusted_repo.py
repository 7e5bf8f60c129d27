"""The controller against a real git repository whose commits try to reach outside it: a committed
symbolic link to a spec outside the checkout is refused by name and nothing is applied; a link that
stays inside the checkout is followed; `--path` cannot leave the checkout through a link; and the
value of an unknown `kind` never reaches /status."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops_repo import CLUSTER, GitRepo, MakeReconciler, seed, spec_docs

from controller.reconcile.source import DirectorySource, GitSource, SourceError

WRITE = ("PUT", "PATCH", "DELETE")


def _commit(repo: GitRepo, files: dict[str, str], links: dict[str, str], message: str) -> str:
    """Commit `files` (path -> text) and symbolic links (path -> target, stored as links by git)."""
    for rel, text in files.items():
        (repo.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo.root / rel).write_text(text, encoding="utf-8")
    for rel, target in links.items():
        (repo.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo.root / rel).symlink_to(target)
    repo.git("add", "-A")
    repo.git("commit", "--quiet", "-m", message)
    return repo.git("rev-parse", "HEAD")


def _stalled(rec: Any) -> dict[str, Any]:
    return next(c for c in rec.status.snapshot()["conditions"] if c["type"] == "Stalled")


def _writes(emulator: Any) -> list[str]:
    return [r["path"] for r in emulator.requests() if r["method"] in WRITE]


def test_a_committed_link_to_a_spec_outside_the_checkout_stalls_the_commit(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler, tmp_path: Path
) -> None:
    """The link points at a valid spec on the controller's disk (as a mounted volume would be):
    following it would apply a cluster nobody reviewed. The pass stalls naming the link, and
    Azure sees no write."""
    seed(emulator)
    rogue = tmp_path / "mounted" / "rogue.yaml"
    rogue.parent.mkdir()
    rogue.write_text(yaml.safe_dump_all(spec_docs(workspaces=("law2",)), sort_keys=False))
    bad = _commit(repo, {}, {"specs/estate.yaml": str(rogue)}, "link a spec from the host")

    rec = make_reconciler(repo.url)
    out = rec.run_pass()

    assert out.record.result == "stalled", out.record.message
    stalled = _stalled(rec)
    assert stalled["status"] == "True" and stalled["reason"] == "SpecInvalid"
    assert (
        "estate.yaml: symbolic link does not resolve to a place inside the repository" in stalled["message"]
    )
    assert str(rogue) not in json.dumps(rec.status.snapshot())
    assert rec.status.last_attempted_revision == bad and rec.status.last_applied_revision is None
    assert _writes(emulator) == []


def test_a_link_that_stays_inside_the_checkout_is_followed(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    """specs/estate.yaml -> ../shared/estate.yaml: outside --path but inside the repository."""
    seed(emulator)
    text = yaml.safe_dump_all(spec_docs(), sort_keys=False)
    good = _commit(
        repo, {"shared/estate.yaml": text}, {"specs/estate.yaml": "../shared/estate.yaml"}, "shared"
    )

    rec = make_reconciler(repo.url)
    out = rec.run_pass()

    assert out.record.result == "applied", out.record.message
    assert rec.status.last_applied_revision == good
    assert any(p.endswith(f"/clusters/{CLUSTER}") for p in _writes(emulator))


def test_path_cannot_leave_the_checkout_through_a_committed_link(repo: GitRepo, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "estate.yaml").write_text("a: 1\n")
    _commit(repo, {"README.md": "specs live elsewhere\n"}, {"specs": str(outside)}, "specs is a link")

    src = GitSource(repo.url, ref="main", path="specs", workdir=tmp_path / "work")
    with pytest.raises(SourceError, match=r"--path specs in .* is a symbolic link to a place outside"):
        src.fetch()


def test_a_plain_directory_source_never_reads_through_an_outside_link(tmp_path: Path) -> None:
    """The directory source's revision digests a link by its target path, not by the content it
    reaches (a link to a huge or secret file outside is never read), and the checkout's root is
    the directory, so the loader refuses the link."""
    outside = tmp_path / "secret.yaml"
    outside.write_text("a: 1\n")
    root = tmp_path / "dir"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "x.yaml").symlink_to(outside)
    src = DirectorySource(str(root), path="specs")

    first = src.fetch()
    outside.write_text("a: 2\n")

    assert src.fetch().revision == first.revision
    assert first.root == root


def test_an_unknown_kind_value_never_reaches_status(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
    docs = [*spec_docs(), {"apiVersion": "cmk.azure.io/v1", "kind": token, "metadata": {"name": "x"}}]
    seed(emulator)
    repo.commit_spec(docs, "a pasted token")

    rec = make_reconciler(repo.url)
    out = rec.run_pass()

    assert out.record.result == "stalled"
    message = _stalled(rec)["message"]
    assert re.search(r"estate\.yaml:\d+: kind: unknown kind; must be one of", message), message
    assert token not in json.dumps(rec.status.snapshot()) and token not in out.record.message

"""Credentials in a `--source` URL reach the git server and nothing else: not `.git/config`, not any
file under the state directory, not a user's credential store, not the output. Against a real
smart-HTTP git server (git http-backend) that refuses requests without Basic credentials."""

from __future__ import annotations

import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from git_http_server import GitHttpServer
from gitops_repo import GitRepo, seed, spec_docs

from controller.azure.clients import AzureClients
from controller.cli import controller_cmd
from controller.reconcile.loop import Mode
from controller.reconcile.source import GitSource, SourceError

USER = "bot"
PASSWORD = "s3cr3t:p@ss/w0rd"  # characters that must be percent-encoded in a URL
QUOTED = urllib.parse.quote(PASSWORD, safe="")


@pytest.fixture
def git_server(repo: GitRepo) -> Iterator[GitHttpServer]:
    with GitHttpServer(repo.root.parent, USER, PASSWORD) as server:
        yield server


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user whose git config has a `store` helper: git would write any password it used there."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return home


def _url(server: GitHttpServer, password: str = QUOTED) -> str:
    return f"http://{USER}:{password}@127.0.0.1:{server.port}/upstream"


def _files_holding_the_secret(root: Path) -> list[str]:
    secrets = (PASSWORD.encode(), QUOTED.encode())
    return [
        str(p) for p in root.rglob("*") if p.is_file() and any(s in p.read_bytes() for s in secrets)
    ]


def test_controller_clones_and_fetches_with_url_credentials_that_never_reach_disk_or_output(
    emulator: Any,
    clients: AzureClients,
    repo: GitRepo,
    git_server: GitHttpServer,
    isolated_home: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    seed(emulator)
    first = repo.commit_spec(spec_docs(capacity=2000), "cluster")
    state = tmp_path / "state"
    argv = {"source": _url(git_server), "path": "specs", "mode": Mode.REPORT, "state": f"local:{state}"}
    assert controller_cmd.run(**argv, once=True, clients=clients) == 0  # type: ignore[arg-type]
    second = repo.commit_spec(spec_docs(capacity=5000), "bigger")
    assert controller_cmd.run(**argv, once=True, clients=clients) == 0  # type: ignore[arg-type]
    out = capfd.readouterr()

    # the server demanded credentials and got the right ones, for the clone and for the fetch
    assert any(not ok for _, _, ok in git_server.seen.requests)
    assert sum(ok and "git-upload-pack" in path for _, path, ok in git_server.seen.requests) >= 2
    assert f'"lastAttemptedRevision": "{second}"' in out.out and first != second

    repo_dir = next(state.rglob(".git")).parent
    config = (repo_dir / ".git" / "config").read_text(encoding="utf-8")
    assert f"url = http://127.0.0.1:{git_server.port}/upstream" in config
    assert _files_holding_the_secret(state) == []
    assert _files_holding_the_secret(isolated_home) == []
    assert not (isolated_home / ".git-credentials").exists()
    for secret in (PASSWORD, QUOTED):
        assert secret not in out.out and secret not in out.err


def test_a_wrong_password_is_refused_without_showing_it(
    repo: GitRepo, git_server: GitHttpServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo.commit_spec("a: 1\n", "one")
    src = GitSource(_url(git_server, "not-the-password"), path="specs", workdir=tmp_path / "work")
    with pytest.raises(SourceError) as caught:
        src.fetch()
    assert "not-the-password" not in str(caught.value) and "***@127.0.0.1" in str(caught.value)
    assert git_server.seen.authorizations  # git did offer the URL's credentials


def test_a_clone_holding_credentials_in_its_config_is_scrubbed_on_the_next_fetch(
    repo: GitRepo, git_server: GitHttpServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo.commit_spec("a: 1\n", "one")
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(  # a clone made the plain way: git keeps the URL, secret included, in its config
        ["git", "-c", "credential.helper=", "clone", "--quiet", "--no-checkout", _url(git_server), "repo"],
        cwd=work,
        check=True,
        capture_output=True,
    )
    assert _files_holding_the_secret(work)
    src = GitSource(_url(git_server), path="specs", workdir=work)
    assert (src.fetch().spec_dir / "estate.yaml").read_text() == "a: 1\n"
    assert _files_holding_the_secret(work) == []


def test_url_credentials_with_a_line_break_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="line break") as caught:
        GitSource("https://bot:tok%0Ahost=evil@git.example/x.git", workdir=tmp_path)
    assert "tok" not in str(caught.value)

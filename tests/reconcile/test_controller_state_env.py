"""Where `cmkctl controller` keeps its journal and its clone when $CMKCTL_STATE names a blob: the pod's
ConfigMap sets it to the azureblob URL so an in-pod `cmkctl apply` takes the same blob lease."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.errors import CmkError
from controller.service.state import parse_state as parse

URL = "azureblob://cmkstate/journal/prod/history.json"


def parse_state(text: str | None) -> tuple[Path, str | None]:
    """(the controller's local directory, the blob URL or None), as `cmkctl controller` opens them."""
    ref = parse(text)
    return ref.local_dir(), ref.url


def test_a_blob_url_in_the_environment_is_the_journal_and_the_workdir_holds_the_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CMKCTL_STATE", URL)
    monkeypatch.setenv("CMKCTL_WORKDIR", str(tmp_path / "work"))
    assert parse_state(None) == (tmp_path / "work", URL)
    assert parse_state(URL) == (tmp_path / "work", URL)
    assert not any(p.name.startswith("azureblob") for p in tmp_path.rglob("*"))


def test_without_a_workdir_the_clone_goes_to_dot_cmkctl_not_to_a_path_named_after_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CMKCTL_STATE", URL)
    monkeypatch.delenv("CMKCTL_WORKDIR", raising=False)
    local, url = parse_state(None)
    assert url == URL and local.resolve() == (tmp_path / ".cmkctl").resolve()


def test_a_local_state_from_flag_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMKCTL_STATE", str(tmp_path / "env"))
    assert parse_state(None) == (tmp_path / "env", None)
    assert parse_state(f"local:{tmp_path / 'flag'}") == (tmp_path / "flag", None)


def test_a_malformed_blob_url_in_the_environment_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMKCTL_STATE", "azureblob://")
    with pytest.raises(CmkError):
        parse_state(None)

"""`--state` has one grammar for every command and the controller (DIR, local:DIR, azureblob://)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.errors import CmkError
from controller.model.settings import Settings
from controller.service.state import StateRef, parse_state

NO_ENV = Settings.read({})


def test_a_directory_and_local_prefix_mean_the_same(tmp_path: Path) -> None:
    assert parse_state(str(tmp_path), NO_ENV) == parse_state(f"local:{tmp_path}", NO_ENV)
    assert parse_state(str(tmp_path), NO_ENV) == StateRef(directory=tmp_path)


def test_the_flag_beats_the_environment_which_beats_the_default(tmp_path: Path) -> None:
    env = Settings.read({"CMKCTL_STATE": str(tmp_path / "env")})
    assert parse_state(str(tmp_path / "flag"), env).directory == tmp_path / "flag"
    assert parse_state(None, env).directory == tmp_path / "env"
    assert parse_state(None, NO_ENV).directory == Path.cwd() / ".cmkctl"


def test_azureblob_keeps_local_files_in_the_environment_directory(tmp_path: Path) -> None:
    env = Settings.read({"CMKCTL_STATE": str(tmp_path)})
    ref = parse_state("azureblob://stcmk/journal", env)
    assert ref.url == "azureblob://stcmk/journal" and ref.is_blob
    assert ref.local_dir() == tmp_path  # the controller's git clone lives here


@pytest.mark.parametrize("text", ["s3://bucket/x", "local:", "azureblob://"])
def test_unknown_or_empty_backends_are_one_clear_error(text: str) -> None:
    with pytest.raises(CmkError):
        parse_state(text, NO_ENV)


def test_reading_history_creates_nothing(tmp_path: Path) -> None:
    """Scenario: `cmkctl plan` on a runner without a journal reads an empty history, writes no file."""
    history = parse_state(str(tmp_path / "none"), NO_ENV).read_history()
    assert history.link_operations == () and not (tmp_path / "none").exists()

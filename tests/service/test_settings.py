"""The environment knobs: one validated object; a bad value is an error, never a silent default."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from controller.model.settings import Settings, SettingsError


def test_defaults_without_any_variable() -> None:
    s = Settings.read({})
    assert (s.state, s.now, s.debug, s.emulator) == (None, None, False, None)
    assert (s.operation_timeout, s.busy_timeout, s.retry_backoff, s.azure_timeout) == (21600, 10800, 2, 60)


def test_values_are_parsed_and_empty_means_unset() -> None:
    s = Settings.read(
        {"CMKCTL_NOW": "2026-03-01T10:00:00", "CMKCTL_DEBUG": "1", "CMKCTL_BUSY_TIMEOUT": "", "OTHER": "x"}
    )
    assert s.now == datetime(2026, 3, 1, 10, tzinfo=UTC)  # a naive what-if time is UTC
    assert s.debug is True
    assert s.busy_timeout == 3 * 3600


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CMKCTL_AZURE_TIMEOUT", "1O"),
        ("CMKCTL_OPERATION_TIMEOUT", "-5"),
        ("CMKCTL_NOW", "yesterday"),
        ("CMKCTL_DEBUG", "maybe"),
        ("CMKCTL_AZURE_RETRY_TOTAL", "1000"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.read({name: value})
    assert f"{name}={value!r}" in str(err.value)


def test_the_storage_key_is_never_shown() -> None:
    s = Settings.read({"AZURE_STORAGE_KEY": "c2VjcmV0LWtleQ=="})
    assert "c2VjcmV0LWtleQ" not in repr(s) and "c2VjcmV0LWtleQ" not in str(s)


def test_the_cli_refuses_a_bad_knob_with_one_line(tmp_path: object) -> None:
    """Scenario: a typo in a CI variable stops `cmkctl plan` before it talks to Azure, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli", "plan", "-f", "examples/minimal"],
        env={"PATH": "/usr/bin:/bin", "CMKCTL_AZURE_TIMEOUT": "ten", "CMKCTL_EMULATOR": "https://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "CMKCTL_AZURE_TIMEOUT='ten'" in done.stderr
    assert "Traceback" not in done.stderr

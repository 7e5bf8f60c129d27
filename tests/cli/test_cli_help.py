"""`cmkctl --help` as a user reads it, in a real process: the environment variables each command
reads, placeholders that say what to type, `-h` everywhere, and shell completion."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli.app import COMMAND_ENVIRONMENT
from controller.model.settings import ENVIRONMENT, ENVIRONMENT_HELP, Settings

ROOT = Path(__file__).resolve().parents[2]


def cmkctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CMKCTL_", "_CMKCTL"))}
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, "COLUMNS": "100", **(env or {})},
        timeout=60,
        check=False,
    )


def _listed(help_text: str) -> list[str]:
    """The commands a help text lists under 'Commands:'."""
    if "\nCommands:\n" not in help_text:
        return []
    section = help_text.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()]


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    """The --help text of every command and subcommand the root help lists ('' is the root), read
    once. `emulator` is left out: its --help is the emulator's own parser (tested below)."""
    out: dict[str, str] = {}
    todo = [""]
    while todo:
        command = todo.pop(0)
        proc = cmkctl(*command.split(), "--help")
        assert proc.returncode == 0, proc.stderr
        out[command] = proc.stdout
        todo += [f"{command} {c}".strip() for c in _listed(proc.stdout) if c != "emulator"]
    assert {"validate", "plan", "apply", "controller"} <= set(out)
    return out




def test_every_variable_in_the_environment_help_is_in_some_help(helps: dict[str, str]) -> None:
    named = set(re.findall(r"\b(?:CMKCTL|AZURE)_[A-Z_]+\b", ENVIRONMENT_HELP))
    assert named >= {"CMKCTL_STATE", "CMKCTL_ARM_READ_RATE", "AZURE_STORAGE_KEY"}
    everything = "\n".join(helps.values())
    assert sorted(n for n in named if n not in everything) == []


def test_every_setting_the_product_reads_is_documented() -> None:
    """The validated knobs (controller.model.settings) and the cloud and sign-in variables."""
    aliases = {str(f.validation_alias) for f in Settings.model_fields.values()}
    assert aliases <= set(ENVIRONMENT), aliases - set(ENVIRONMENT)
    assert {"AZURE_CLOUD", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"} <= set(ENVIRONMENT)


@pytest.mark.parametrize(
    ("command", "variables"),
    [
        ("plan", ["CMKCTL_STATE", "CMKCTL_NOW", "AZURE_CLOUD", "CMKCTL_EMULATOR", "CMKCTL_ARM_READ_RATE"]),
        (
            "apply",
            ["CMKCTL_OPERATION_TIMEOUT", "CMKCTL_BUSY_TIMEOUT", "CMKCTL_RETRY_BACKOFF", "AZURE_STORAGE_KEY"],
        ),
        ("controller", ["CMKCTL_WORKDIR", "CMKCTL_GIT_CREDENTIALS_FILE", "AZURE_CLIENT_ID"]),
        ("validate", ["AZURE_CLOUD", "CMKCTL_DEBUG"]),
        ("", list(ENVIRONMENT)),
    ],
)
def test_a_command_help_lists_the_variables_it_reads(
    helps: dict[str, str], command: str, variables: list[str]
) -> None:
    text = helps[command]
    assert "Environment:" in text
    for name in variables:
        assert f"  {name}: {ENVIRONMENT[name]}" in text, (command, name)


def test_the_mapping_names_only_known_variables_and_commands(helps: dict[str, str]) -> None:
    assert set(COMMAND_ENVIRONMENT) <= set(helps)
    for names in COMMAND_ENVIRONMENT.values():
        assert set(names) <= set(ENVIRONMENT)


def test_dash_h_is_help_everywhere(helps: dict[str, str]) -> None:
    for command, text in helps.items():
        proc = cmkctl(*command.split(), "-h")

        assert proc.returncode == 0, command
        assert proc.stdout == text, command
        if command:
            assert "Environment:" in text and "CMKCTL_DEBUG" in text, command


def test_placeholders_say_what_to_type(helps: dict[str, str]) -> None:
    usage = {c: helps[c].splitlines()[0] for c in helps if c}
    assert usage["validate"] == "Usage: cmkctl validate [OPTIONS] [PATH]..."
    assert usage["show"] == "Usage: cmkctl show [OPTIONS] PLANFILE"
    assert usage["apply"] == "Usage: cmkctl apply [OPTIONS] [PLANFILE]"
    assert usage["explain"] == "Usage: cmkctl explain [OPTIONS] [RULE]"
    for option in ("-f, --file PATH", "--state STATE", "--target ADDRESS", "--format <text|markdown|json>"):
        assert option in helps["plan"]
    for option in ("--parallelism N", "--lock-timeout DURATION", "--state STATE"):
        assert option in helps["apply"]
    assert "-f, --file PATH" in helps["validate"]
    assert "--state STATE" in helps["controller"]
    for command, text in helps.items():
        options = text.split("Environment:")[0]
        placeholders = [("--state", "STATE"), ("--lock-timeout", "DURATION"), ("-f, --file", "PATH")]
        for option, placeholder in placeholders:
            if f"  {option} " in options:
                assert f"  {option} {placeholder} " in options, (command, option)
        # no type names, no Python-ish metavars, no braces for a required argument
        for bad in ("<str>", "<int", "<list", "<Path", "TEXT", "INTEGER", "PATH_OR_DIR", "{"):
            assert bad not in text.split("Environment:")[0], (command, bad)


def test_the_emulator_options_read_as_placeholders() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emulator", "-h"], capture_output=True, text=True, cwd=ROOT, timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    options = ("--env-file FILE", "--clock TIME", "--time-scale FACTOR", "--seed FILE", "--durations JSON")
    for option in options:
        assert option in proc.stdout
    assert "ENV_FILE" not in proc.stdout and "TIME_SCALE" not in proc.stdout


def test_show_completion_prints_a_bash_script_that_completes_commands() -> None:
    script = cmkctl("--show-completion", "bash")

    assert script.returncode == 0
    assert "complete -o default -F _cmkctl_completion cmkctl" in script.stdout
    assert "_CMKCTL_COMPLETE=complete_bash" in script.stdout
    # what the script asks cmkctl when a user presses TAB after `cmkctl pl` / `cmkctl plan --st`
    words = cmkctl(env={"_CMKCTL_COMPLETE": "complete_bash", "COMP_WORDS": "cmkctl pl", "COMP_CWORD": "1"})
    assert words.returncode == 0 and words.stdout.split() == ["plan"]
    options = cmkctl(
        env={"_CMKCTL_COMPLETE": "complete_bash", "COMP_WORDS": "cmkctl plan --st", "COMP_CWORD": "2"}
    )
    assert options.stdout.split() == ["--state"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_show_completion_for_other_shells(shell: str) -> None:
    script = cmkctl("--show-completion", shell)

    assert script.returncode == 0
    assert "_CMKCTL_COMPLETE" in script.stdout

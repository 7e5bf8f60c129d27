"""README's "Try it by hand" runs as written: the block between its marker comments is extracted and
run in a shell, so the section cannot rot."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- try-it-by-hand:begin -->", "<!-- try-it-by-hand:end -->"


def readme_commands() -> str:
    """The shell block between the markers, exactly as README.md shows it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "README must mark the section once"
    section = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    match = re.fullmatch(r"\s*```sh\n(.*?)```\s*", section, re.DOTALL)
    assert match, "the marked section is one ```sh block"
    return match.group(1)


def session_processes(session: int) -> list[str]:
    """Pids still alive in the shell's session (it was started as a session leader)."""
    found = subprocess.run(["pgrep", "-s", str(session)], capture_output=True, text=True, check=False)
    return found.stdout.split()


def test_readme_try_it_by_hand(tmp_path: Path) -> None:
    """From an empty shell: emulator seeded from the spec, plan, apply refused its key (rule C7),
    grant, apply converges, no drift, an HTML report, and `kill %1` leaves no server behind."""
    commands = readme_commands()
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CMKCTL_", "AZURE_"))}
    env.update({"PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}", "NO_COLOR": "1"})
    script = "set -e\n" + commands
    started = time.monotonic()
    shell = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = shell.communicate(timeout=240)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
    elapsed = time.monotonic() - started
    assert shell.returncode == 0, out
    assert "refused as expected" in out and "(rule C7)" in out, out
    assert "granted cluster cmkdemo01" in out, out
    assert "Apply complete: 3 changed" in out, out
    assert "No drift" in out, out
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "cmkdemo01" in report
    # `kill %1` stopped the wrapper, and with it the server: nothing of the session is left running
    deadline = time.monotonic() + 15
    while session_processes(shell.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_processes(shell.pid) == [], "the emulator outlived `kill %1`"
    print(f"README try-it-by-hand: {elapsed:.1f} s")

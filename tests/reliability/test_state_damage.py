"""A journal that lost entries, a read-only state directory, a full disk: `cmkctl` (a subprocess, the
real CLI, against the emulator) names the path and the way out, never starts an empty journal in the
place of one that existed, and never ends in a traceback or an "internal error".
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_support import CLUSTER_PATH, estate_for, record, write_spec, writes

from controller.state.sqlite_store import FILENAME, MARKER, SqliteHistoryStore

ROOT = Path(__file__).resolve().parents[2]
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2  # linux/prctl.h, capability.h


def cmkctl(
    env: dict[str, str],
    *args: str,
    prelude: str = "",
    preexec: Callable[[], None] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m controller.cli ARGS`; `prelude` runs first in the same interpreter (fault set-up)."""
    code = f"{prelude}\nimport sys\nfrom controller.cli.app import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=preexec,
        cwd=cwd,
        check=False,
    )


def _clean(run: subprocess.CompletedProcess[str]) -> None:
    text = run.stdout + run.stderr
    assert "Traceback" not in text and "internal error" not in text, text


@pytest.fixture
def env(emulator: Any) -> dict[str, str]:
    return {**emulator.env, "CMKCTL_RETRY_BACKOFF": "0.01", "CMKCTL_POLLING_INTERVAL": "0.05"}


@pytest.fixture
def applied(emulator: Any, env: dict[str, str], tmp_path: Path) -> tuple[Path, Path]:
    """An estate with one change to make (capacity), and a state directory one apply has written."""
    estate = estate_for("link")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    first = cmkctl(env, "apply", "-f", str(spec), "--state", str(state), "--auto-approve")
    assert first.returncode == 0, first.stdout + first.stderr
    return spec, state


def _write_unclosed(state: Path, entries: int) -> None:
    """Journal entries committed to the write-ahead log by a process that then died (never checkpointed)."""
    script = textwrap.dedent(
        f"""
        import os
        from datetime import UTC, datetime
        from controller.model.history import LinkOperation
        from controller.state.sqlite_store import SqliteHistoryStore
        store = SqliteHistoryStore({str(state)!r})
        for i in range({entries}):
            store.record_link_operation(
                LinkOperation(workspace_key=f"/subscriptions/x/ws{{i}}", kind="link", at=datetime.now(UTC))
            )
        os._exit(0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False
    )
    assert done.returncode == 0


@pytest.mark.parametrize("damage", ["wal-deleted", "older-copy-restored"])
def test_journal_that_lost_entries_is_refused_not_read_as_complete(
    emulator: Any, env: dict[str, str], applied: tuple[Path, Path], damage: str
) -> None:
    """The marker records how many entries the journal held: fewer now is damage, refused by plan and
    apply with the way to rebuild, never planned from (its W3 link history would be missing)."""
    spec, state = applied
    journal = state / FILENAME
    if damage == "wal-deleted":
        _write_unclosed(state, 3)
        wal = journal.with_name(f"{FILENAME}-wal")
        assert wal.exists() and wal.stat().st_size > 0, "the entries should still be in the WAL"
        wal.unlink()
    else:
        backup = journal.with_name("backup.sqlite")
        shutil.copyfile(journal, backup)
        _write_unclosed(state, 2)
        for suffix in ("-wal", "-shm"):
            journal.with_name(f"{FILENAME}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(backup, journal)
    emulator.clear_requests()

    for argv in (["plan"], ["apply", "--auto-approve"]):
        run = cmkctl(env, *argv, "-f", str(spec), "--state", str(state))
        text = run.stdout + run.stderr
        assert run.returncode != 0, text
        _clean(run)
        assert f"{journal}: the journal holds" in text and f"{MARKER} beside it records" in text, text
        assert f"cmkctl state rebuild -f SPEC --state {state}" in text, text
    assert [r for r in emulator.requests() if r["method"] != "GET"] == [], "a write from a damaged journal"

    rebuilt = cmkctl(env, "state", "rebuild", "-f", str(spec), "--state", str(state))
    _clean(rebuilt)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "1 link/unlink operation(s) (rule W3)" in rebuilt.stdout, rebuilt.stdout
    assert "not known: which operations were running" in rebuilt.stdout, rebuilt.stdout
    assert list(state.glob(f"{FILENAME}.damaged-*")), "the damaged journal was not kept"
    store = SqliteHistoryStore(state, read_only=True)
    try:  # the link the first apply made, back from the Activity Log (rule W3 budget)
        [link] = store.load().link_operations
    finally:
        store.close()
    assert (link.kind, link.source) == ("link", "activityLog") and link.workspace_key.endswith("/law1")
    after = cmkctl(env, "apply", "-f", str(spec), "--state", str(state), "--auto-approve")
    assert after.returncode == 0 and "Azure matches the spec" in after.stdout, after.stdout + after.stderr
    again = cmkctl(env, "state", "rebuild", "-f", str(spec), "--state", str(state))
    assert again.returncode == 1 and "the journal is whole" in again.stderr, again.stderr
    record("hardening", case=f"journal-{damage}", violations=0)


def _without_dac_override() -> None:
    """In the child, before exec: root without the capabilities that let it ignore file permissions
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a read-only directory is read-only to it too."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture
def readonly_dir() -> Iterator[Path]:
    """A directory for state the CLI child cannot write (chmod; as root, the child also drops the
    capabilities that ignore permission bits)."""
    base = Path(tempfile.mkdtemp(prefix="cmkctl-ro-"))
    base.chmod(0o755)
    yield base
    base.chmod(0o755)
    for path in sorted(base.rglob("*")):  # a directory before its children
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(base, ignore_errors=True)


def test_read_only_state_directory_plans_but_apply_refuses_with_the_remedy(
    emulator: Any, env: dict[str, str], applied: tuple[Path, Path], readonly_dir: Path
) -> None:
    """plan reads a read-only journal; apply names the directory and the remedy before sending anything."""
    _, state = applied
    ro_state, ro_spec = readonly_dir / "state", readonly_dir / "spec.yaml"
    shutil.copytree(state, ro_state)
    # the spec now asks for another capacity: apply would have a change to write
    shutil.copyfile(write_spec(readonly_dir / "grown", estate_for("capacity")), ro_spec)
    ca = readonly_dir / "ca.pem"
    shutil.copyfile(env["CMKCTL_CA_BUNDLE"], ca)
    child_env = {**env, "CMKCTL_CA_BUNDLE": str(ca), "HOME": str(readonly_dir)}
    preexec = _without_dac_override if os.geteuid() == 0 else None
    for path in sorted(readonly_dir.rglob("*"), reverse=True):  # children before their directory
        path.chmod(0o555 if path.is_dir() else 0o444)
    emulator.clear_requests()

    planned = cmkctl(child_env, "plan", "-f", str(ro_spec), "--state", str(ro_state), preexec=preexec,
                     cwd=readonly_dir)
    applied_run = cmkctl(child_env, "apply", "-f", str(ro_spec), "--state", str(ro_state),
                         "--auto-approve", preexec=preexec, cwd=readonly_dir)

    _clean(planned)
    assert planned.returncode in (0, 2), planned.stdout + planned.stderr
    assert "capacity: 1000 -> 2000" in planned.stdout, planned.stdout
    _clean(applied_run)
    text = applied_run.stdout + applied_run.stderr
    assert applied_run.returncode != 0, text
    assert f"the state directory {ro_state} is read-only" in text, text
    assert "writable --state" in text, text
    assert [r for r in emulator.requests() if r["method"] != "GET"] == [], "apply wrote without a journal"
    record("hardening", case="read-only-state", violations=0)


# The disk fills up under the journal: SQLite's page limit gives the real "database or disk is full"
# (SQLITE_FULL) from inside the CLI's own journal writes, as ENOSPC would.
FULL_DISK = textwrap.dedent(
    """
    import sqlite3
    _connect = sqlite3.connect
    def _full(*args, **kwargs):
        db = _connect(*args, **kwargs)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        return db
    sqlite3.connect = _full
    """
)


def test_full_disk_names_the_journal_and_the_remedy(
    emulator: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """A journal write that finds the disk full: the path, the remedy, no traceback; the next apply (with
    space again) finishes what is left."""
    estate = estate_for("create")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"

    full = cmkctl(env, "apply", "-f", str(spec), "--state", str(state), "--auto-approve",
                  prelude=FULL_DISK)

    _clean(full)
    text = full.stdout + full.stderr
    assert full.returncode != 0, text
    assert f"{state / FILENAME}: the disk is full" in text and "free space" in text, text
    assert writes(emulator.requests(), "PUT", CLUSTER_PATH) == [], "a create sent without its journal entry"
    again = cmkctl(env, "apply", "-f", str(spec), "--state", str(state), "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    record("hardening", case="disk-full", violations=0)


def test_full_disk_while_apply_journals_is_named_and_resumed(
    emulator: Any, env: dict[str, str], applied: tuple[Path, Path]
) -> None:
    """The disk fills up while apply journals a step it sent: that step fails naming the journal and the
    remedy (not as an internal error); the next apply, with space again, converges."""
    _, state = applied
    spec = write_spec(state.parent / "grown", estate_for("capacity"))  # one capacity update to journal

    full = cmkctl(env, "apply", "-f", str(spec), "--state", str(state), "--auto-approve", prelude=FULL_DISK)

    _clean(full)
    text = full.stdout + full.stderr
    assert full.returncode != 0, text
    assert f"{state / FILENAME}: the disk is full" in text and "free space" in text, text
    again = cmkctl(env, "apply", "-f", str(spec), "--state", str(state), "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Azure matches the spec" in again.stdout or "1 changed" in again.stdout, again.stdout
    record("hardening", case="disk-full-mid-apply", violations=0)

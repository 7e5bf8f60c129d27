"""Fixtures for controller tests: the emulator's environment, its simulated clock, a git repo, a factory
of Reconcilers whose clock IS the emulator's clock (so C4/W3 dates move when the test advances it)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from gitops_repo import GitRepo, MakeReconciler

from controller.azure.clients import AzureClients
from controller.reconcile.logs import JsonLog
from controller.reconcile.loop import ControllerConfig, Mode, Reconciler


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {**emulator.env, "CMKCTL_RETRY_BACKOFF": "0.01", "CMKCTL_POLLING_INTERVAL": "0.05"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "upstream")


@pytest.fixture
def clients(env: dict[str, str]) -> Iterator[AzureClients]:
    c = AzureClients()
    yield c
    c.close()


@pytest.fixture
def make_reconciler(emulator: Any, clients: AzureClients, tmp_path: Path) -> MakeReconciler:
    def emulator_now() -> datetime:
        return datetime.fromisoformat(emulator.now())

    def make(source: str, *, mode: Mode = Mode.APPLY, state: Path | None = None, **kw: Any) -> Reconciler:
        config = ControllerConfig(
            source=source,
            state_dir=state or tmp_path / "state",
            path=kw.pop("path", "specs"),
            mode=mode,
            backoff=0.01,
            **kw,
        )
        return Reconciler(config, clients=clients, now=emulator_now, log=JsonLog(stream=io.StringIO()))

    return make

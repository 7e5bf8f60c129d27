"""Fixtures for the Azure adapter tests: AzureClients configured from the emulator's environment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controller.azure.clients import AzureClients


@pytest.fixture
def clients(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureClients]:
    """The product's own client factory, pointed at the emulator only through the environment."""
    for name, value in emulator.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CMKCTL_POLLING_INTERVAL", raising=False)
    built = AzureClients()
    yield built
    built.close()

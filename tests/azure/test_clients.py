"""AzureClients: one configuration for every SDK client, the emulator reached only through the env."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from tests_azure_support import SUB

from controller.azure.clients import AzureClients
from controller.model.settings import SettingsError

EMU = {"CMKCTL_EMULATOR": "https://127.0.0.1:1", "CMKCTL_CA_BUNDLE": "/nonexistent/ca.pem"}


def test_polling_interval_is_zero_under_the_emulator_30s_for_real_and_overridable() -> None:
    assert AzureClients(env=EMU).polling_interval == 0
    assert AzureClients(env={}).polling_interval == 30
    assert AzureClients(env={**EMU, "CMKCTL_POLLING_INTERVAL": "2.5"}).polling_interval == 2.5



def test_a_bad_knob_is_an_error_naming_the_variable_not_a_silent_default() -> None:
    with pytest.raises(SettingsError, match="CMKCTL_POLLING_INTERVAL='junk'"):
        AzureClients(env={"CMKCTL_POLLING_INTERVAL": "junk"})


def test_clients_are_built_once_per_key_and_shared_between_threads() -> None:
    import threading

    clients = AzureClients(env=EMU)
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(clients.loganalytics(SUB))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1
    assert clients.loganalytics(SUB.upper()) is seen[0]  # subscription ids are case-insensitive
    assert clients.keys("https://kv1.vault.azure.net") is clients.keys("https://KV1.vault.azure.net/")
    assert clients.loganalytics("00000000-0000-0000-0000-000000000002") is not seen[0]


def test_the_emulator_token_is_never_shown() -> None:
    credential = AzureClients(env=EMU).credential()
    token = credential.get_token("https://management.azure.com/.default")
    assert token.token not in repr(credential) and token.token not in str(credential)


def test_requests_are_counted_per_status(emulator: Any, clients: AzureClients) -> None:
    list(clients.loganalytics(SUB).clusters.list())
    with contextlib.suppress(Exception):  # the 404 is the point
        clients.loganalytics(SUB).clusters.get("rg", "nosuch")
    assert clients.counter.arm() == 2
    assert clients.counter.by_status() == {200: 1, 404: 1}

"""Shared fixtures: one in-process Azure emulator per test session, reset before every test.

`emulator` (function scope) yields an `EmulatorHandle`: url, ca_file, env, state and helpers
(seed, advance, set_clock, events, requests, clear_requests, fault, configure, http).
`sdk` builds REAL Azure SDK clients pointed at it (transport-level redirect, like a DNS override).
Tests default to zero-length async operations and a frozen clock; tests that need time to pass set
durations with `emulator.configure(durations={...})` and move the clock with `emulator.advance(s)`.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from emulator.server import RunningEmulator, start

STATIC_TOKEN = "emulator-token"  # not a secret: the emulator accepts any bearer token
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # the emulator's default tenant (and Key Vault's)
START = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)
TEST_DURATIONS = {
    "cluster_create": 0.0,
    "cluster_update": 0.0,
    "cluster_delete": 0.0,
    "link": 0.0,
    "unlink": 0.0,
    "workspace_create": 0.0,
}


class RedirectAdapter(HTTPAdapter):
    """Keep the Azure URL the SDK built, but connect to the emulator (sets Host, rewrites netloc)."""

    def __init__(self, port: int, **kw: Any) -> None:
        self._port = port
        super().__init__(**kw)

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        url = urllib.parse.urlsplit(request.url or "")
        if url.hostname not in ("127.0.0.1", "localhost"):
            request.headers["Host"] = url.netloc
            request.url = urllib.parse.urlunsplit(url._replace(netloc=f"127.0.0.1:{self._port}"))
        return super().send(request, **kw)


class StaticToken:
    """Any object with get_token() is a credential; the emulator accepts any bearer token."""

    def get_token(self, *scopes: str, **kw: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("emulator-token", 4_102_444_800)

    def get_token_info(self, *scopes: str, **kw: Any) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("emulator-token", 4_102_444_800)


def redirect_session(port: int) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override `verify`
    s.mount("https://", RedirectAdapter(port))
    return s


class Sdk:
    """Factory for real SDK clients against the emulator (polling_interval=0 for LROs)."""

    def __init__(self, running: RunningEmulator) -> None:
        self.running = running
        self.credential = StaticToken()

    def transport(self) -> Any:
        from azure.core.pipeline.transport import RequestsTransport

        return RequestsTransport(
            session=redirect_session(self.running.port),
            connection_verify=self.running.ca_file,
            session_owner=False,
        )

    def loganalytics(self, subscription: str = SUBSCRIPTION) -> Any:
        from azure.mgmt.loganalytics import LogAnalyticsManagementClient

        return LogAnalyticsManagementClient(
            self.credential, subscription, transport=self.transport(), polling_interval=0, retry_total=0
        )

    def monitor(self, subscription: str = SUBSCRIPTION) -> Any:
        from azure.mgmt.monitor import MonitorManagementClient

        return MonitorManagementClient(
            self.credential, subscription, transport=self.transport(), retry_total=0
        )

    def keyvault_mgmt(self, subscription: str = SUBSCRIPTION) -> Any:
        from azure.mgmt.keyvault import KeyVaultManagementClient

        return KeyVaultManagementClient(
            self.credential, subscription, transport=self.transport(), polling_interval=0, retry_total=0
        )

    def keys(self, vault_url: str) -> Any:
        from azure.keyvault.keys import KeyClient

        return KeyClient(vault_url, self.credential, transport=self.transport(), retry_total=0)

    def access_control(self, hsm_url: str) -> Any:
        from azure.keyvault.administration import KeyVaultAccessControlClient

        return KeyVaultAccessControlClient(
            hsm_url, self.credential, transport=self.transport(), retry_total=0
        )


class EmulatorHandle:
    """What a test sees: connection facts plus admin helpers (over HTTPS, like a user's CI)."""

    def __init__(self, running: RunningEmulator) -> None:
        self.running = running
        self.url = running.url
        self.ca_file = running.ca_file
        self.env = running.env
        self.state = running.state
        self.subscription = SUBSCRIPTION
        self._http = requests.Session()
        self._http.trust_env = False

    def admin(self, method: str, what: str, body: Any = None) -> Any:
        r = self._http.request(
            method, f"{self.url}/_emulator/{what}", json=body, timeout=30, verify=self.ca_file
        )
        if r.status_code >= 400:
            raise AssertionError(f"admin {method} {what}: {r.status_code} {r.text}")
        return r.json()

    def seed(self, estate: dict[str, Any]) -> Any:
        return self.admin("POST", "seed", estate)

    def advance(self, seconds: float) -> str:
        return str(self.admin("POST", "clock", {"advance_seconds": seconds})["now"])

    def set_clock(self, iso: str) -> str:
        return str(self.admin("POST", "clock", {"now": iso})["now"])

    def now(self) -> str:
        return str(self.admin("GET", "clock")["now"])

    def events(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "events")["events"])

    def requests(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "requests")["requests"])

    def clear_requests(self) -> None:
        self.admin("DELETE", "requests")

    def fault(self, **spec: Any) -> None:
        self.admin("POST", "faults", spec)

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def configure(self, **cfg: Any) -> Any:
        return self.admin("POST", "config", cfg)

    def reset(self) -> None:
        self.admin("POST", "reset")
        self.admin("DELETE", "faults")
        self.configure(
            durations=TEST_DURATIONS,
            limits="current",
            throttling=False,
            throttle_limits={"reads": [250, 25], "writes": [200, 10]},
            no_double_encryption_regions=[],
            cluster_page_size=100,
            activity_page_size=200,
            time_scale=0.0,
            tenant_id=TENANT,
        )
        self.set_clock(START.isoformat())
        self.clear_requests()

    def arm(
        self,
        method: str,
        path: str,
        body: Any = None,
        api_version: str = "2025-07-01",
        token: str | None = STATIC_TOKEN,
    ) -> requests.Response:
        """A raw ARM call (for shapes the SDK hides), through the same Host redirect."""
        sess = redirect_session(self.running.port)
        sep = "&" if "?" in path else "?"
        url = f"https://management.azure.com{path}"
        if api_version:
            url += f"{sep}api-version={api_version}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = json.dumps(body) if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        return sess.request(method, url, data=data, headers=headers, verify=self.ca_file, timeout=30)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[RunningEmulator]:
    running = start(clock=START, time_scale=0.0, durations=TEST_DURATIONS)
    yield running
    running.stop()


@pytest.fixture
def emulator(emulator_server: RunningEmulator) -> EmulatorHandle:
    handle = EmulatorHandle(emulator_server)
    handle.reset()
    return handle


@pytest.fixture
def sdk(emulator_server: RunningEmulator) -> Sdk:
    return Sdk(emulator_server)

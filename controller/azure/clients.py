"""The one place that builds the real Azure SDK clients (and the only one that knows about the emulator).

Real use: `DefaultAzureCredential`, the SDKs' own transport. Under the emulator
(`CMKCTL_EMULATOR=https://127.0.0.1:PORT`, `CMKCTL_CA_BUNDLE=path`) every client gets a requests
session whose adapter keeps the real URL's host in the `Host` header and sends the bytes to the
emulator instead, like a DNS override (docs/azure-wire.md). The SDKs still build
real URLs (management.azure.com, <vault>.vault.azure.net), so no other code path changes.

Cloud: one setting (`--cloud` / AZURE_CLOUD, controller.model.clouds) picks the Azure the clients talk
to. The management clients get that cloud's Resource Manager `base_url` and token scope; the
credential its Microsoft Entra authority; blob clients its storage suffix. Key Vault clients need
nothing: the vault URI names the host, and azure-keyvault-keys takes the token scope from the vault's
401 challenge, refusing a challenge whose resource is not the vault's own domain.

Retries are configured once here. azure-core's RetryPolicy retries 408/429/5xx on GET/HEAD/PUT/DELETE,
and ANY method whose response carries Retry-After (verified: a throttled PATCH with Retry-After is
re-sent after the wait); a 429 PATCH/POST without it surfaces as `errors.Transient` (docs/azure-wire.md) for
the caller to back off. Link and unlink writes are the exception: never re-sent once they may have
reached Azure (rule W3, `_SendOnceRetryPolicy`). Every HTTP try is counted per (host, method, status)
for metrics and the request-count test.

Time: every ARM response's `Date` header feeds `clock` (`service_now()`), the "now" the planner counts
Azure's windows with (rule W3's 30 days, C4, C11), so a skewed local clock or a time-scaled emulator
cannot make the plan disagree with Azure's own count.

Knobs (environment): CMKCTL_POLLING_INTERVAL (seconds between LRO polls; real default 30, emulator 0),
CMKCTL_AZURE_RETRY_TOTAL (default 3 under the emulator, 6 otherwise), CMKCTL_AZURE_TIMEOUT (read
timeout seconds, default 60).
"""

from __future__ import annotations

import email.utils
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from controller.azure import credentials
from controller.azure.errors import UntrustedEndpoint
from controller.azure.pacing import ARM_BUDGET, READS, WRITES, ArmPacer, PacingPolicy
from controller.model import clouds, ids
from controller.model.settings import Settings

_EMULATOR_TOKEN = "cmkctl-emulator-token"  # noqa: S105 - a fixed fake token, only ever sent to the emulator


# Writes whose repetition costs something: a link or unlink of a workspace (rule W3, two per 30 days).
# Connections each client keeps open for reuse. An apply makes requests from up to `--parallelism` + 8
# workers and the watch's 8 readers at once; with requests' default of 10, every answer beyond the
# tenth closes its connection and a later request opens a new one (a TLS handshake each time).
POOL_SIZE = 64
_SEND_ONCE = re.compile(r"/workspaces/[^/]+/linkedservices/cluster/?$", re.IGNORECASE)
_SEND_ONCE_METHODS = frozenset({"PUT", "DELETE"})


def sent_at_most_once(method: str, url: str) -> bool:
    """A request the transport must never re-send once it may have reached Azure (rule W3)."""
    return method.upper() in _SEND_ONCE_METHODS and bool(_SEND_ONCE.search(urlsplit(url).path))


class _SendOnceRetryPolicy(RetryPolicy[Any, Any]):
    """azure-core's RetryPolicy, except for link and unlink writes (rule W3).

    azure-core re-sends a PUT/DELETE whose response was lost (read retry) or that answered 408, 429 or
    5xx (status retry). For a link or unlink either may have reached the service and started the
    operation, so a re-send could spend a second of the workspace's W3 operations. For those requests
    only connection failures (nothing was sent) are retried; anything else reaches the caller:
    `map_error` makes it OutcomeUnknown or Transient, and the executor re-observes the link before it
    decides anything. Every other request, the link's LRO polls included, keeps the normal retries.
    """

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        http = request.http_request
        if sent_at_most_once(http.method, http.url):
            request.context.options["retry_read"] = 0
            request.context.options["retry_status"] = 0
        return super().send(request)


def check_host(url: str, allowed: Callable[[str], bool], what: str) -> None:
    """Raise UntrustedEndpoint unless `url` is https on the default port to a host `allowed` accepts.

    Every URL that reaches a token-carrying client from state or from Azure (a journaled status URL, an
    Azure-AsyncOperation / Location header, a nextLink, a cluster's keyVaultUri) is untrusted.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UntrustedEndpoint(f"{what}: refused the malformed URL {url[:200]!r}") from None
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() != "https" or port not in (None, 443) or parts.username or not allowed(host):
        shown = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
        raise UntrustedEndpoint(
            f"{what}: refused to send a token to {shown}, which is not a host of this cloud"
        )


class _ArmOnlyAuthenticationPolicy(ARMChallengeAuthenticationPolicy):
    """azure-mgmt-core's ARM bearer policy that refuses any host but the cloud's Resource Manager.

    The SDK follows URLs it did not build (LRO status / Location headers, nextLink, a continuation token
    from the journal); none of them may carry the ARM token anywhere else. Runs on every try, redirects
    included, before the token is added.
    """

    def __init__(self, credential: Any, *scopes: str, arm_host: str, **kwargs: Any) -> None:
        self._arm_host = arm_host.lower()
        super().__init__(credential, *scopes, **kwargs)

    def on_request(self, request: PipelineRequest[Any]) -> None:
        check_host(request.http_request.url, lambda host: host == self._arm_host, "Azure Resource Manager")
        super().on_request(request)


class _StaticTokenCredential:
    """A credential for the emulator: any scope gets the same fake token. Never logged.

    The scopes asked for are kept (`scopes`): they are what a real credential would be asked for.
    """

    def __init__(self) -> None:
        self.scopes: set[str] = set()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.update(scopes)
        return AccessToken(_EMULATOR_TOKEN, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.scopes.update(scopes)
        return AccessTokenInfo(_EMULATOR_TOKEN, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "_StaticTokenCredential(<hidden>)"


class _RedirectAdapter(HTTPAdapter):
    """Send every request to the emulator while the Host header keeps the real host (DNS-override-like)."""

    def __init__(self, target_netloc: str, **kwargs: Any) -> None:
        self._target = target_netloc
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        if parts.netloc and parts.netloc != self._target:
            request.headers["Host"] = parts.netloc
            request.url = urlunsplit((parts.scheme, self._target, parts.path, parts.query, parts.fragment))
        return super().send(request, *args, **kwargs)


class RequestCounter:
    """Counts HTTP tries per (host, method, status); thread-safe. `arm()` gives the ARM total."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, int]] = Counter()

    def hook(self, response: PipelineResponse[Any, Any]) -> None:
        request = response.http_request
        host = urlsplit(request.url).hostname or ""
        status = response.http_response.status_code
        with self._lock:
            self._counts[(host.lower(), request.method.upper(), status)] += 1

    def snapshot(self) -> dict[tuple[str, str, int], int]:
        with self._lock:
            return dict(self._counts)

    def arm(self) -> int:
        """ARM requests only (management.azure.com or a sovereign cloud's), which ARM throttles per
        subscription."""
        return sum(n for (host, _, _), n in self.snapshot().items() if clouds.is_arm_host(host))

    def by_status(self) -> dict[int, int]:
        out: Counter[int] = Counter()
        for (_, _, status), n in self.snapshot().items():
            out[status] += n
        return dict(out)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class ServiceClock:
    """The service's "now": the latest `Date` header Resource Manager sent, advanced by the local
    monotonic time since it arrived; the local clock until ARM has answered once.

    Rule arithmetic (the 30-day link budget W3, capacity lock C4, the 14-day name reservation C11)
    is Azure's, counted on Azure's clock: a local clock that is skewed, or a time-scaled emulator
    running ahead, would plan a link that Azure then refuses. `Date` has one-second resolution,
    which is far finer than any window counted in days.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: datetime | None = None
        self._seen_at = 0.0

    def hook(self, response: PipelineResponse[Any, Any]) -> None:
        """Record the `Date` of an ARM response (a vault's or a storage account's clock is not ARM's)."""
        if not clouds.is_arm_host(urlsplit(response.http_request.url).hostname or ""):
            return
        self.observe(response.http_response.headers.get("Date"))

    def observe(self, header: str | None) -> None:
        """Take one `Date` value; the latest wins (responses of parallel requests arrive out of order)."""
        if not header:
            return
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):
            return
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._lock:
            if self._latest is None or when >= self.now_locked():
                self._latest, self._seen_at = when.astimezone(UTC), time.monotonic()

    def now_locked(self) -> datetime:
        if self._latest is None:
            return datetime.now(UTC)
        return self._latest + timedelta(seconds=time.monotonic() - self._seen_at)

    @property
    def seen(self) -> bool:
        """True once ARM has answered with a `Date`."""
        with self._lock:
            return self._latest is not None

    def now(self) -> datetime:
        """The service's time now (the local clock before any ARM answer)."""
        with self._lock:
            return self.now_locked()


class AzureClients:
    """Builds and caches (per key, thread-safe) the SDK clients every other Azure module uses."""

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        credential: TokenCredential | None = None,
        polling_interval: float | None = None,
        transport: Any = None,
        cloud: clouds.Cloud | None = None,
    ) -> None:
        """`transport`: one azure-core transport for every SDK client (the tests play recorded Azure
        sessions back through it); None = the SDKs' own, or the emulator redirect."""
        self.settings = Settings.read(env)  # a bad knob is an error naming the variable
        self._transport = transport
        self._env = dict(os.environ if env is None else env)  # azure-identity's own variables
        # the one cloud setting: the caller's (--cloud), else $AZURE_CLOUD, else public Azure
        self.cloud: clouds.Cloud = cloud or clouds.select(None, self._env)
        self.emulator: str | None = self.settings.emulator
        self._ca_bundle: str | None = self.settings.ca_bundle
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], Any] = {}
        self.counter = RequestCounter()
        self.clock = ServiceClock()
        self._credential: Any = credential
        default_poll = 0.0 if self.emulator else 30.0
        chosen_poll = polling_interval if polling_interval is not None else self.settings.polling_interval
        self.polling_interval: float = default_poll if chosen_poll is None else chosen_poll
        retries = self.settings.azure_retry_total
        self._retry_total = (3 if self.emulator else 6) if retries is None else retries
        self._timeout = self.settings.azure_timeout
        self.pacer: ArmPacer | None = self._make_pacer()

    def _make_pacer(self) -> ArmPacer | None:
        """Paced to ARM's buckets (reads 250 + 25/s, writes 200 + 10/s per subscription) or to the rates
        set; the emulator only when a rate is set (its buckets follow its own time scale)."""
        reads, writes = self.settings.arm_read_rate, self.settings.arm_write_rate
        if self.emulator and reads is None and writes is None:
            return None
        burst_r, rate_r = ARM_BUDGET[READS]
        burst_w, rate_w = ARM_BUDGET[WRITES]
        return ArmPacer({READS: (burst_r, reads or rate_r), WRITES: (burst_w, writes or rate_w)})

    # -- shared pieces ---------------------------------------------------------------------------
    def credential(self) -> Any:
        """The token credential (static fake under the emulator, DefaultAzureCredential otherwise)."""
        with self._lock:
            if self._credential is None:
                if self.emulator:
                    self._credential = _StaticTokenCredential()
                else:
                    self._credential = credentials.default_credential(self.cloud, self._env)
            return self._credential

    def _session(self) -> requests.Session:
        session = requests.Session()
        if self.emulator:
            session.trust_env = False  # REQUESTS_CA_BUNDLE / proxies in the environment would win
            target = urlsplit(self.emulator).netloc
            session.mount("https://", _RedirectAdapter(target, pool_maxsize=POOL_SIZE))
            session.mount("http://", _RedirectAdapter(target, pool_maxsize=POOL_SIZE))
        return session

    def _kwargs(self) -> dict[str, Any]:
        """Transport, retries, polling and the counting hook: identical for every client."""
        kw: dict[str, Any] = {
            "retry_total": self._retry_total,
            "retry_backoff_factor": 0.0 if self.emulator else 0.8,
            "retry_backoff_max": 60,
            "polling_interval": self.polling_interval,
            "raw_response_hook": self.hook,
            "connection_timeout": 10,
            "read_timeout": self._timeout,
        }
        if self._transport is not None:
            kw["transport"] = self._transport
        elif not self.emulator:
            # azure-core's own transport (its session: the environment's proxies and CA bundle, no
            # urllib3 retries), with room for the connections an apply's threads use at once
            session = requests.Session()
            adapter = HTTPAdapter(
                max_retries=Retry(total=False, redirect=False, raise_on_status=False), pool_maxsize=POOL_SIZE
            )
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            kw["transport"] = RequestsTransport(
                session=session, connection_timeout=10, read_timeout=self._timeout
            )
        else:
            # a transport passed in ignores the client's timeouts: it gets them itself
            # (CMKCTL_AZURE_TIMEOUT holds under the emulator too)
            verify: str | bool = self._ca_bundle or True
            kw["transport"] = RequestsTransport(
                session=self._session(), connection_verify=verify, connection_timeout=10,
                read_timeout=self._timeout,
            )
        return kw

    def hook(self, response: PipelineResponse[Any, Any]) -> None:
        """Every HTTP try: counted, and ARM's `Date` taken as the service clock."""
        self.counter.hook(response)
        self.clock.hook(response)

    def service_now(self) -> datetime:
        """Azure's time now (ARM's `Date`), the local clock until ARM has answered once."""
        return self.clock.now()

    def _arm_kwargs(self) -> dict[str, Any]:
        """`_kwargs` plus the selected cloud's Resource Manager endpoint and token scope.

        Explicit for every cloud, so azure-core's own AZURE_SDK_CLOUD_CONF never disagrees with ours.
        """
        arm = {
            "base_url": self.cloud.arm_endpoint,
            "credential_scopes": [self.cloud.arm_scope],
            "authentication_policy": _ArmOnlyAuthenticationPolicy(
                self.credential(), self.cloud.arm_scope, arm_host=self.cloud.arm_host
            ),
        }
        kw = {**self._kwargs(), **arm}
        if self.pacer is not None:
            # per try (it sits after the retry policy): every ARM request waits for its bucket's token
            kw["custom_hook_policy"] = PacingPolicy(
                self.pacer, self.cloud.arm_host, raw_response_hook=self.hook
            )
        return kw

    def _cached(self, kind: str, key: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            client = self._cache.get((kind, key))
            if client is None:
                client = build()
                self._cache[(kind, key)] = client
            return client

    # -- the clients -------------------------------------------------------------------------------
    def loganalytics(self, subscription: str) -> Any:
        """LogAnalyticsManagementClient for one subscription (clusters, workspaces, links, BYOS)."""
        from azure.mgmt.loganalytics import LogAnalyticsManagementClient

        def build() -> Any:
            kw = self._arm_kwargs()
            kw["retry_policy"] = _SendOnceRetryPolicy(**kw)  # rule W3: link/unlink never re-sent
            return LogAnalyticsManagementClient(self.credential(), subscription, **kw)

        return self._cached("loganalytics", subscription.lower(), build)

    def keys(self, vault_uri: str) -> Any:
        """KeyClient for one vault (data plane: key versions, enabled, recoveryLevel)."""
        from azure.keyvault.keys import KeyClient

        uri = vault_uri if vault_uri.endswith("/") else vault_uri + "/"
        # a vault URI read from Azure is untrusted: only this cloud's Key Vault / Managed HSM hosts
        check_host(uri, self.cloud.owns_vault_host, "Key Vault")
        return self._cached(
            "keys",
            ids.normalise_vault_uri(vault_uri),
            lambda: KeyClient(vault_url=uri, credential=self.credential(), **self._kwargs()),
        )

    def access_control(self, hsm_uri: str) -> Any:
        """KeyVaultAccessControlClient for one Managed HSM (its local RBAC: role assignments, rule C7)."""
        from azure.keyvault.administration import KeyVaultAccessControlClient

        uri = hsm_uri if hsm_uri.endswith("/") else hsm_uri + "/"
        check_host(uri, self.cloud.owns_vault_host, "Managed HSM")
        return self._cached(
            "access_control",
            ids.normalise_vault_uri(hsm_uri),
            lambda: KeyVaultAccessControlClient(
                vault_url=uri, credential=self.credential(), **self._kwargs()
            ),
        )

    def keyvault_mgmt(self, subscription: str) -> Any:
        """KeyVaultManagementClient (vault resource: soft delete, purge protection, access policies)."""
        from azure.mgmt.keyvault import KeyVaultManagementClient

        return self._cached(
            "keyvault_mgmt",
            subscription.lower(),
            lambda: KeyVaultManagementClient(self.credential(), subscription, **self._arm_kwargs()),
        )

    def monitor(self, subscription: str) -> Any:
        """MonitorManagementClient (Activity Log: link history for rule W3)."""
        from azure.mgmt.monitor import MonitorManagementClient

        return self._cached(
            "monitor",
            subscription.lower(),
            lambda: MonitorManagementClient(self.credential(), subscription, **self._arm_kwargs()),
        )

    def blob_service(self, account_url: str, credential: Any = None) -> Any:
        """BlobServiceClient for the history store. Local URLs (Azurite) are reached directly."""
        from azure.storage.blob import BlobServiceClient

        host = (urlsplit(account_url).hostname or "").lower()
        local = host in ("127.0.0.1", "localhost")

        def build() -> Any:
            kw: dict[str, Any] = {"retry_total": self._retry_total, "raw_response_hook": self.counter.hook}
            if self.emulator and not local:
                kw["transport"] = RequestsTransport(
                    session=self._session(), connection_verify=self._ca_bundle or True
                )
            cred = credential if credential is not None else (None if local else self.credential())
            if cred is not None and not isinstance(cred, dict) and self.cloud != clouds.DEFAULT:
                # the default token audience (https://storage.azure.com/) is public Azure's; the
                # account's own endpoint is a valid audience in every cloud
                kw["audience"] = account_url.rstrip("/")
            return BlobServiceClient(account_url=account_url, credential=cred, **kw)

        return self._cached("blob", f"{account_url.lower()}|{id(credential)}", build)

    def close(self) -> None:
        """Close every cached client (their sessions)."""
        with self._lock:
            clients = list(self._cache.values())
            self._cache.clear()
        for client in clients:
            try:
                client.close()
            except Exception:  # noqa: S112 - closing is best effort
                continue

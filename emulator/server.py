"""One HTTPS listener that routes by Host header (emulator/router.py), so the SDKs keep using real Azure
URLs and only the connection is redirected (like a DNS override). Faults and throttling are applied
here, before any handler runs, because that is where Azure's front door applies them."""

from __future__ import annotations

import contextlib
import email.utils
import json
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

from emulator import admin, router
from emulator.clock import SimClock
from emulator.clouds import PUBLIC, by_name
from emulator.http import Request, Response, arm_error
from emulator.limits import DEFAULT_PROFILE
from emulator.state import Bucket, Emulator


def _subscription_of(path: str) -> str | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1].lower()
    return None


def throttle(em: Emulator, req: Request) -> tuple[Response | None, dict[str, str]]:
    """Per-subscription token buckets on the REAL clock (throttling protects Azure's real capacity;
    the simulated clock may jump by days)."""
    sub = _subscription_of(req.path)
    if not em.throttling or sub is None or req.host != em.cloud.arm_host:
        return None, {}
    kind = "reads" if req.method in ("GET", "HEAD") else "writes"
    cap, rate = em.throttle_limits[kind]
    now = time.monotonic()
    with em.lock:
        b = em.buckets.get((sub, kind))
        if b is None:
            b = em.buckets[(sub, kind)] = Bucket(cap, rate, cap, now)
        b.tokens = min(b.capacity, b.tokens + (now - b.stamp) * b.rate)
        b.stamp = now
        if b.tokens < 1.0:
            wait = max(1, int((1.0 - b.tokens) / b.rate + 0.999))
            resp = arm_error(
                429,
                "SubscriptionRequestsThrottled",
                f"Number of '{kind[:-1]}' requests for subscription '{sub}' actor 'emulator' exceeded. "
                f"Please try again after '{wait}' seconds after the additional tokens are added.",
            )
            resp.headers["Retry-After"] = str(wait)
            resp.headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = "0"
            return resp, {}
        b.tokens -= 1.0
        left = str(int(b.tokens))
        # Both the classic and the 2025 "global" header names (docs/azure-wire.md).
        return None, {
            f"x-ms-ratelimit-remaining-subscription-{kind}": left,
            f"x-ms-ratelimit-remaining-subscription-global-{kind}": left,
        }


@dataclass
class Injected:
    """What the matching faults do to one request."""

    response: Response | None = None  # sent instead of the real answer
    reset: bool = False  # the connection is dropped instead of answering
    delay: float = 0.0
    after_accept: bool = False  # the request is served first: its effect happens, its answer is lost
    headers: dict[str, str | None] = field(default_factory=dict)  # set/drop on the real answer


def pick_fault(em: Emulator, req: Request) -> Injected:
    """The first matching status/reset fault (plus every matching delay) for this request."""
    out = Injected()
    with em.lock:
        for f in list(em.faults):
            # operation-shaping faults are applied when the operation starts (operations._apply_faults_to_op)
            if f.shapes_operation or not f.fires(req.method, req.path, em.rng):
                continue
            out.delay += f.delay
            if f.headers is not None:  # the answer is served as usual, with these headers changed
                out.headers.update(f.headers)
                if f.status is None and not f.reset and not f.has_body:
                    continue
            if f.reset:
                out.reset, out.after_accept = True, f.after_accept
                return out
            if f.has_body:  # a body Azure could send but should not: `{}` or `{"value": "oops"}`
                out.response = Response(f.status if f.status is not None else 200, f.body)
                out.after_accept = f.after_accept
                return out
            if f.status is not None:
                resp = arm_error(f.status, f.code, f.message)
                if f.retry_after is not None:
                    resp.headers["Retry-After"] = (
                        str(int(f.retry_after)) if f.retry_after == int(f.retry_after) else str(f.retry_after)
                    )
                out.response, out.after_accept = resp, f.after_accept
                return out
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "cmkctl-emulator"
    sys_version = ""
    emulator: Emulator

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the request log is at /_emulator/requests

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header on every answer, from the simulated clock: Azure's front door stamps
        its own time, and a client that takes "now" from the service must see the emulated one."""
        when = self.emulator.now().timestamp() if timestamp is None else timestamp
        return email.utils.formatdate(when, usegmt=True)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()  # the blank line after the last chunk (no trailers sent)
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        em = self.emulator
        body = self._read_body()
        url = urllib.parse.urlsplit(self.path)
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        req = Request(
            method=self.command.upper(),
            host=host,
            path=urllib.parse.unquote(url.path),
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        admin_call = req.path.lower().startswith("/_emulator/")
        resp: Response | None = None
        extra: dict[str, str] = {}
        injected = Injected()
        if not admin_call:
            injected = pick_fault(em, req)
            if injected.delay:
                time.sleep(injected.delay)
            if injected.reset and not injected.after_accept:
                self._reset(req, host)
                return
            if not injected.after_accept:
                resp = injected.response
            if resp is None:
                resp, extra = throttle(em, req)
        if resp is None:
            try:
                resp = router.route(em, req)
            except Exception as exc:  # the emulator must answer, as Azure does, never hang up
                resp = arm_error(500, "InternalServerError", f"Emulator error: {type(exc).__name__}: {exc}")
        if injected.after_accept:
            # `after_accept` faults: the request took effect (an operation may be running now), and
            # then the answer is lost (reset) or replaced by the fault's status (e.g. 500)
            if injected.reset:
                self._reset(req, host)
                return
            if injected.response is not None:
                resp, extra = injected.response, {}
        if injected.headers:
            for name, value in injected.headers.items():
                for present in [k for k in resp.headers if k.lower() == name.lower()]:
                    del resp.headers[present]
                if value is not None:
                    resp.headers[name] = value
        if not admin_call:
            em.log_request(req.method, host, req.path, resp.status, req.q("api-version"), query=req.query)
        payload = resp.encoded()
        self.send_response(resp.status)
        headers = {
            "x-ms-request-id": _rid(),
            "x-ms-correlation-request-id": _rid(),
            "Cache-Control": "no-cache",
        }
        headers.update(extra)
        headers.update(resp.headers)
        if payload and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json; charset=utf-8"
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        # Headers and body in one write: separate small TLS records + Nagle + delayed ACK cost ~40 ms.
        buffer: list[bytes] = self._headers_buffer  # type: ignore[attr-defined]
        buffer.append(b"\r\n")
        if req.method != "HEAD":
            buffer.append(payload)
        self.flush_headers()

    def _reset(self, req: Request, host: str) -> None:
        """Drop the connection without an answer (RST): the client sees a lost response."""
        self.emulator.log_request(req.method, host, req.path, 0, req.q("api-version"), query=req.query)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = _serve
    do_PUT = _serve
    do_POST = _serve
    do_PATCH = _serve
    do_DELETE = _serve
    do_HEAD = _serve


def _rid() -> str:
    return str(uuid.uuid4())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], ctx: ssl.SSLContext
    ) -> None:
        self._ctx = ctx
        super().__init__(addr, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake in the worker thread, not the accept loop (a slow client must not block others).
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self._ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            with contextlib.suppress(OSError):
                tls.close()


class _Server6(_Server):
    address_family = socket.AF_INET6


@dataclass
class RunningEmulator:
    url: str
    port: int
    host: str
    ca_file: str
    state: Emulator
    _server: _Server
    _thread: threading.Thread
    _tmp: tempfile.TemporaryDirectory[str]

    @property
    def env(self) -> dict[str, str]:
        return {"CMKCTL_EMULATOR": self.url, "CMKCTL_CA_BUNDLE": self.ca_file}

    def env_text(self) -> str:
        return "".join(f"export {k}={v}\n" for k, v in self.env.items())

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._tmp.cleanup()


def start(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: datetime | None = None,
    time_scale: float = 1.0,
    limits: str = DEFAULT_PROFILE,
    durations: dict[str, float] | None = None,
    seed_estate: dict[str, Any] | None = None,
    cloud: str = PUBLIC.name,
) -> RunningEmulator:
    """Start the emulator in a background thread; returns once it accepts connections.

    `cloud` (an Azure CLI cloud name) picks the Azure it plays: public Azure, AzureUSGovernment or
    AzureChinaCloud, each with its own Resource Manager, Key Vault and Managed HSM host names."""
    hosts = by_name(cloud)
    tmp = tempfile.TemporaryDirectory(prefix="cmkctl-emulator-")
    ca = trustme.CA()
    names = [
        "127.0.0.1",
        "::1",
        "localhost",
        hosts.arm_host,
        f"*.{hosts.vault_suffix}",
        f"*.{hosts.hsm_suffix}",
    ]
    if host not in names and host not in ("0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        names.append(host)  # clients that connect by the listener's own name must be able to verify it
    cert = ca.issue_cert(*names)
    ca_file = str(Path(tmp.name) / "ca.pem")
    ca.cert_pem.write_to_path(ca_file)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    em = Emulator(clock=SimClock(clock, time_scale), limits=limits, durations=durations, cloud=hosts)
    if seed_estate:
        admin.seed(em, seed_estate)
    handler = type("Handler", (_Handler,), {"emulator": em})
    server = (_Server6 if ":" in host else _Server)((host, port), handler, ctx)  # ":" = an IPv6 literal
    real_port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name="cmkctl-emulator"
    )
    thread.start()
    url_host = host if ":" not in host else f"[{host}]"
    return RunningEmulator(
        url=f"https://{url_host}:{real_port}",
        port=int(real_port),
        host=host,
        ca_file=ca_file,
        state=em,
        _server=server,
        _thread=thread,
        _tmp=tmp,
    )


def load_estate(path: str) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: an estate file is a mapping")
    return data

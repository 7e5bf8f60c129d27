"""The controller's HTTP endpoints (stdlib http.server, one thread per request).

    GET /status   the status as JSON (conditions, revisions, drift, deferred, last 5 passes)
    GET /healthz  200 while the loop is alive (a pass finished recently enough), else 503
    GET /readyz   200 once a pass has finished since start, else 503
    GET /metrics  Prometheus text format

Why stdlib: four read-only endpoints need no framework, and every dependency is attack surface in
a pod that holds Azure credentials. Nothing here can change state; there are no query parameters.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from controller.errors import CmkError
from controller.reconcile.loop import Reconciler
from controller.reconcile.metrics import CONTENT_TYPE


def parse_listen(text: str) -> tuple[str, int]:
    """':8080' -> ('0.0.0.0', 8080); '127.0.0.1:9000' -> ('127.0.0.1', 9000); port 0 picks one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CmkError(f"--listen {text!r} is not [HOST]:PORT (e.g. :8080)")
    return (host.strip("[]") or "0.0.0.0", int(port))  # noqa: S104 - a pod listens on all interfaces


class StatusServer:
    def __init__(self, reconciler: Reconciler, listen: str, *, stale_after: float | None = None) -> None:
        self.reconciler = reconciler
        # alive = a pass finished within (longest sleep + a long pass); an LRO may legitimately take hours
        self.stale_after = (
            stale_after if stale_after is not None else reconciler.config.interval * 2 + 4 * 3600
        )
        self.started = time.monotonic()
        handler = _handler_for(self)
        self.httpd = ThreadingHTTPServer(parse_listen(listen), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="cmkctl-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def healthy(self) -> tuple[bool, str]:
        last = self.reconciler.last_pass_finished
        since = time.monotonic() - (last if last is not None else self.started)
        if since > self.stale_after:
            return False, f"no pass finished for {since:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if self.reconciler.passes_done == 0:
            return False, "the first pass has not finished"
        if self.reconciler.stop.is_set():
            return False, "shutting down"
        return True, "ok"


def _handler_for(server: StatusServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "cmkctl"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/status":
                self._send(200, "application/json", _json(server.reconciler.status.snapshot()))
            elif path == "/healthz":
                ok, why = server.healthy()
                self._send(200 if ok else 503, "text/plain; charset=utf-8", why.encode() + b"\n")
            elif path == "/readyz":
                ok, why = server.ready()
                self._send(200 if ok else 503, "text/plain; charset=utf-8", why.encode() + b"\n")
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE, server.reconciler.metrics.render())
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, default=str).encode() + b"\n"

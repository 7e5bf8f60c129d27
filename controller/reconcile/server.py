"""The controller's HTTP endpoints (stdlib http.server handlers behind a bounded accept loop).

    GET /status   the status as JSON (conditions, revisions, drift, deferred, last 5 passes)
    GET /healthz  200 while the loop is alive (a pass finished recently enough), else 503
    GET /readyz   200 once a pass has finished since start, else 503
    GET /metrics  Prometheus text format

Why stdlib: four read-only endpoints need no framework, and every dependency is attack surface in
a pod that holds Azure credentials. Nothing here can change state; there are no query parameters.

Why a bounded loop rather than `ThreadingHTTPServer` (one thread per connection, no timeout): a
connection that never sends its request would hold a thread forever, so 1000 idle sockets meant
1000 threads. Here one thread accepts connections and reads each request head (the four endpoints
are GETs without a body) with a selector, so a silent or trickling client costs no thread, only a
buffer of at most `MAX_HEAD` bytes. A connection whose head is not complete `read_timeout` after it
was accepted is closed; at most `max_idle` wait at once (the oldest is closed to admit a new one, so
a probe still gets in). A complete request goes to a worker thread (at most `max_workers` at once,
each write bounded by `read_timeout`); a request that finds every worker busy gets 503 and is closed.
"""

from __future__ import annotations

import contextlib
import io
import json
import selectors
import socket
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

from controller.errors import CmkError
from controller.reconcile.loop import Reconciler
from controller.reconcile.metrics import CONTENT_TYPE

READ_TIMEOUT = 10.0  # seconds a connection may stay silent (kubelet probes time out after 5 s)
MAX_WORKERS = 8  # requests answered at once: four cheap read-only endpoints
MAX_IDLE = 128  # connections whose request is not complete yet, held without a thread
MAX_HEAD = 16 * 1024  # bytes of request line + headers; a GET needs a few hundred
BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 5\r\nConnection: close\r\nRetry-After: 1\r\n\r\nbusy\n"
)


def parse_listen(text: str) -> tuple[str, int]:
    """':8080' -> ('0.0.0.0', 8080); '127.0.0.1:9000' -> ('127.0.0.1', 9000); port 0 picks one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CmkError(f"--listen {text!r} is not [HOST]:PORT (e.g. :8080)")
    return (host.strip("[]") or "0.0.0.0", int(port))  # noqa: S104 - a pod listens on all interfaces


class StatusServer:
    def __init__(
        self,
        reconciler: Reconciler,
        listen: str,
        *,
        stale_after: float | None = None,
        read_timeout: float = READ_TIMEOUT,
        max_workers: int = MAX_WORKERS,
        max_idle: int = MAX_IDLE,
    ) -> None:
        self.reconciler = reconciler
        # alive = a pass finished within (longest sleep + a long pass); an LRO may legitimately take hours
        self.stale_after = (
            stale_after if stale_after is not None else reconciler.config.interval * 2 + 4 * 3600
        )
        self.started = time.monotonic()
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self._handler = _handler_for(self, read_timeout)
        self._workers = threading.BoundedSemaphore(max_workers)
        host, port = parse_listen(listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(128)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            raise
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="cmkctl-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._listener.close()

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

    # -- the accept loop: unfinished requests wait in the selector, not in threads -------------------
    def _serve(self) -> None:
        pending: OrderedDict[socket.socket, _Pending] = OrderedDict()  # oldest first
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            try:
                while not self._stopping.is_set():
                    for key, _ in sel.select(timeout=0.2):
                        conn: socket.socket | None = key.data
                        if conn is None:
                            self._accept(sel, pending)
                        else:
                            self._read(sel, pending, conn)
                    now = time.monotonic()
                    while pending and next(iter(pending.values())).deadline <= now:
                        expired, _ = pending.popitem(last=False)
                        sel.unregister(expired)
                        _close(expired)
            finally:
                for conn in pending:
                    _close(conn)

    def _accept(self, sel: selectors.BaseSelector, pending: OrderedDict[socket.socket, _Pending]) -> None:
        try:
            conn, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        if len(pending) >= self.max_idle:  # the oldest unfinished connection makes room for the new one
            oldest, _ = pending.popitem(last=False)
            sel.unregister(oldest)
            _close(oldest)
        conn.setblocking(False)
        pending[conn] = _Pending(deadline=time.monotonic() + self.read_timeout)
        sel.register(conn, selectors.EVENT_READ, data=conn)

    def _read(
        self, sel: selectors.BaseSelector, pending: OrderedDict[socket.socket, _Pending], conn: socket.socket
    ) -> None:
        """Take what the client sent; once the head is complete, hand the request to a worker."""
        waiting = pending[conn]
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        waiting.head += data
        complete = b"\r\n\r\n" in waiting.head or b"\n\n" in waiting.head
        if data and not complete and len(waiting.head) <= MAX_HEAD:
            return
        sel.unregister(conn)
        del pending[conn]
        if complete:
            self._dispatch(conn, bytes(waiting.head))
        else:  # the client closed early, or sent a head larger than any GET needs
            _close(conn)

    def _dispatch(self, conn: socket.socket, head: bytes) -> None:
        """A complete request: a worker answers it, or 503 when all are busy."""
        if not self._workers.acquire(blocking=False):
            with contextlib.suppress(OSError):
                conn.send(BUSY)  # fits the socket buffer: never blocks the accept loop
            _close(conn)
            return
        conn.setblocking(True)
        try:
            worker = threading.Thread(
                target=self._answer, args=(conn, head), name="cmkctl-http-w", daemon=True
            )
            worker.start()
        except RuntimeError:  # no thread could be started: answer nothing rather than hang
            self._workers.release()
            _close(conn)

    def _answer(self, conn: socket.socket, head: bytes) -> None:
        try:
            conn.settimeout(self.read_timeout)  # bounds each write to a client that stops reading
            request = cast(Any, _Request(conn, head))  # duck-types the socket the handler uses
            self._handler(request, conn.getpeername(), cast(Any, self))  # .server is never used
        except OSError:
            pass  # the client went away or stopped reading
        finally:
            _close(conn)
            self._workers.release()


class _Pending:
    """A connection whose request head is still arriving, and when it is given up."""

    __slots__ = ("deadline", "head")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.head = bytearray()


class _Request:
    """What the handler reads and writes: the head already read, then the socket for the answer."""

    def __init__(self, conn: socket.socket, head: bytes) -> None:
        self.conn = conn
        self.head = head

    def makefile(self, mode: str, buffering: int | None = None) -> io.BytesIO:
        """The handler's rfile: the head already read (its wfile writes through sendall)."""
        return io.BytesIO(self.head)

    def sendall(self, data: bytes) -> None:
        self.conn.sendall(data)

    def settimeout(self, value: float | None) -> None:
        self.conn.settimeout(value)

    def fileno(self) -> int:
        return self.conn.fileno()


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def _handler_for(server: StatusServer, read_timeout: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "cmkctl"
        sys_version = ""
        timeout = read_timeout  # each write of the answer (the head was read by the accept loop)

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

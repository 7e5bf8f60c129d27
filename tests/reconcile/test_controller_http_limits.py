"""The HTTP endpoints stay answerable under idle and slow connections: silent sockets cost no thread
and are closed after the read timeout, threads stay bounded, excess requests get 503.

Every socket here goes to 127.0.0.1 and the counts are bounded; each test stops by itself.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import requests
from gitops_repo import GitRepo, MakeReconciler

from controller.reconcile import server as http
from controller.reconcile.server import StatusServer

MakeServer = Callable[..., StatusServer]


@pytest.fixture
def make_server(repo: GitRepo, make_reconciler: MakeReconciler) -> Iterator[MakeServer]:
    started: list[StatusServer] = []
    rec = make_reconciler(repo.url)

    def make(**kw: float) -> StatusServer:
        srv = StatusServer(rec, "127.0.0.1:0", **kw)  # type: ignore[arg-type]  # int or float limits
        srv.start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def _healthz(port: int) -> requests.Response:
    s = requests.Session()
    s.trust_env = False
    return s.get(f"http://127.0.0.1:{port}/healthz", timeout=5)


def _connect(port: int, stack: ExitStack) -> socket.socket:
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
    return sock


def _workers() -> int:
    return sum(t.name == "cmkctl-http-w" for t in threading.enumerate())


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes `sock` (EOF or reset) before `within` seconds pass."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_many_idle_connections_cost_no_thread_and_healthz_still_answers(make_server: MakeServer) -> None:
    srv = make_server()  # the production limits
    baseline = threading.active_count()
    with ExitStack() as stack:
        idle = [_connect(srv.port, stack) for _ in range(3 * http.MAX_IDLE)]
        time.sleep(0.5)  # let the accept loop take them all
        assert threading.active_count() <= baseline + 1 and _workers() == 0
        started = time.monotonic()
        r = _healthz(srv.port)
        assert r.status_code == 200 and r.text == "ok\n"
        assert time.monotonic() - started < 2
        assert threading.active_count() <= baseline + http.MAX_WORKERS
        # beyond MAX_IDLE waiting connections, the oldest were closed to admit newer ones
        assert _closed_by_server(idle[0], within=1.0)
        assert not _closed_by_server(idle[-1], within=0.2)


def test_an_idle_connection_is_closed_after_the_read_timeout(make_server: MakeServer) -> None:
    srv = make_server(read_timeout=1.0)
    with ExitStack() as stack:
        silent = _connect(srv.port, stack)
        assert not _closed_by_server(silent, within=0.5)
        assert _closed_by_server(silent, within=2.0)
        # a request that starts but never ends is cut off too
        slow = _connect(srv.port, stack)
        slow.sendall(b"GET /healthz HTTP/1.0\r\n")
        assert _closed_by_server(slow, within=3.0)
    assert _healthz(srv.port).status_code == 200


def test_a_client_trickling_its_request_is_cut_off_at_the_deadline(make_server: MakeServer) -> None:
    """The deadline runs from accept, not from the last byte: sending slowly buys no time."""
    srv = make_server(read_timeout=1.0)
    with ExitStack() as stack:
        trickle = _connect(srv.port, stack)
        started = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.0\r\nX-Padding: " + b"a" * 40:
            try:
                trickle.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            if _closed_by_server(trickle, within=0.1):
                closed = True
                break
        assert closed and time.monotonic() - started < 2.5


def test_a_request_that_finds_every_worker_busy_gets_503_and_threads_stay_bounded(
    make_server: MakeServer, repo: GitRepo
) -> None:
    srv = make_server(max_workers=3)
    baseline = threading.active_count()
    status_lock = srv.reconciler.status._lock  # held: every /status answer waits, as behind a long write
    results: list[int] = []

    def get_status() -> None:
        s = requests.Session()
        s.trust_env = False
        results.append(s.get(f"http://127.0.0.1:{srv.port}/status", timeout=10).status_code)

    with status_lock:
        clients = [threading.Thread(target=get_status) for _ in range(3)]
        for c in clients:
            c.start()
        deadline = time.monotonic() + 5
        while _workers() < 3:  # every worker is answering a /status that waits
            assert time.monotonic() < deadline
            time.sleep(0.05)
        busy = _healthz(srv.port)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert _workers() == 3 and threading.active_count() <= baseline + 3 + 3  # + the 3 client threads
    for c in clients:
        c.join(timeout=10)
    assert results == [200, 200, 200]  # the held requests were answered once the status was free
    assert _healthz(srv.port).status_code == 200

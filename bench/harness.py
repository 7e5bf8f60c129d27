"""Processes for the scale benchmark: the emulator in its own process, the product in another.

Why separate processes: the issue asks for our own time apart from the emulator's. The emulator runs
as `python -m emulator` (its CPU time is read from /proc), each measured product run is a child
`python -m bench._worker` whose wall time, CPU time and peak RSS it reports about itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parents[1]
ARM_HOST = "management.azure.com"


def proc_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass
class EmulatorProcess:
    """`python -m emulator` in a child process, driven over its HTTPS admin API."""

    time_scale: float = 0.0
    durations: dict[str, float] = field(default_factory=dict)
    clock: str | None = None
    proc: subprocess.Popen[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    _http: requests.Session = field(default_factory=requests.Session)

    def __enter__(self) -> EmulatorProcess:
        cmd = [sys.executable, "-m", "emulator", "--time-scale", str(self.time_scale)]
        if self.durations:
            cmd += ["--durations", json.dumps(self.durations)]
        if self.clock:
            cmd += ["--clock", self.clock]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        for _ in range(2):  # two `export K=V` lines once it accepts connections
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"emulator did not start: {err}")
            key, _, value = line.strip().removeprefix("export ").partition("=")
            self.env[key] = value
        self._http.trust_env = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def url(self) -> str:
        return self.env["CMKCTL_EMULATOR"]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pid)

    def admin(self, method: str, what: str, body: Any = None, timeout: float = 600) -> Any:
        r = self._http.request(
            method,
            f"{self.url}/_emulator/{what}",
            data=json.dumps(body) if body is not None else None,
            headers={"Content-Type": "application/json"},
            timeout=timeout,
            verify=self.env["CMKCTL_CA_BUNDLE"],
        )
        if r.status_code >= 400:
            raise RuntimeError(f"emulator admin {method} {what}: {r.status_code} {r.text[:300]}")
        return r.json()

    def seed(self, estate: dict[str, Any]) -> None:
        self.admin("POST", "seed", estate)

    def reset(self) -> None:
        self.admin("POST", "reset")

    def configure(self, **cfg: Any) -> None:
        self.admin("POST", "config", cfg)

    def now(self) -> str:
        return str(self.admin("GET", "clock")["now"])

    def requests(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "requests")["requests"])

    def clear_requests(self) -> None:
        self.admin("DELETE", "requests")

    def events(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "events")["events"])


def run_worker(
    emulator: EmulatorProcess, *args: str, timeout: float = 1800, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run one measured product action in a fresh process; its last stdout line is a JSON result."""
    env = {**os.environ, **emulator.env, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    env.pop("CMKCTL_NOW", None)
    proc = subprocess.run(
        [sys.executable, "-m", "bench._worker", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"bench worker {args[0]} failed ({proc.returncode}): {proc.stderr[-2000:]} {proc.stdout[-500:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def replace_block(path: Path, begin: str, end: str, block: str) -> None:
    """Put a generated block (from `begin` to `end`, both included) into a README, keeping the prose
    around it; appended when the README has no such block yet."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = (text.rstrip() + "\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")


class EmulatorRedirect(HTTPAdapter):
    """Keep Azure URLs, connect to the emulator (Host header + netloc rewrite)."""

    def __init__(self, port: int) -> None:
        self._port = port
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        url = urllib.parse.urlsplit(request.url or "")
        request.headers["Host"] = url.netloc
        request.url = urllib.parse.urlunsplit(url._replace(netloc=f"127.0.0.1:{self._port}"))
        return super().send(request, **kw)

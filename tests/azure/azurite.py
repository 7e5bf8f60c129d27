"""Azurite (Microsoft's Azure Storage emulator) for the blob history store tests.

Installed on first use into the project-local `.tools/azurite` with npm (pinned 3.35), started on a free
port with in-memory persistence. Tests skip, saying why, only when npm/node are not available.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

VERSION = "3.35"
ROOT = Path(__file__).resolve().parents[2]
PREFIX = ROOT / ".tools" / "azurite"
BIN = PREFIX / "node_modules" / ".bin" / "azurite-blob"
# Azurite's documented, public development account (not a secret).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteUnavailable(RuntimeError):
    """npm/node missing: the only reason to skip (a failing start is a failure)."""


def ensure_installed() -> Path:
    if BIN.exists():
        return BIN
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise AzuriteUnavailable("node/npm are not installed; the blob store tests need Azurite")
    PREFIX.mkdir(parents=True, exist_ok=True)
    (PREFIX / ".gitignore").write_text("*\n", encoding="utf-8")  # a local tool, never committed
    done = subprocess.run(
        [npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund", f"azurite@{VERSION}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not BIN.exists():
        raise AzuriteUnavailable(f"npm could not install azurite@{VERSION}: {done.stderr.strip()[-500:]}")
    return BIN


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Azurite:
    def __init__(self) -> None:
        binary = ensure_installed()
        self.port = _free_port()
        self.workdir = PREFIX / f"run-{os.getpid()}-{self.port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--skipApiVersionCheck",
             "--inMemoryPersistence", "--silent"],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"azurite exited: {err[-500:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("azurite did not start within 30 s")

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def credential(self) -> dict[str, str]:
        return {"account_name": ACCOUNT, "account_key": KEY}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

"""A real headless browser for the HTML report (Debian `chromium`), and a tiny PNG reader.

The browser is run exactly as the report's browser check needs: headless, no sandbox (containers run as
root), no GPU, no network chatter, a fresh profile per run. `make browser` installs it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
)
INSTALL_HINT = "run `make browser` (tests/reporting/install_chromium.sh) to install Debian's chromium"


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Rendered:
    png: bytes
    dom: str
    log: str  # the browser's stderr with console logging on


def render(binary: str, page: Path, workdir: Path, *, width: int = 1400, height: int = 1100) -> Rendered:
    """Screenshot and serialised DOM of a local HTML file, each in a fresh profile."""
    shot = workdir / "screenshot.png"
    url = page.resolve().as_uri()
    common = [binary, *FLAGS, "--enable-logging=stderr", "--v=0"]
    snap = subprocess.run(
        [*common, f"--user-data-dir={workdir / 'profile-shot'}", f"--screenshot={shot}",
         f"--window-size={width},{height}", "--hide-scrollbars", url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    dom = subprocess.run(
        [*common, f"--user-data-dir={workdir / 'profile-dom'}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert snap.returncode == 0, snap.stderr[-2000:]
    assert dom.returncode == 0, dom.stderr[-2000:]
    return Rendered(png=shot.read_bytes(), dom=dom.stdout, log=snap.stderr + dom.stderr)


@dataclass
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def count(self, rgb: tuple[int, int, int]) -> int:
        """How many opaque pixels are exactly this colour (a filled shape's inside is exact)."""
        pattern = bytes(rgb) + (b"\xff" if self.channels == 4 else b"")
        return sum(row.count(pattern) for row in self.rows)


def read_png(data: bytes) -> Image:
    """Decode an 8-bit non-interlaced RGB/RGBA PNG (what Chromium writes) with the stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows = zlib.decompress(idat), width * channels, []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        filt, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if filt == 0:
            rows.append(bytes(line))
            prev = line
            continue
        if filt == 2:  # Up: the common case for flat page backgrounds, done without a Python loop per byte
            line = bytearray((x + p) & 0xFF for x, p in zip(line, prev, strict=True))
            rows.append(bytes(line))
            prev = line
            continue
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if filt == 1:
                line[i] = (line[i] + a) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + b) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return Image(width, height, channels, rows)

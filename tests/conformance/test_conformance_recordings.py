"""The recordings are the published files, byte for byte: each file's sha256 is the one its provenance
README states, and the README lists exactly the files that are there."""

from __future__ import annotations

import hashlib
import re

from conformance_support import RECORDINGS


def test_every_recording_is_listed_with_its_sha256() -> None:
    readme = (RECORDINGS / "README.md").read_text(encoding="utf-8")
    listed = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", readme, flags=re.MULTILINE)
    }
    present = {
        str(p.relative_to(RECORDINGS)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in RECORDINGS.rglob("*")
        if p.is_file() and p.name != "README.md"
    }
    assert present == listed
    assert "../" not in readme and "/work/" not in readme  # it stands on its own, inside the repository

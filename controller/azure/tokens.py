"""Continuation tokens kept small while their operations are in flight.

A token is the SDK's record of an operation's first answer (~2.4 KB of base64 text). Tokens of one kind
of operation differ only in a few ids, names and times, so each is compressed against the first one
of its kind (zlib's preset dictionary): ~140 bytes instead of ~1.3 KB compressed alone, which is
~45 MB less for 40,000 links in flight. The journal keeps every token whole."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Hashable


class TokenPacker:
    """Packs tokens against the first token seen of the same kind; thread-safe."""

    def __init__(self) -> None:
        self._first: dict[Hashable, bytes] = {}
        self._guard = threading.Lock()

    def pack(self, kind: Hashable, token: str) -> tuple[bytes, bytes]:
        """(dictionary, packed): both are needed to unpack; the dictionary is shared by its kind."""
        raw = token.encode("ascii")
        with self._guard:
            zdict = self._first.setdefault(kind, raw)
        packer = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=zdict)
        return zdict, packer.compress(raw) + packer.flush()

    @staticmethod
    def unpack(zdict: bytes, packed: bytes) -> str:
        unpacker = zlib.decompressobj(zdict=zdict)
        return (unpacker.decompress(packed) + unpacker.flush()).decode("ascii")

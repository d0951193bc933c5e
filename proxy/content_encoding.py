"""Incremental decoding of compressed response bodies, for storage only.

The client always receives the upstream's bytes untouched; the cassette keeps the identity-encoded
body so it can be read, decoded and replayed without the original compression.
"""

from __future__ import annotations

import zlib
from typing import Protocol


class Decompressor(Protocol):
    def decompress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    def decompress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _Brotli:
    def __init__(self) -> None:
        import brotli  # type: ignore[import-not-found, import-untyped, unused-ignore]

        self._inner = brotli.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        return bytes(self._inner.process(data))

    def flush(self) -> bytes:
        return b""


class UnsupportedEncoding(Exception):
    pass


def decompressor_for(encoding: str | None) -> Decompressor:
    """A streaming decompressor for a `content-encoding` value (one coding; the common case)."""
    name = (encoding or "identity").strip().lower()
    if name in ("identity", ""):
        return _Identity()
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if name == "deflate":
        return zlib.decompressobj(wbits=zlib.MAX_WBITS)
    if name == "br":
        try:
            return _Brotli()
        except ImportError:
            raise UnsupportedEncoding(
                "br (install the brotli package to store it decoded)"
            ) from None
    raise UnsupportedEncoding(name)


def decode_body(data: bytes, encoding: str | None) -> bytes:
    decoder = decompressor_for(encoding)
    return decoder.decompress(data) + decoder.flush()

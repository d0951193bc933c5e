"""Incremental decoding of compressed response bodies, for storage only.

The client always receives the upstream's bytes untouched; the cassette keeps the identity-encoded
body so it can be read, decoded and replayed without the original compression.
"""

from __future__ import annotations

import zlib
from typing import Any, Protocol


class Decompressor(Protocol):
    def decompress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...

    @property
    def finished(self) -> bool:
        """Whether the bytes so far end where the compressed stream does (not cut short)."""
        ...


class _Identity:
    def decompress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""

    @property
    def finished(self) -> bool:
        return True


class UnsupportedEncoding(Exception):
    pass


class CorruptBody(Exception):
    """The bytes are not valid in the coding their `content-encoding` names."""


class _Zlib:
    """gzip or deflate; zlib's own error becomes `CorruptBody`, like brotli's.

    A gzip body may be several gzip members one after the other (RFC 1952): each is decoded in
    turn, where zlib alone would stop after the first. Bytes after the end of a deflate stream
    are not part of any body.
    """

    def __init__(self, wbits: int, members: bool) -> None:
        self._wbits = wbits
        self._members = members
        self._inner = zlib.decompressobj(wbits=wbits)

    def decompress(self, data: bytes) -> bytes:
        out: list[bytes] = []
        try:
            while data:
                out.append(self._inner.decompress(data))
                if not self._inner.eof:
                    break
                data = self._inner.unused_data
                if data and not self._members:
                    raise CorruptBody(f"{len(data)} bytes after the end of the deflate stream")
                if data:
                    self._inner = zlib.decompressobj(wbits=self._wbits)  # the next member
        except zlib.error as exc:
            raise CorruptBody(str(exc)) from None
        return b"".join(out)

    def flush(self) -> bytes:
        try:
            return self._inner.flush()
        except zlib.error as exc:
            raise CorruptBody(str(exc)) from None

    @property
    def finished(self) -> bool:
        return self._inner.eof


class _Brotli:
    def __init__(self) -> None:
        import brotli  # type: ignore[import-not-found, import-untyped, unused-ignore]

        self._inner = brotli.Decompressor()
        self._error: type[Exception] = brotli.error

    def decompress(self, data: bytes) -> bytes:
        try:
            return bytes(self._inner.process(data))
        except self._error as exc:
            raise CorruptBody(str(exc)) from None

    def flush(self) -> bytes:
        return b""

    @property
    def finished(self) -> bool:
        return bool(self._inner.is_finished())


class _Zstd:
    """zstd, frame after frame (a stream may send several): the module Python 3.14 ships, or
    its backport, which aiohttp's speedups install."""

    def __init__(self) -> None:
        try:
            from compression import zstd  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found, no-redef, unused-ignore]
        self._module: Any = zstd
        self._inner = zstd.ZstdDecompressor()
        self._frame_ended = False  # the last byte fed ended a frame

    def decompress(self, data: bytes) -> bytes:
        out: list[bytes] = []
        try:
            while data:
                if self._frame_ended:
                    self._inner = self._module.ZstdDecompressor()  # the next frame
                out.append(self._inner.decompress(data))
                self._frame_ended = self._inner.eof
                if not self._frame_ended:
                    break
                data = self._inner.unused_data  # the next frame's start, if any
        except self._module.ZstdError as exc:
            raise CorruptBody(str(exc)) from None
        return b"".join(out)

    def flush(self) -> bytes:
        return b""

    @property
    def finished(self) -> bool:
        return self._frame_ended


def is_identity(encoding: str | None) -> bool:
    """Whether a `content-encoding` value leaves the body as it is."""
    return encoding is None or encoding.strip().lower() in ("identity", "")


def decompressor_for(encoding: str | None) -> Decompressor:
    """A streaming decompressor for a `content-encoding` value (one coding; the common case)."""
    if encoding is None or is_identity(encoding):
        return _Identity()
    name = encoding.strip().lower()
    if name in ("gzip", "x-gzip"):
        return _Zlib(wbits=16 + zlib.MAX_WBITS, members=True)
    if name == "deflate":
        return _Zlib(wbits=zlib.MAX_WBITS, members=False)
    if name == "br":
        try:
            return _Brotli()
        except ImportError:
            raise UnsupportedEncoding(
                "br (install the brotli package to store it decoded)"
            ) from None
    if name == "zstd":
        try:
            return _Zstd()
        except ImportError:
            raise UnsupportedEncoding("zstd (install backports.zstd to store it decoded)") from None
    raise UnsupportedEncoding(name)


def decode_body(data: bytes, encoding: str | None) -> bytes:
    """The whole body decoded; raises UnsupportedEncoding, or CorruptBody for bytes that are not
    valid in the coding, including a body cut short before its compressed stream ends."""
    decoder = decompressor_for(encoding)
    if not data:
        return data  # a HEAD's, a 204's: no body to decode, whatever the headers say
    decoded = decoder.decompress(data) + decoder.flush()
    if not decoder.finished:
        raise CorruptBody("the body ends before its compressed stream does")
    return decoded

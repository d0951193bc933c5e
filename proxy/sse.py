"""Incremental server-sent-events framing that keeps every byte.

The splitter only finds event boundaries (a blank line, with LF, CR or CRLF line ends); it never
rewrites an event, so the concatenation of what it yields is exactly the stream it was fed.
"""

from __future__ import annotations

import re

import msgspec

_EOL = rb"(?:\r\n|\r(?!\n)|\n)"
_BLANK_LINE = re.compile(_EOL + _EOL)
_LINE = re.compile(r"\r\n|\r|\n")


class SseEvent(msgspec.Struct, array_like=True):
    """One event's exact bytes and when its last byte arrived (ms after the request was sent)."""

    offset_ms: float
    data: bytes


class SseSplitter:
    """Feed stream chunks in, get complete events (their raw bytes) out."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        # A blank line can straddle chunks: re-scan only the last 3 old bytes, not the whole event.
        scan_from = max(len(self._buffer) - 3, 0)
        buffer = self._buffer + chunk if self._buffer else chunk
        # A trailing CR may be the first half of a CRLF: wait for the next chunk to decide.
        end = len(buffer) - 1 if buffer.endswith(b"\r") else len(buffer)
        events: list[bytes] = []
        start = 0
        while (found := _BLANK_LINE.search(buffer, max(start, scan_from), end)) is not None:
            events.append(buffer[start : found.end()])
            start = found.end()
        self._buffer = buffer[start:]
        return events

    def flush(self) -> bytes:
        """Bytes left after the last complete event (an unterminated event at end of stream)."""
        rest, self._buffer = self._buffer, b""
        return rest


class ParsedEvent(msgspec.Struct):
    event: str | None
    data: str


def parse_event(raw: bytes) -> ParsedEvent | None:
    """The `event:` name and joined `data:` lines of one event; None for comment-only events."""
    name: str | None = None
    data_lines: list[str] = []
    for line in _LINE.split(raw.decode("utf-8", "replace")):
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            name = value
        elif field == "data":
            data_lines.append(value)
    if name is None and not data_lines:
        return None
    return ParsedEvent(event=name, data="\n".join(data_lines))


def is_event_stream(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";")[0].strip().lower() == (
        "text/event-stream"
    )

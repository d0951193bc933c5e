"""structlog set-up: a readable console on a TTY, one JSON object per line otherwise."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import sys
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

import msgspec
import structlog

from proxy.config import LogFormat

Logger = structlog.typing.FilteringBoundLogger


class LineWriter:
    """Writes rendered lines straight to the file descriptor, no Python I/O layers.

    Inside an event loop the lines of one loop iteration go out in one write at its end (a busy
    proxy logs an exchange per request; a write each was a sixth of a replay's CPU); outside one,
    each line is written at once. Writes stay within PIPE_BUF and end on a line boundary, so lines
    from other processes sharing the pipe never land inside one.
    """

    def __init__(self, stream: TextIO) -> None:
        stream.flush()
        self._fd = stream.fileno()
        self._pending: list[bytes] = []
        self._scheduled = False

    def msg(self, message: bytes) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write([message])
            return
        self._pending.append(message)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        lines, self._pending = self._pending, []
        self._write(lines)

    def _write(self, lines: list[bytes]) -> None:
        chunk = bytearray()
        for line in lines:
            if chunk and len(chunk) + len(line) + 1 > select.PIPE_BUF:
                self._write_all(chunk)
                chunk = bytearray()
            chunk += line
            chunk += b"\n"
        if chunk:
            self._write_all(chunk)

    def _write_all(self, data: bytearray) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    log = debug = info = warning = warn = error = critical = exception = failure = fatal = msg


class _JsonLines:
    """Level, UTC ISO timestamp and JSON rendering in one processor: one per exchange is hot."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _: Any, method: str, event: MutableMapping[str, Any]) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["level"] = method
        if "exc_info" in event:
            event = structlog.processors.format_exc_info(_, method, event)
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return msgspec.json.encode(event)


def make_logger(fmt: LogFormat, level: str, stream: TextIO | None = None) -> Logger:
    """A logger bound to `stream` (stderr by default); nothing global is configured."""
    out = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    processors: list[Any]
    sink: Any
    if console:
        processors = [
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=out.isatty()),
        ]
        sink = structlog.PrintLogger(out)
    else:
        processors = [_JsonLines()]
        try:
            sink = LineWriter(out)
        except (AttributeError, OSError, ValueError):  # a stream without a file descriptor
            sink = structlog.BytesLogger(getattr(out, "buffer", None))
    logger: Logger = structlog.wrap_logger(
        sink,
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    return logger

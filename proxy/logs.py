"""structlog set-up: a readable console on a TTY, one JSON object per line otherwise."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import sys
import time
import traceback
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import msgspec
import structlog
from aiohttp.http_exceptions import HttpProcessingError

from proxy.config import LogFormat

Logger = structlog.typing.FilteringBoundLogger


# How long an info line may wait for others to share its write. Short enough for anyone tailing
# the log; long enough that a busy proxy writes once per many exchanges.
FLUSH_DELAY_S = 0.05
# Pending bytes that trigger a write at once, however young they are.
FLUSH_BYTES = 64 * 1024


class LineWriter:
    """Writes rendered lines straight to the file descriptor, no Python I/O layers.

    Inside an event loop, debug and info lines (one per exchange on a busy proxy) are held for
    up to FLUSH_DELAY_S and go out together: a write per line, or even per loop iteration, was
    a tenth of a replay's CPU. Warnings and worse, and any line outside a loop, are written at
    once, after whatever is pending, so order is kept. `flush` writes what is pending; call it
    when the loop ends. Writes stay within PIPE_BUF and end on a line boundary, so lines from
    other processes sharing the pipe never land inside one.
    """

    def __init__(self, stream: TextIO) -> None:
        stream.flush()
        self._fd = stream.fileno()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    def msg(self, message: bytes) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.now(message)
            return
        self._pending.append(message)
        self._pending_bytes += len(message)
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(FLUSH_DELAY_S, self.flush)

    def now(self, message: bytes) -> None:
        self._pending.append(message)
        self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._pending, self._pending_bytes = self._pending, [], 0
        if lines:
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

    log = debug = info = msg
    warning = warn = error = critical = exception = failure = fatal = now


class _Timestamps:
    """UTC ISO timestamps: of the moment, or of the epoch float an event brings as `timestamp`
    (events emitted after the fact, see :mod:`proxy.exchange_log`)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        at = event.get("timestamp")
        now = at if isinstance(at, float) else time.time()
        second = int(now)
        if second != self._second:  # formatting the seconds once per second, not per line
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event


class _JsonLines(_Timestamps):
    """Level, timestamp and JSON rendering in one processor: one per exchange is hot."""

    def __call__(self, _: Any, method: str, event: MutableMapping[str, Any]) -> bytes:
        event["level"] = method
        if "exc_info" in event:
            event = structlog.processors.format_exc_info(_, method, event)
        return msgspec.json.encode(super().__call__(_, method, event))


class _LibraryRecords(logging.Handler):
    """Records a library logs through `logging` (aiohttp's server: a malformed request, an error
    in a handler), written as events of ours: in JSON mode one line, not a bare traceback that
    log shippers cannot parse."""

    def __init__(self, log: Logger) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {"logger": record.name}
        name = record.levelname.lower()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields["error"] = repr(exc)
            if isinstance(exc, HttpProcessingError):
                name = "warning"  # a client's malformed request, not the proxy's fault
            else:
                fields["traceback"] = "".join(traceback.format_exception(exc)).rstrip()
        emit = getattr(self._log, name if name in ("debug", "info", "warning") else "error")
        emit(record.getMessage(), **fields)


@contextmanager
def library_logs_to(log: Logger, name: str = "aiohttp") -> Iterator[None]:
    """Route the `name` logger's records through `log` for the block's duration."""
    library = logging.getLogger(name)
    handler = _LibraryRecords(log)
    propagate = library.propagate
    library.addHandler(handler)
    library.propagate = False  # or a handler on the root logger would write them again
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.propagate = propagate


def make_logger(fmt: LogFormat, level: str, stream: TextIO | None = None) -> Logger:
    """A logger bound to `stream` (stderr by default); nothing global is configured.

    Info lines it holds back in a running loop go out within FLUSH_DELAY_S; a caller whose loop
    may end sooner uses `logging_to`, which writes them when its block ends.
    """
    return _build(fmt, level, stream)[0]


@contextmanager
def logging_to(fmt: LogFormat, level: str, stream: TextIO | None = None) -> Iterator[Logger]:
    """`make_logger`, with every line still held back written when the block ends."""
    logger, sink = _build(fmt, level, stream)
    try:
        yield logger
    finally:
        if isinstance(sink, LineWriter):
            sink.flush()


def _build(fmt: LogFormat, level: str, stream: TextIO | None) -> tuple[Logger, object]:
    out = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    processors: list[Any]
    sink: Any
    if console:
        processors = [
            structlog.processors.add_log_level,
            _Timestamps(),
            structlog.dev.ConsoleRenderer(colors=out.isatty()),
        ]
        sink = structlog.PrintLogger(out)
    else:
        processors = [_JsonLines()]
        try:
            sink = LineWriter(out)
        except (AttributeError, OSError, ValueError):  # a stream without a file descriptor
            sink = structlog.BytesLogger(getattr(out, "buffer", None))
    # Bound at once: the lazy proxy `wrap_logger` returns would look the method up on every call.
    logger: Logger = structlog.wrap_logger(
        sink,
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
    ).bind()
    return logger, sink

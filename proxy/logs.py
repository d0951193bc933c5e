"""structlog set-up: a readable console on a TTY, one JSON object per line otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import msgspec
import structlog

from proxy.config import LogFormat

Logger = structlog.typing.FilteringBoundLogger


def _json_dumps(event: Any, **_: Any) -> str:
    return msgspec.json.encode(event).decode()


def make_logger(fmt: LogFormat, level: str, stream: TextIO | None = None) -> Logger:
    """A logger bound to `stream` (stderr by default); nothing global is configured."""
    out = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if console:
        processors.append(structlog.dev.ConsoleRenderer(colors=out.isatty()))
    else:
        processors += [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(_json_dumps),
        ]
    logger: Logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    return logger

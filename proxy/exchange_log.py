"""The one log event each exchange gets, emitted in runs shortly after the responses went out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from proxy.logs import FLUSH_DELAY_S, Logger


class DeferredEvents:
    """Info events queued by the response path and emitted together within FLUSH_DELAY_S.

    Rendering an event between requests cost a replay about three times what the same rendering
    costs in a run of events, so the response path only appends. Each event keeps the time it
    happened at as its timestamp. `emit` writes whatever is queued; owners call it on close.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Logger, str, dict[str, Any]]] = []
        self._timer: asyncio.TimerHandle | None = None

    def info(self, logger: Logger, event: str, **fields: Any) -> None:
        fields["timestamp"] = time.time()
        self._pending.append((logger, event, fields))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self.emit)

    def emit(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        for logger, event, fields in pending:
            logger.info(event, **fields)

"""In-memory index of a cassette's recordings: per match key, a FIFO in recorded order."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from proxy.exchange import Exchange


class Take(msgspec.Struct):
    """The outcome of a lookup: the recording to serve, if any, and whether the key was used up."""

    exchange: Exchange | None
    used_up: bool = False
    replayed: int = 0
    recorded: int = 0


class RecordingIndex:
    def __init__(self, repeat_last: bool) -> None:
        self._by_key: dict[str, list[Exchange]] = {}
        self._served: dict[str, int] = {}
        self._repeat_last = repeat_last
        # Stored exchanges no replay serves (a 502 of the proxy's own, a body cut short), the
        # latest per key: a miss on one of those says so rather than naming another recording.
        self._unreplayable: dict[str, Exchange] = {}

    def add(self, exchange: Exchange, key: str, *, consumed: bool = False) -> None:
        """Index a replayable recording under `key` (its match key under the rules in force
        now); `consumed` marks one just made for the live request."""
        if not exchange.replayable:
            self._unreplayable[key] = exchange
            return
        queue = self._by_key.setdefault(key, [])
        queue.append(exchange)
        if consumed:
            self._served[key] = len(queue)

    def take(self, key: str) -> Take:
        queue = self._by_key.get(key)
        if not queue:
            return Take(None)
        served = self._served.get(key, 0)
        if served < len(queue):
            self._served[key] = served + 1
            return Take(queue[served], replayed=served + 1, recorded=len(queue))
        if self._repeat_last:
            return Take(queue[-1], used_up=True, replayed=served, recorded=len(queue))
        return Take(None, used_up=True, replayed=served, recorded=len(queue))

    def unreplayable(self, key: str) -> Exchange | None:
        """The latest stored exchange under `key` that no replay serves, if any."""
        return self._unreplayable.get(key)

    def unused(self) -> list[Exchange]:
        """The recordings never served (the pytest plugin's unused report and
        `--cassette-strict`)."""
        return [
            exchange
            for key, queue in self._by_key.items()
            for exchange in queue[self._served.get(key, 0) :]
        ]

    def __iter__(self) -> Iterator[Exchange]:
        for queue in self._by_key.values():
            yield from queue

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._by_key.values())

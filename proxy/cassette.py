"""A cassette in use: its store, its in-memory index, and the rules that key its requests."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
from multidict import CIMultiDict

from proxy.config import Config, Mode
from proxy.content_encoding import CorruptBody, UnsupportedEncoding, decode_body
from proxy.decode import TypedView
from proxy.exchange import Exchange
from proxy.exchange_log import DeferredEvents
from proxy.headers import header_value, replay_response_headers
from proxy.logs import Logger
from proxy.matching import Canonical, MatchRules
from proxy.recordings import RecordingIndex
from proxy.sse import is_event_stream
from proxy.store import CassetteStore, StoreError


class SessionStats(msgspec.Struct):
    """What this cassette did since it was opened: for summaries (`run`, the pytest plugin)."""

    replayed: int = 0
    recorded: int = 0  # replayable recordings
    misses: list[str] = msgspec.field(default_factory=list)
    # Stored exchanges a replay will not serve (the proxy's own 502 for an unreachable upstream,
    # a body cut short), each described with why.
    unreplayable: list[str] = msgspec.field(default_factory=list)


class Cassette:
    def __init__(
        self,
        store: CassetteStore,
        mode: Mode,
        rules: MatchRules,
        index: RecordingIndex,
        stored: int,
        view: TypedView,
        log: Logger,
    ) -> None:
        self.store = store
        self.mode = mode
        self.rules = rules
        self.index = index
        self.exchange_count = stored
        self.stats = SessionStats()
        self._view = view
        self._log = log
        self._canonical_cache: dict[int, Canonical] = {}
        self._replay_headers: dict[int, CIMultiDict[str]] = {}
        self._replay_loggers: dict[int, Logger] = {}
        self._replay_events = DeferredEvents() if log.is_enabled_for(logging.INFO) else None
        self._replay_bodies: dict[int, bytes] = {}
        # Ids of recordings indexed for replay (auto mode) that the writer has not written yet.
        self._unwritten: set[int] = set()
        # The pytest test using the cassette now: its recordings are marked as its own.
        self.recorder: str | None = None
        # Requests being served: a cassette taken out of use stays open until they are over.
        self._in_flight = 0
        self._all_settled: asyncio.Event | None = None

    @classmethod
    async def open(
        cls, path: Path, mode: Mode, config: Config, view: TypedView, log: Logger
    ) -> Cassette:
        if mode == "replay" and not cassette_exists(path):
            # Replaying a mistyped path would otherwise answer every request with a miss.
            raise StoreError(
                f"{path}: no such cassette to replay; check the path, or record it first "
                "(--mode record or --mode auto)"
            )
        # A recorder never looks recordings up: keep memory flat however long it runs.
        store, contents = await CassetteStore.open(
            path, load=mode != "record", replay_only=mode == "replay"
        )
        rules = MatchRules(config.matching)
        index = RecordingIndex(repeat_last=config.replay.repeat == "last")
        cassette = cls(store, mode, rules, index, contents.count, view, log)
        for exchange in contents.exchanges:
            # Keys are recomputed with today's matching rules, so changing ignore paths or
            # matched headers after recording applies to old recordings too.
            index.add(exchange, rules.key(cassette.canonical_of(exchange, remember=False)))
        if mode != "replay":  # a replaying cassette records nothing: no writer
            store.start(
                before_write=view.describe, after_write=cassette._logged, on_error=cassette._failed
            )
        return cassette

    @classmethod
    def nothing_to_replay(
        cls, path: Path, config: Config, view: TypedView, log: Logger
    ) -> Cassette:
        """A replaying cassette with no file behind it: every request is a miss, nothing is
        written. For a server whose tests use named cassettes only."""
        index = RecordingIndex(repeat_last=config.replay.repeat == "last")
        return cls(
            CassetteStore(path, 1), "replay", MatchRules(config.matching), index, 0, view, log
        )

    @property
    def path(self) -> Path:
        return self.store.path

    def new_id(self) -> int:
        return self.store.allocate_id()

    def hold(self) -> None:
        """A request is being served from this cassette: closing waits until it has `settled`
        (an exchange it forwards is recorded before the writer stops)."""
        self._in_flight += 1

    def settled(self) -> None:
        """A request `hold` counted is over."""
        self._in_flight -= 1
        if not self._in_flight and self._all_settled is not None:
            self._all_settled.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def close_when_settled(self) -> None:
        """Close once every request still being served from it is over."""
        if self._in_flight:
            self._all_settled = asyncio.Event()
            await self._all_settled.wait()
        await self.close()

    def record(self, exchange: Exchange) -> None:
        """Hand a finished exchange to the writer (never waits on disk) and index it in auto mode."""
        if exchange.content_encoding and not self._stream_kept_encoded(exchange):
            try:
                exchange.response_body = decode_body(
                    exchange.response_body, exchange.content_encoding
                )
            except (UnsupportedEncoding, CorruptBody) as exc:
                # Keep the encoded bytes and say why; replay then sends them with their encoding.
                exchange.notes.append(
                    f"response body kept {exchange.content_encoding}-encoded: {exc}"
                )
            else:
                exchange.content_encoding = None
        self.exchange_count += 1
        if exchange.replayable:
            self.stats.recorded += 1
        else:
            why = f" ({exchange.notes[0]})" if exchange.notes else ""
            self.stats.unreplayable.append(
                f"{exchange.method} {exchange.path}: {exchange.outcome.value}{why}"
            )
        self.store.submit(exchange)
        if self.mode == "auto" and exchange.complete:
            # Not a stream its client left partway: a later identical request that reads on
            # should be forwarded, not handed the part (as repeat-last would).
            self.index.add(exchange, exchange.match_key, consumed=True)
            self._unwritten.add(exchange.id)

    @staticmethod
    def _stream_kept_encoded(exchange: Exchange) -> bool:
        """An event stream the relay could not decode (and said why in a note): decoding it
        again here would only fail again."""
        return exchange.stream or is_event_stream(
            header_value(exchange.response_headers, "content-type")
        )

    def canonical_of(self, exchange: Exchange, *, remember: bool = True) -> Canonical:
        """The canonical form of a stored request under the current rules.

        Remembered for explaining misses; not when indexing a whole cassette, which would hold
        a second, decoded copy of every request body in memory.
        """
        cached = self._canonical_cache.get(exchange.id)
        if cached is not None:
            return cached
        content_type = header_value(exchange.request_headers, "content-type")
        canonical = self.rules.canonical(
            exchange.method,
            exchange.path,
            exchange.query,
            exchange.request_headers,
            content_type,
            exchange.request_body,
        )
        if remember:
            self._canonical_cache[exchange.id] = canonical
        return canonical

    def replay_headers(self, exchange: Exchange) -> CIMultiDict[str]:
        """Headers to replay a recording with, built once per recording."""
        headers = self._replay_headers.get(exchange.id)
        if headers is None:
            headers = replay_response_headers(
                exchange.response_headers,
                exchange.content_encoding,
                head=exchange.method == "HEAD",
            )
            self._replay_headers[exchange.id] = headers
        return headers

    def replay_body(self, exchange: Exchange) -> bytes:
        """The whole response body to replay at once (a stream's events joined), built once.

        Without replay timing nothing is gained by writing events one by one: the client gets
        the same bytes in fewer segments, which saves a write and a read per event.
        """
        if not exchange.stream:
            return exchange.response_body
        body = self._replay_bodies.get(exchange.id)
        if body is None:
            body = self._replay_bodies[exchange.id] = exchange.body_bytes()
        return body

    def replayed(self, exchange: Exchange, ms: float, key: str | None) -> None:
        """Count a replay and log it; `ms` and `key` describe this replay, not the recording."""
        self.stats.replayed += 1
        if self._replay_events is not None:
            self._replay_events.info(self.replay_logger(exchange), "exchange", ms=ms, key=key)

    async def close(self) -> None:
        if self._replay_events is not None:
            self._replay_events.emit()
        await self.store.close()

    def _logged(self, exchange: Exchange) -> None:
        self._unwritten.discard(exchange.id)
        self._log.info("exchange", **exchange_fields(exchange, "recorded", self.mode))

    def replay_logger(self, exchange: Exchange) -> Logger:
        """A logger bound to what the log says about replaying this recording, built once.

        Binding once keeps the per-replay cost to the two live fields (`ms`, `key`).
        """
        bound = self._replay_loggers.get(exchange.id)
        if bound is None:
            usage = exchange.usage
            bound = self._log.bind(
                source="replayed",
                mode=self.mode,
                id=exchange.id,
                method=exchange.method,
                path=exchange.path,
                status=exchange.status,
                model=usage.model,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                stream=exchange.stream,
            )
            # Recorded this session (auto mode) and not yet written, it has no typed columns
            # yet (the writer decodes them): bound again next time rather than kept.
            if exchange.id not in self._unwritten:
                self._replay_loggers[exchange.id] = bound
        return bound

    def _failed(self, exc: Exception, batch: Sequence[Exchange]) -> None:
        self._log.error(
            "cassette write failed",
            cassette=str(self.path),
            error=str(exc),
            exchange_ids=[e.id for e in batch],
            at=time.time(),
        )


def exchange_fields(exchange: Exchange, source: str, mode: str) -> dict[str, object]:
    """The fields of the one log event each exchange gets."""
    usage = exchange.usage
    return {
        "source": source,
        "mode": mode,
        "id": exchange.id,
        "method": exchange.method,
        "path": exchange.path,
        "status": exchange.status,
        "model": usage.model,
        "ms": _round(exchange.duration_ms),
        "ttfb_ms": _round(exchange.ttfb_ms),
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "key": exchange.key_fingerprint,
        "outcome": exchange.outcome.value,
        "stream": exchange.stream,
        # When the exchange ended, not when its row was written.
        "timestamp": exchange.started_at + (exchange.duration_ms or 0.0) / 1000,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def cassette_exists(path: Path) -> bool:
    """Whether there is a file at `path`; a path that cannot even be looked at (a folder the
    user may not enter) is a StoreError naming it, not an error about something else."""
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the cassette ({exc.strerror or exc})") from None
    return True

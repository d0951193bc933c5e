"""The cassette file: one aiosqlite connection, one writer task, a write-behind queue.

Handlers never await the disk: `submit` only enqueues. The writer drains the queue in batches, each
batch one transaction, so a burst of exchanges costs one commit. `close` drains everything first,
which is what makes SIGTERM lose nothing that was accepted.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from proxy.exchange import Exchange, Outcome, Usage
from proxy.sse import SseEvent
from proxy.store.migrations import apply_migrations

BATCH_LIMIT = 512
# The writer waits this long after the first exchange of a batch, so that under load one
# transaction (and one round trip to the SQLite thread) carries many exchanges.
BATCH_LINGER_S = 0.05
RETRY_DELAYS = (0.1, 0.5, 2.0)

_EXCHANGE_COLUMNS = (
    "id, started_at, ended_at, method, path, query, endpoint, request_headers, key_fingerprint,"
    " request_body, status, response_headers, response_body, content_encoding, stream, ttfb_ms,"
    " duration_ms, match_key, complete, outcome, notes, model, input_tokens, cached_tokens,"
    " output_tokens, reasoning_tokens, finish_reason, error_type, error_code, upstream_request_id"
)
_INSERT_EXCHANGE = (
    f"INSERT OR REPLACE INTO exchanges ({_EXCHANGE_COLUMNS})"
    f" VALUES ({', '.join('?' * len(_EXCHANGE_COLUMNS.split(',')))})"
)
_INSERT_EVENT = (
    "INSERT OR REPLACE INTO sse_events (exchange_id, idx, offset_ms, data) VALUES (?, ?, ?, ?)"
)

Hook = Callable[[Exchange], None]
ErrorHook = Callable[[Exception, Sequence[Exchange]], None]


class StoreError(Exception):
    """The cassette file cannot be opened or is not a cassette."""


class CassetteStore:
    def __init__(self, path: Path, db: aiosqlite.Connection, next_id: int) -> None:
        self.path = path
        self._db = db
        self._next_id = next_id
        self._queue: asyncio.Queue[Exchange | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._before_write: Hook | None = None
        self._after_write: Hook | None = None
        self._encode = msgspec.json.Encoder()
        self._on_error: ErrorHook | None = None
        self.failed_ids: list[int] = []

    @classmethod
    async def open(cls, path: Path) -> CassetteStore:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{path}: cannot open the cassette ({exc})") from None
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await apply_migrations(db)
            async with db.execute("SELECT COALESCE(MAX(id), 0) FROM exchanges") as cursor:
                row = await cursor.fetchone()
        except sqlite3.DatabaseError as exc:
            await db.close()  # else its worker thread keeps the process alive
            raise StoreError(f"{path}: not a usable cassette ({exc})") from None
        assert row is not None
        return cls(path, db, int(row[0]) + 1)

    def start(
        self,
        before_write: Hook | None = None,
        after_write: Hook | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        """Start the writer; hooks run on each exchange just before / after it is written."""
        self._before_write = before_write
        self._after_write = after_write
        self._on_error = on_error
        self._writer = asyncio.create_task(self._write_loop(), name=f"cassette-writer:{self.path}")

    def allocate_id(self) -> int:
        """Sequence numbers follow arrival order, so identical requests replay in recorded order."""
        allocated = self._next_id
        self._next_id += 1
        return allocated

    def submit(self, exchange: Exchange) -> None:
        self._queue.put_nowait(exchange)

    async def flush(self) -> None:
        """Wait until everything submitted so far is on disk."""
        await self._queue.join()

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
            self._writer = None
        await self._db.close()

    async def load(self) -> list[Exchange]:
        """Every stored exchange in sequence order, SSE events included."""
        events: dict[int, list[SseEvent]] = {}
        async with self._db.execute(
            "SELECT exchange_id, offset_ms, data FROM sse_events ORDER BY exchange_id, idx"
        ) as cursor:
            async for exchange_id, offset_ms, data in cursor:
                events.setdefault(exchange_id, []).append(SseEvent(offset_ms, bytes(data)))
        exchanges: list[Exchange] = []
        async with self._db.execute(
            f"SELECT {_EXCHANGE_COLUMNS} FROM exchanges ORDER BY id"
        ) as cursor:
            async for row in cursor:
                exchanges.append(_row_to_exchange(row, events.get(row[0], [])))
        return exchanges

    async def count(self) -> int:
        async with self._db.execute("SELECT COUNT(*) FROM exchanges") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            batch: list[Exchange] = []
            item = await self._queue.get()
            if item is not None:
                await asyncio.sleep(BATCH_LINGER_S)
            while True:
                if item is None:
                    stopping = True
                    self._queue.task_done()
                else:
                    batch.append(item)
                if len(batch) >= BATCH_LIMIT or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if batch:
                try:
                    await self._write_batch(batch)
                except sqlite3.Error as exc:
                    # Keep serving; the failure is loud and names what could not be stored.
                    self.failed_ids.extend(e.id for e in batch)
                    if self._on_error is not None:
                        self._on_error(exc, batch)
                    for _ in batch:
                        self._queue.task_done()

    async def _write_batch(self, batch: Sequence[Exchange]) -> None:
        for exchange in batch:
            if self._before_write is not None:
                self._before_write(exchange)
        rows = [self._exchange_row(exchange) for exchange in batch]
        event_rows = [
            (exchange.id, idx, event.offset_ms, event.data)
            for exchange in batch
            for idx, event in enumerate(exchange.events)
        ]
        for delay in (*RETRY_DELAYS, None):
            try:
                await self._db.executemany(_INSERT_EXCHANGE, rows)
                if event_rows:
                    await self._db.executemany(_INSERT_EVENT, event_rows)
                await self._db.commit()
                break
            except sqlite3.Error:
                await self._db.rollback()
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        for _ in batch:
            self._queue.task_done()
        for exchange in batch:
            if self._after_write is not None:
                self._after_write(exchange)

    def _exchange_row(self, e: Exchange) -> tuple[Any, ...]:
        u = e.usage
        ended = e.started_at + e.duration_ms / 1000 if e.duration_ms is not None else None
        return (
            e.id, e.started_at, ended, e.method, e.path, e.query, e.endpoint,
            self._encode.encode(e.request_headers).decode(), e.key_fingerprint, e.request_body,
            e.status, self._encode.encode(e.response_headers).decode(), e.response_body,
            e.content_encoding, int(e.stream), e.ttfb_ms, e.duration_ms, e.match_key,
            int(e.complete), e.outcome.value, self._encode.encode(e.notes).decode(), u.model,
            u.input_tokens, u.cached_tokens, u.output_tokens, u.reasoning_tokens,
            u.finish_reason, u.error_type, u.error_code, e.upstream_request_id,
        )  # fmt: skip


_HEADERS = msgspec.json.Decoder(list[tuple[str, str]])
_NOTES = msgspec.json.Decoder(list[str])


def _row_to_exchange(row: Sequence[Any], events: list[SseEvent]) -> Exchange:
    (
        id_, started_at, _ended, method, path, query, endpoint, req_headers, fp, req_body,
        status, resp_headers, resp_body, encoding, stream, ttfb, duration, match_key, _complete,
        outcome, notes, model, in_tok, cached, out_tok, reasoning, finish, err_type, err_code,
        request_id,
    ) = row  # fmt: skip
    return Exchange(
        id=id_,
        started_at=started_at,
        method=method,
        path=path,
        query=query,
        endpoint=endpoint,
        request_headers=_HEADERS.decode(req_headers),
        key_fingerprint=fp,
        request_body=bytes(req_body),
        status=status,
        response_headers=_HEADERS.decode(resp_headers),
        response_body=bytes(resp_body),
        content_encoding=encoding,
        stream=bool(stream),
        events=events,
        ttfb_ms=ttfb,
        duration_ms=duration,
        match_key=match_key,
        outcome=Outcome(outcome),
        notes=_NOTES.decode(notes),
        upstream_request_id=request_id,
        usage=Usage(
            model=model,
            input_tokens=in_tok,
            cached_tokens=cached,
            output_tokens=out_tok,
            reasoning_tokens=reasoning,
            finish_reason=finish,
            error_type=err_type,
            error_code=err_code,
        ),
    )

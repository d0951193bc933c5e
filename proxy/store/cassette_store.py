"""The cassette file: one aiosqlite connection, one writer task, a write-behind queue.

Handlers never await the disk: `submit` only enqueues. The writer drains the queue in batches, each
batch one transaction, so a burst of exchanges costs one commit. `close` drains everything first,
which is what makes SIGTERM lose nothing that was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from proxy.exchange import Exchange
from proxy.store.sqlite_file import EXCHANGE_COLUMNS, Contents, StoreError, connect, read_contents

BATCH_LIMIT = 512
# The writer waits this long after the first exchange of a batch, so that under load one
# transaction (and one round trip to the SQLite thread) carries many exchanges.
BATCH_LINGER_S = 0.05
RETRY_DELAYS = (0.1, 0.5, 2.0)
# Replay-only cassettes up to this size are read on the event loop (see `CassetteStore.open`).
INLINE_READ_BYTES = 64 * 1024

# Plain INSERTs: another process recording into the same file (pytest-xdist workers sharing a
# cassette) may have taken an id; the conflict is caught and the batch renumbered, never replaced.
_INSERT_EXCHANGE = (
    f"INSERT INTO exchanges ({EXCHANGE_COLUMNS})"
    f" VALUES ({', '.join('?' * len(EXCHANGE_COLUMNS.split(',')))})"
)
_INSERT_EVENT = "INSERT INTO sse_events (exchange_id, idx, offset_ms, data) VALUES (?, ?, ?, ?)"
# Renumbering a batch whose ids another writer took is retried this many times before failing.
RENUMBER_ATTEMPTS = 8

Hook = Callable[[Exchange], None]
ErrorHook = Callable[[Exception, Sequence[Exchange]], None]


def _text(value: str | None) -> str | None:
    """A header value for a TEXT column. Bytes that are not UTF-8 reach here as surrogates
    (aiohttp decodes headers with surrogateescape), which SQLite refuses, and with them the whole
    exchange: such a byte is written as `\\xNN` instead."""
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_small(path: Path) -> bool:
    try:
        return os.stat(path).st_size <= INLINE_READ_BYTES
    except OSError:
        return False  # the worker thread's read says what is wrong


class CassetteStore:
    """A cassette file and its writer.

    The writer's connection (an aiosqlite thread) is opened with the first exchange to store, so
    a cassette that is only replayed never starts one.
    """

    def __init__(self, path: Path, next_id: int) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._next_id = next_id
        self._queue: asyncio.Queue[Exchange | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._before_write: Hook | None = None
        self._after_write: Hook | None = None
        self._encode = msgspec.json.Encoder()
        self._on_error: ErrorHook | None = None
        self.failed_ids: list[int] = []

    @classmethod
    async def open(
        cls, path: Path, *, load: bool = True, replay_only: bool = False
    ) -> tuple[CassetteStore, Contents]:
        """Open (creating and migrating as needed) and read the cassette in one thread hop.

        The contents hold every stored exchange when `load`, else only their count. A
        `replay_only` store is read without being opened for writing, and never writes.
        """
        if replay_only and _is_small(path):
            # A test's cassette is read in a fraction of a millisecond: faster than the round
            # trip to a worker thread and back, which a suite pays once per test.
            contents = read_contents(path, load=load, replay_only=True)
        else:
            contents = await asyncio.to_thread(
                read_contents, path, load=load, replay_only=replay_only
            )
        return cls(path, contents.next_id), contents

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

    @property
    def next_id(self) -> int:
        return self._next_id

    def allocate_from(self, first: int) -> None:
        """Hand out no id below `first`: another store of this file is still numbering exchanges
        that arrived earlier."""
        self._next_id = max(self._next_id, first)

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
        if self._db is not None:
            await self._db.close()
            self._db = None

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
                    await self._store(batch)
                finally:
                    for _ in batch:
                        self._queue.task_done()

    async def _store(self, batch: Sequence[Exchange]) -> None:
        """Write a batch, or report loudly what could not be. Never raises: a writer that died
        would silently lose every later exchange too."""
        ready: list[Exchange] = []
        for exchange in batch:
            try:
                if self._before_write is not None:
                    self._before_write(exchange)
            except Exception as exc:
                self._failed(exc, [exchange])
            else:
                ready.append(exchange)
        for exchange in await self._write(ready):
            try:
                if self._after_write is not None:
                    self._after_write(exchange)
            except Exception as exc:
                if self._on_error is not None:
                    self._on_error(exc, [exchange])

    async def _write(self, batch: Sequence[Exchange]) -> Sequence[Exchange]:
        """Write the batch in one transaction; what was written."""
        if not batch:
            return batch
        try:
            await self._write_batch(batch)
        except sqlite3.Error as exc:
            self._failed(exc, batch)
            return []
        except Exception as exc:
            if len(batch) == 1:
                self._failed(exc, batch)
                return []
            # Not the disk but an exchange the code cannot store (a bug): keep the others.
            return [written for exchange in batch for written in await self._write([exchange])]
        return batch

    def _failed(self, exc: Exception, batch: Sequence[Exchange]) -> None:
        self.failed_ids.extend(e.id for e in batch)
        if self._on_error is not None:
            self._on_error(exc, batch)

    async def _write_batch(self, batch: Sequence[Exchange]) -> None:
        for delay in (*RETRY_DELAYS, None):
            try:
                db = await self._connection()
                await self._insert(db, batch)
                await db.commit()
                break
            except sqlite3.Error:
                await self._rollback()
                if delay is None:
                    raise
                await asyncio.sleep(delay)
            except Exception:
                await self._rollback()  # or the next batch's commit would keep half of this one
                raise

    async def _rollback(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                await self._db.rollback()

    async def _insert(self, db: aiosqlite.Connection, batch: Sequence[Exchange]) -> None:
        """Insert the batch in the open transaction, renumbering it past any id already taken."""
        for attempt in range(RENUMBER_ATTEMPTS + 1):
            try:
                await db.executemany(_INSERT_EXCHANGE, [self._exchange_row(e) for e in batch])
            except sqlite3.IntegrityError:
                # Ids are handed out in memory when requests arrive; another process writing to
                # this file since it was opened may have used the same ones.
                await db.rollback()
                async with db.execute("SELECT COALESCE(MAX(id), 0) FROM exchanges") as cursor:
                    row = await cursor.fetchone()
                taken = int(row[0]) if row is not None else 0
                if attempt == RENUMBER_ATTEMPTS or taken < min(e.id for e in batch):
                    raise  # not an id conflict, or one that keeps coming back
                self._renumber(batch, taken)
                continue
            break
        event_rows = [
            (exchange.id, idx, event.offset_ms, event.data)
            for exchange in batch
            for idx, event in enumerate(exchange.events)
        ]
        if event_rows:
            await db.executemany(_INSERT_EVENT, event_rows)

    def _renumber(self, batch: Sequence[Exchange], taken: int) -> None:
        """Give the batch fresh ids above `taken` and above every id this store handed out, in
        the order they had, so identical requests still replay in the order they were recorded."""
        first = max(taken, self._next_id - 1) + 1
        for offset, exchange in enumerate(sorted(batch, key=lambda e: e.id)):
            exchange.id = first + offset
        self._next_id = first + len(batch)

    async def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            try:
                self._db = await aiosqlite.Connection(partial(connect, self.path), 64)
            except StoreError as exc:
                raise sqlite3.OperationalError(str(exc)) from None
        return self._db

    def _exchange_row(self, e: Exchange) -> tuple[Any, ...]:
        u = e.usage
        ended = e.started_at + e.duration_ms / 1000 if e.duration_ms is not None else None
        return (
            e.id, e.started_at, ended, e.method, e.path, e.query, e.endpoint,
            self._json_text(e.request_headers), e.key_fingerprint, e.request_body,
            e.status, self._json_text(e.response_headers), e.response_body,
            _text(e.content_encoding), int(e.stream), e.ttfb_ms, e.duration_ms, e.match_key,
            int(e.complete), e.outcome.value, self._json_text(e.notes), u.model,
            u.input_tokens, u.cached_tokens, u.output_tokens, u.reasoning_tokens,
            u.finish_reason, u.error_type, u.error_code, _text(e.upstream_request_id),
            u.audio_seconds, e.recorded_by,
        )  # fmt: skip

    def _json_text(self, value: list[Any]) -> str:
        """A JSON column's text. Header bytes that are not UTF-8 reach here as surrogates
        (aiohttp decodes headers with surrogateescape), which msgspec and SQLite refuse: those
        are written as `\\udcXX` escapes instead, so they read back as the same string."""
        try:
            return self._encode.encode(value).decode()
        except UnicodeEncodeError:
            return json.dumps(msgspec.to_builtins(value), separators=(",", ":"))

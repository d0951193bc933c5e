"""Cassettes written by an older schema open with the newer migrations applied, rows intact."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

from proxy.store import CassetteStore
from proxy.store.migrations import MIGRATIONS
from proxy.store.sqlite_file import read_contents
from tests.support.exchanges import stored_exchange

FIRST_SCHEMA_COLUMNS = (
    "id, started_at, method, path, query, request_headers, request_body, status,"
    " response_headers, response_body, stream, match_key, complete, outcome, notes, model,"
    " input_tokens"
)


def _cassette_of_the_first_schema(path: Path) -> None:
    """What a cassette written before any later migration looks like: one exchange in it."""
    name, script = MIGRATIONS[0]
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL);\n"
        f"{script}\nINSERT INTO _migrations VALUES ('{name}', 0);"
    )
    db.execute(
        f"INSERT INTO exchanges ({FIRST_SCHEMA_COLUMNS}) VALUES"
        " (1, 0, 'POST', '/v1/embeddings', '', '[]', x'7b7d', 200, '[]', x'7b7d', 0, 'k', 1,"
        " 'complete', '[]', 'text-embedding-3-small', 5)"
    )
    db.commit()
    db.close()


def test_an_older_cassette_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _cassette_of_the_first_schema(path)

    contents = read_contents(path, load=True)

    assert contents.next_id == 2
    [old] = contents.exchanges
    assert (old.path, old.usage.model, old.usage.input_tokens) == (
        "/v1/embeddings",
        "text-embedding-3-small",
        5,
    )
    assert old.usage.audio_seconds is None
    with sqlite3.connect(path) as db:
        applied = [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert applied == [name for name, _ in MIGRATIONS]


def test_audio_seconds_are_stored_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    exchange = stored_exchange("/v1/audio/transcriptions", b"")
    exchange.usage.audio_seconds = 3.5

    async def write() -> None:
        store, _ = await CassetteStore.open(path)
        store.start()
        store.submit(exchange)
        await store.close()

    asyncio.run(write())
    [stored] = read_contents(path, load=True).exchanges
    assert stored.usage.audio_seconds == 3.5


def _read_in_another_process(path: str, start: Any, results: Any) -> None:
    from proxy.store.sqlite_file import StoreError

    start.wait()
    try:
        results.put(read_contents(Path(path), load=True, replay_only=True).count)
    except StoreError as exc:
        results.put(str(exc))


def test_two_processes_migrating_one_cassette_at_once_both_open_it(tmp_path: Path) -> None:
    """pytest-xdist workers replaying a shared cassette of an older schema open it together."""
    context = multiprocessing.get_context("spawn")
    for attempt in range(6):
        path = tmp_path / f"old{attempt}.db"
        _cassette_of_the_first_schema(path)
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA journal_mode=WAL")  # as the older version left its cassettes
        start, results = context.Barrier(2), context.Queue()
        readers = [
            context.Process(target=_read_in_another_process, args=(str(path), start, results))
            for _ in range(2)
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(60)
        assert [results.get(timeout=10) for _ in readers] == [1, 1]

"""A cassette opened only to replay is read without being written: no WAL, no lock files, same
bytes. Where that is not safe (a writer's rows still in the WAL, a schema to migrate, a file that
is not a cassette) it is opened the full way instead."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proxy.store import CassetteStore, StoreError
from proxy.store.migrations import MIGRATIONS
from proxy.store.sqlite_file import read_contents, read_unchanged
from tests.support.exchanges import stored_exchange
from tests.test_store_migrations import _cassette_of_the_first_schema


def _write(path: Path, count: int) -> None:
    async def write() -> None:
        store, _ = await CassetteStore.open(path)
        store.start()
        for n in range(1, count + 1):
            exchange = stored_exchange(
                "/v1/chat/completions",
                b'{"n": %d}' % n,
                exchange_id=n,
                events=[b"data: {}\n\n", b"data: [DONE]\n\n"] if n % 2 else None,
            )
            store.submit(exchange)
        await store.close()

    asyncio.run(write())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_closed_cassette_is_read_without_touching_its_files(tmp_path: Path) -> None:
    path = tmp_path / "closed.db"
    _write(path, 3)
    # As a cassette may arrive from git or another tool: in rollback-journal mode. Opening it for
    # writing would switch it back to WAL, which rewrites its header: a diff in version control.
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    before = (sorted(p.name for p in tmp_path.iterdir()), _digest(path), path.stat().st_mtime_ns)

    contents = read_contents(path, load=True, replay_only=True)

    assert [e.request_body for e in contents.exchanges] == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
    assert [len(e.events) for e in contents.exchanges] == [2, 0, 2]
    assert (contents.next_id, contents.count) == (4, 3)
    after = (sorted(p.name for p in tmp_path.iterdir()), _digest(path), path.stat().st_mtime_ns)
    assert after == before == (["closed.db"], before[1], before[2])


def test_a_cassette_the_proxy_wrote_takes_the_read_only_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "recorded.db", 2)
    monkeypatch.chdir(tmp_path)  # a relative path, as `--cassette cassettes/x.db` gives

    unchanged = read_unchanged(Path("recorded.db"))

    assert unchanged is not None
    assert [e.id for e in unchanged.exchanges] == [1, 2]
    assert [
        e.id for e in read_contents(Path("recorded.db"), load=True, replay_only=True).exchanges
    ] == [1, 2]


def test_a_write_that_crashed_midway_is_rolled_back_before_replay(tmp_path: Path) -> None:
    path = tmp_path / "crashed.db"
    _write(path, 3)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    # A writer replaces every row, spills the change into the file, and dies before committing:
    # the file holds uncommitted pages, the -journal the committed ones.
    crash = textwrap.dedent(
        f"""
        import os, sqlite3
        db = sqlite3.connect({str(path)!r}, isolation_level=None)
        db.execute("PRAGMA cache_size=1")
        db.execute("BEGIN")
        db.execute("DELETE FROM sse_events")
        db.execute("DELETE FROM exchanges")
        db.execute(
            "INSERT INTO exchanges (id, started_at, method, path, query, request_headers,"
            " request_body, status, response_headers, response_body, stream, match_key, complete,"
            " outcome, notes) VALUES (9, 0, 'GET', '/v1/x', '', '[]', x'', 200, '[]',"
            " zeroblob(100000), 0, 'k', 1, 'complete', '[]')"
        )
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", crash], check=True)
    assert Path(f"{path}-journal").exists()

    contents = read_contents(path, load=True, replay_only=True)

    assert [e.id for e in contents.exchanges] == [1, 2, 3]


@pytest.mark.parametrize("through_symlink", [False, True])
def test_rows_still_in_a_writers_wal_are_replayed(tmp_path: Path, through_symlink: bool) -> None:
    path = tmp_path / "open.db"
    _write(path, 1)
    # A cassette reached through a symlink has its WAL beside the file the link points to.
    replayed = tmp_path / "link.db" if through_symlink else path
    if through_symlink:
        replayed.symlink_to(path)
    writer = sqlite3.connect(path)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")  # the new row stays in the -wal file
        writer.execute(
            "INSERT INTO exchanges (id, started_at, method, path, query, request_headers,"
            " request_body, status, response_headers, response_body, stream, match_key,"
            " complete, outcome, notes) VALUES (2, 0, 'POST', '/v1/embeddings', '', '[]',"
            " x'7b7d', 200, '[]', x'7b7d', 0, 'k2', 1, 'complete', '[]')"
        )
        writer.commit()
        assert Path(f"{path}-wal").stat().st_size > 0

        contents = read_contents(replayed, load=True, replay_only=True)
    finally:
        writer.close()

    assert [e.path for e in contents.exchanges] == ["/v1/chat/completions", "/v1/embeddings"]
    assert contents.next_id == 3


def test_an_older_cassette_is_migrated_even_when_only_replayed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _cassette_of_the_first_schema(path)

    [old] = read_contents(path, load=True, replay_only=True).exchanges

    assert (old.path, old.usage.input_tokens, old.usage.audio_seconds) == (
        "/v1/embeddings",
        5,
        None,
    )
    with sqlite3.connect(path) as db:
        applied = [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert applied == [name for name, _ in MIGRATIONS]


def test_a_file_that_is_not_a_cassette_is_still_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are notes, not a database" * 100)

    with pytest.raises(StoreError, match=r"notes\.db: not a usable cassette"):
        read_contents(path, load=True, replay_only=True)

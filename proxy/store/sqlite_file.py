"""Blocking access to a cassette file: open it ready for use, read what it holds.

Everything here runs on a worker thread (`asyncio.to_thread` or aiosqlite's), except the read of a
small replay-only cassette, which is quicker than the hop. Opening and reading a cassette is one
call, at most one thread hop: a pytest suite opens one cassette per test, so each round trip to a
thread shows in its wall time.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from stat import S_ISREG
from typing import Any, TypeVar

import msgspec

from proxy.exchange import Exchange, Outcome, Usage
from proxy.sse import SseEvent
from proxy.store.migrations import MIGRATIONS, apply_migrations

_T = TypeVar("_T")

EXCHANGE_COLUMNS = (
    "id, started_at, ended_at, method, path, query, endpoint, request_headers, key_fingerprint,"
    " request_body, status, response_headers, response_body, content_encoding, stream, ttfb_ms,"
    " duration_ms, match_key, complete, outcome, notes, model, input_tokens, cached_tokens,"
    " output_tokens, reasoning_tokens, finish_reason, error_type, error_code, upstream_request_id,"
    " audio_seconds, recorded_by"
)


class StoreError(Exception):
    """The cassette file cannot be opened or is not a cassette."""


class Contents(msgspec.Struct):
    """What an opened cassette holds: the next free id, and its exchanges when asked for."""

    next_id: int
    count: int
    exchanges: list[Exchange]


def connect(path: Path) -> sqlite3.Connection:
    """An open connection to the cassette at `path` (created if missing), WAL, migrated."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot open the cassette ({exc})") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        apply_migrations(db)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StoreError(f"{path}: not a usable cassette ({exc}){_lfs_hint(path)}") from None
    return db


def _lfs_hint(path: Path) -> str:
    """What to do when the file is a Git LFS pointer, checked in without its content."""
    try:
        with open(path, "rb") as file:
            start = file.read(64)
    except OSError:
        return ""
    if start.startswith(b"version https://git-lfs"):
        return "; it is a Git LFS pointer: fetch the cassette with `git lfs pull`"
    return ""


def read_contents(path: Path, *, load: bool, replay_only: bool = False) -> Contents:
    """Open (and migrate) the cassette, then read its exchanges, or only count them.

    `replay_only` (a cassette nothing will be written to) first tries the read-only way.
    """
    if replay_only:
        unchanged = read_unchanged(path)
        if unchanged is not None:
            return unchanged
    db = connect(path)
    try:
        next_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM exchanges").fetchone()[0]) + 1
        if not load:
            count = int(db.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0])
            return Contents(next_id, count, [])
        exchanges = read_exchanges(db)
        return Contents(next_id, len(exchanges), exchanges)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot read the cassette ({exc})") from None
    finally:
        db.close()


def drop_recordings(
    path: Path, before: float, owned: Callable[[str | None], bool] | None = None
) -> int:
    """Delete the exchanges (their events with them) that started before `before`, a Unix time;
    returns how many. Rows, not the file: another process may be recording into it right now
    (pytest-xdist workers sharing a cassette), and a file removed under it loses its writes.

    With `owned`, only the recordings whose `recorded_by` (a pytest node id, or None) it accepts
    are deleted: a test re-recording its part of a cassette it shares with others.
    """
    if not os.path.lexists(path):
        return 0
    db = connect(path)
    try:
        with db:
            if owned is None:
                dropped = db.execute(
                    "DELETE FROM exchanges WHERE started_at < ?", (before,)
                ).rowcount
            else:
                makers = db.execute(
                    "SELECT DISTINCT recorded_by FROM exchanges WHERE started_at < ?", (before,)
                ).fetchall()
                dropped = sum(
                    db.execute(
                        "DELETE FROM exchanges WHERE started_at < ? AND recorded_by IS ?",
                        (before, maker),
                    ).rowcount
                    for (maker,) in makers
                    if owned(maker)
                )
        if dropped:
            # A re-recorded cassette kept in git stays its own size. If another process has it
            # busy, the freed pages are reused instead.
            with contextlib.suppress(sqlite3.OperationalError):
                db.execute("VACUUM")
        return dropped
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot drop the old recordings ({exc})") from None
    finally:
        db.close()


def read_unchanged(path: Path) -> Contents | None:
    """Every exchange of a cassette that no one is writing and that needs no migration, read
    without locks, journal or WAL: no file is created, changed or removed, which is most of what
    opening a cassette costs. None when that does not hold; the caller then opens it the full way,
    which recovers a WAL or a journal, migrates, and says what is wrong with a file that is not a
    cassette.
    """
    # The file itself, not a symlink to it: its -wal and -journal are beside the file.
    name = os.path.realpath(path)
    before = _quiet_state(name)
    if before is None:
        return None
    try:
        db = sqlite3.connect(f"{Path(name).as_uri()}?mode=ro&immutable=1", uri=True)
    except (OSError, ValueError, sqlite3.Error):
        return None
    try:
        applied = {row[0] for row in db.execute("SELECT name FROM _migrations")}
        if any(name not in applied for name, _ in MIGRATIONS):
            return None
        exchanges = read_exchanges(db)
    except sqlite3.DatabaseError:
        return None
    finally:
        db.close()
    if _quiet_state(name) != before:
        return None  # written while being read: what was read may mix old and new pages
    next_id = max((exchange.id for exchange in exchanges), default=0) + 1
    return Contents(next_id, len(exchanges), exchanges)


def _quiet_state(name: str) -> tuple[int, int] | None:
    """The cassette's size and modification time, or None unless it is a file that no one is
    writing: no WAL (a writer has it open, or crashed with rows only there) and no rollback
    journal (a write in progress, or one that crashed and must be rolled back).

    Plain `os` calls on a string: a pytest suite checks one cassette per test, and pathlib's
    objects cost more than the system calls.
    """
    try:
        info = os.stat(name)
    except OSError:
        return None
    if not S_ISREG(info.st_mode):
        return None
    if os.path.lexists(name + "-wal") or os.path.lexists(name + "-journal"):
        return None
    return info.st_size, info.st_mtime_ns


def read_exchanges(db: sqlite3.Connection) -> list[Exchange]:
    """Every stored exchange in sequence order, SSE events included."""
    events: dict[int, list[SseEvent]] = {}
    for exchange_id, offset_ms, data in db.execute(
        "SELECT exchange_id, offset_ms, data FROM sse_events ORDER BY exchange_id, idx"
    ):
        events.setdefault(exchange_id, []).append(SseEvent(offset_ms, bytes(data)))
    return [
        _row_to_exchange(row, events.get(row[0], []))
        for row in db.execute(f"SELECT {EXCHANGE_COLUMNS} FROM exchanges ORDER BY id")
    ]


_HEADERS = msgspec.json.Decoder(list[tuple[str, str]])
_NOTES = msgspec.json.Decoder(list[str])


def _decode_json(decoder: msgspec.json.Decoder[_T], text: str) -> _T:
    try:
        return decoder.decode(text)
    except msgspec.DecodeError:
        # Header bytes that were not UTF-8 are stored as `\\udcXX` escapes (surrogateescape, see
        # CassetteStore), which msgspec refuses; the standard library reads them back as written.
        return msgspec.convert(json.loads(text), decoder.type)


def _row_to_exchange(row: Sequence[Any], events: list[SseEvent]) -> Exchange:
    (
        id_, started_at, _ended, method, path, query, endpoint, req_headers, fp, req_body,
        status, resp_headers, resp_body, encoding, stream, ttfb, duration, match_key, _complete,
        outcome, notes, model, in_tok, cached, out_tok, reasoning, finish, err_type, err_code,
        request_id, audio_seconds, recorded_by,
    ) = row  # fmt: skip
    return Exchange(
        id=id_,
        started_at=started_at,
        method=method,
        path=path,
        query=query,
        endpoint=endpoint,
        request_headers=_decode_json(_HEADERS, req_headers),
        key_fingerprint=fp,
        request_body=bytes(req_body),
        status=status,
        response_headers=_decode_json(_HEADERS, resp_headers),
        response_body=bytes(resp_body),
        content_encoding=encoding,
        stream=bool(stream),
        events=events,
        ttfb_ms=ttfb,
        duration_ms=duration,
        match_key=match_key,
        outcome=Outcome(outcome),
        notes=_decode_json(_NOTES, notes),
        upstream_request_id=request_id,
        recorded_by=recorded_by,
        usage=Usage(
            model=model,
            input_tokens=in_tok,
            cached_tokens=cached,
            output_tokens=out_tok,
            reasoning_tokens=reasoning,
            finish_reason=finish,
            error_type=err_type,
            error_code=err_code,
            audio_seconds=audio_seconds,
        ),
    )

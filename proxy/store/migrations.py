"""Named, idempotent schema migrations, applied in order when a cassette opens."""

from __future__ import annotations

import sqlite3
import time

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_exchanges",
        """
        CREATE TABLE exchanges (
            id INTEGER PRIMARY KEY,
            started_at REAL NOT NULL,
            ended_at REAL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            query TEXT NOT NULL,
            endpoint TEXT,
            request_headers TEXT NOT NULL,
            key_fingerprint TEXT,
            request_body BLOB NOT NULL,
            status INTEGER NOT NULL,
            response_headers TEXT NOT NULL,
            response_body BLOB NOT NULL,
            content_encoding TEXT,
            stream INTEGER NOT NULL,
            ttfb_ms REAL,
            duration_ms REAL,
            match_key TEXT NOT NULL,
            complete INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            notes TEXT NOT NULL,
            model TEXT,
            input_tokens INTEGER,
            cached_tokens INTEGER,
            output_tokens INTEGER,
            reasoning_tokens INTEGER,
            finish_reason TEXT,
            error_type TEXT,
            error_code TEXT,
            upstream_request_id TEXT
        );
        -- Lookups go through the in-memory index; only time ranges are queried on disk.
        CREATE INDEX exchanges_started_at ON exchanges (started_at);
        CREATE TABLE sse_events (
            exchange_id INTEGER NOT NULL REFERENCES exchanges (id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            offset_ms REAL NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (exchange_id, idx)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0002_audio_seconds",
        # Audio billed by duration (whisper-1 transcriptions report `usage.seconds`).
        "ALTER TABLE exchanges ADD COLUMN audio_seconds REAL;",
    ),
    (
        "0003_recorded_by",
        # The pytest test (node id) that recorded the exchange: a rewrite or --cassette-strict
        # of one test leaves alone the recordings of others sharing its cassette.
        "ALTER TABLE exchanges ADD COLUMN recorded_by TEXT;",
    ),
)


def apply_migrations(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this cassette lacks, each in its own transaction; returns their names."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    applied: list[str] = []
    for name, script in MIGRATIONS:
        if name in _applied(db):
            continue
        try:
            db.executescript(
                f"BEGIN;\n{script}\n"
                f"INSERT INTO _migrations (name, applied_at) VALUES ('{name}', {time.time()});\n"
                "COMMIT;"
            )
        except sqlite3.OperationalError:
            db.rollback()
            # Another process opening the same cassette (pytest-xdist workers sharing one) may
            # have applied it since we looked: then its column or table is there already.
            if name not in _applied(db):
                raise
            continue
        applied.append(name)
    return applied


def _applied(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM _migrations")}

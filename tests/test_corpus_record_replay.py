"""All 392 real recorded exchanges: served by a test upstream, recorded through the proxy, replayed.

Status and body bytes must be identical to the corpus both when recording (what the client sees
through the proxy) and when replaying with the upstream gone; SSE bodies byte-identical, and the
stored events must split exactly where the upstream's writes ended.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.config import load_config
from proxy.logs import make_logger
from proxy.server import start_proxy
from proxy.sse import SseSplitter
from tests.support.corpus import CorpusExchange, load_corpus

ID_HEADER = "x-corpus-id"
DROPPED = {"content-length", "transfer-encoding", "connection", "content-encoding"}


def corpus_upstream(corpus: dict[str, CorpusExchange], seen: list[str]) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        record = corpus[request.headers[ID_HEADER]]
        seen.append(record.id)
        sent = await request.read()
        assert sent == record.request.body_bytes(), f"{record.id}: request body altered"
        headers = {k: v for k, v in record.response.headers.items() if k not in DROPPED}
        response = web.StreamResponse(status=record.response.status, headers=headers)
        body = record.response.body_bytes()
        await response.prepare(request)
        if headers.get("content-type", "").startswith("text/event-stream"):
            splitter = SseSplitter()
            for event in splitter.feed(body):
                await response.write(event)  # one write per event, as a real server streams
            if tail := splitter.flush():
                await response.write(tail)
        elif body:
            await response.write(body)
        await response.write_eof()
        return response

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def send_all(
    base: str, corpus: list[CorpusExchange]
) -> dict[str, tuple[int, bytes, str | None]]:
    results: dict[str, tuple[int, bytes, str | None]] = {}
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for record in corpus:
            req = record.request
            url = base + req.path + (f"?{req.query}" if req.query else "")
            headers = {k: v for k, v in req.headers.items() if k not in DROPPED}
            headers[ID_HEADER] = record.id
            headers["authorization"] = "Bearer sk-corpus-test-key-000000000000"
            body = req.body_bytes() if (req.body is not None or req.body_b64 is not None) else None
            async with session.request(req.method, url, data=body, headers=headers) as resp:
                results[record.id] = (
                    resp.status,
                    await resp.read(),
                    resp.headers.get("x-cassette-proxy"),
                )
    return results


async def test_corpus_records_and_replays_byte_identical(tmp_path: Path) -> None:
    corpus = load_corpus()
    assert len(corpus) == 392
    by_id = {record.id: record for record in corpus}
    seen: list[str] = []
    upstream = TestServer(corpus_upstream(by_id, seen), host="127.0.0.1", port=0)
    await upstream.start_server()
    cassette = tmp_path / "corpus.db"
    log = make_logger("json", "error")

    def config(mode: str, upstream_url: str) -> object:
        return load_config(
            None,
            {},
            {"mode": mode, "upstream": upstream_url, "cassette": str(cassette), "port": 0},
        )

    proxy = await start_proxy(config("record", str(upstream.make_url(""))), log)  # type: ignore[arg-type]
    try:
        recorded = await send_all(proxy.url, corpus)
    finally:
        await proxy.stop()
    await upstream.close()
    assert len(seen) == 392

    replayer = await start_proxy(config("replay", "http://127.0.0.1:9"), log)  # type: ignore[arg-type]
    try:
        replayed = await send_all(replayer.url, corpus)
    finally:
        await replayer.stop()

    mismatches: list[str] = []
    for record in corpus:
        expected = (record.response.status, record.response.body_bytes())
        for phase, got in (("record", recorded[record.id]), ("replay", replayed[record.id])):
            if got[:2] != expected:
                mismatches.append(f"{phase} {record.id}: status {got[0]} vs {expected[0]}")
        assert recorded[record.id][2] == "recorded"
        assert replayed[record.id][2] == "replayed", record.id
    assert not mismatches, "\n".join(mismatches[:20])

    with sqlite3.connect(cassette) as db:
        rows = db.execute("SELECT COUNT(*), SUM(complete), SUM(stream) FROM exchanges").fetchone()
        noted = db.execute("SELECT id, notes FROM exchanges WHERE notes != '[]'").fetchall()
        typed = db.execute(
            "SELECT COUNT(endpoint), COUNT(input_tokens), COUNT(error_type) FROM exchanges"
        ).fetchone()
    streams = sum(
        r.response.headers.get("content-type", "").startswith("text/event-stream") for r in corpus
    )
    assert rows == (392, 392, streams)
    assert noted == []  # every stored body decoded with the route table's types
    assert typed[0] == 392 and typed[1] >= 120 and typed[2] == 60


def test_sse_splitter_keeps_every_byte_of_corpus_streams() -> None:
    for record in load_corpus():
        if not record.response.headers.get("content-type", "").startswith("text/event-stream"):
            continue
        body = record.response.body_bytes()
        for size in (1, 7, 4096):  # chunk boundaries anywhere, CRLF split included
            splitter = SseSplitter()
            events: list[bytes] = []
            for start in range(0, len(body), size):
                events.extend(splitter.feed(body[start : start + size]))
            whole = SseSplitter().feed(body)
            tail = splitter.flush()
            assert b"".join(events) + tail == body, record.id
            assert events == whole, record.id

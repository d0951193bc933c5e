"""Compressed responses pass to the client untouched and are stored (and replayed) decoded."""

from __future__ import annotations

import gzip
import json
import sqlite3
import zlib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

from proxy.config import load_config
from proxy.logs import make_logger
from proxy.server import start_proxy

EVENTS = [f'data: {{"n": {i}, "text": "chunk {i}"}}\n\n'.encode() for i in range(5)] + [
    b"data: [DONE]\n\n"
]
JSON_BODY = (
    b'{"object": "list", "data": [' + b", ".join(b'{"id": "m%d"}' % i for i in range(50)) + b"]}"
)


def gzip_upstream(sent: list[bytes]) -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "content-encoding": "gzip"}
        )
        await response.prepare(request)
        compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
        for event in EVENTS:
            # a sync flush per event: each event can be decoded as soon as it arrives
            piece = compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH)
            sent.append(piece)
            await response.write(piece)
        tail = compressor.flush()
        sent.append(tail)
        await response.write(tail)
        await response.write_eof()
        return response

    async def models(request: web.Request) -> web.Response:
        body = gzip.compress(JSON_BODY)
        sent.append(body)
        return web.Response(
            body=body, headers={"content-type": "application/json", "content-encoding": "gzip"}
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", stream)
    app.router.add_get("/v1/models", models)
    return app


async def fetch(base: str) -> dict[str, tuple[bytes, str | None]]:
    got: dict[str, tuple[bytes, str | None]] = {}
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        headers = {"accept-encoding": "gzip", "content-type": "application/json"}
        async with session.post(
            base + "/v1/chat/completions", data=b'{"stream": true}', headers=headers
        ) as r:
            got["stream"] = (await r.read(), r.headers.get("content-encoding"))
        async with session.get(base + "/v1/models", headers=headers) as r:
            got["json"] = (await r.read(), r.headers.get("content-encoding"))
    return got


async def test_gzip_passes_through_and_is_stored_decoded(tmp_path: Path) -> None:
    sent: list[bytes] = []
    upstream = TestServer(gzip_upstream(sent), host="127.0.0.1", port=0)
    await upstream.start_server()
    cassette = tmp_path / "gzip.db"
    log = make_logger("json", "error")
    flags = {"upstream": str(upstream.make_url("")), "cassette": str(cassette), "port": 0}
    recorder = await start_proxy(load_config(None, {}, {**flags, "mode": "record"}), log)
    recorded = await fetch(recorder.url)
    await recorder.stop()
    await upstream.close()

    # the client got the upstream's compressed bytes, untouched
    assert recorded["stream"] == (b"".join(sent[:-1]), "gzip")
    assert recorded["json"] == (sent[-1], "gzip")
    with sqlite3.connect(cassette) as db:
        events = [row[0] for row in db.execute("SELECT data FROM sse_events ORDER BY idx")]
        stored = db.execute(
            "SELECT response_body, content_encoding FROM exchanges WHERE stream = 0"
        ).fetchone()
    assert events == EVENTS  # split and stored decoded, event by event
    assert stored == (JSON_BODY, None)

    flags["upstream"] = "http://127.0.0.1:9"
    replayer = await start_proxy(load_config(None, {}, {**flags, "mode": "replay"}), log)
    replayed = await fetch(replayer.url)
    await replayer.stop()
    assert replayed["stream"] == (b"".join(EVENTS), None)
    assert replayed["json"] == (JSON_BODY, None)


NOT_COMPRESSED = b'data: {"ok": true}\n\n'


def good_then_bad() -> bytes:
    """One event that decodes, then bytes that are no gzip: the stream turns bad midway."""
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    return compressor.compress(EVENTS[0]) + compressor.flush(zlib.Z_SYNC_FLUSH) + b"\xff" * 40


def mislabelled_upstream(body: bytes, content_type: str, encoding: str) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": content_type, "content-encoding": encoding}
        )
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/v1/models", answer)
    return app


async def get_raw(base: str) -> tuple[int, bytes, str | None]:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(base + "/v1/models", headers={"accept-encoding": "gzip, deflate, br"}) as r,
    ):
        return r.status, await r.read(), r.headers.get("content-encoding")


@pytest.mark.parametrize(
    ("content_type", "encoding", "body"),
    [
        ("application/json", "gzip", b'{"ok": true}'),
        ("application/json", "deflate", b'{"ok": true}'),
        ("application/json", "br", b'{"ok": true}'),
        ("text/event-stream", "gzip", NOT_COMPRESSED),
        ("text/event-stream", "br", NOT_COMPRESSED),
        ("text/event-stream", "gzip", good_then_bad()),
        # Valid as far as it goes, but cut short: decoded, it would replay a truncated body.
        ("application/json", "gzip", gzip.compress(JSON_BODY, mtime=0)[:-40]),
        ("application/json", "deflate", zlib.compress(b'{"ok": true}') + b"more"),
    ],
    ids=[
        "json-gzip",
        "json-deflate",
        "json-br",
        "sse-gzip",
        "sse-br",
        "sse-gzip-bad-midway",
        "json-gzip-cut-short",
        "json-deflate-trailing-bytes",
    ],
)
async def test_a_body_not_valid_in_its_encoding_reaches_the_client_and_is_stored_encoded(
    tmp_path: Path, content_type: str, encoding: str, body: bytes
) -> None:
    upstream = TestServer(
        mislabelled_upstream(body, content_type, encoding), host="127.0.0.1", port=0
    )
    await upstream.start_server()
    cassette = tmp_path / "mislabelled.db"
    log = make_logger("json", "error")
    flags = {"upstream": str(upstream.make_url("")), "cassette": str(cassette), "port": 0}
    recorder = await start_proxy(load_config(None, {}, {**flags, "mode": "record"}), log)
    try:
        recorded = await get_raw(recorder.url)
    finally:
        await recorder.stop()
        await upstream.close()

    assert recorded == (200, body, encoding)  # the upstream's bytes, untouched
    with sqlite3.connect(cassette) as db:
        rows = db.execute("SELECT response_body, content_encoding, stream, notes FROM exchanges")
        stored_body, stored_encoding, stream, notes = rows.fetchone()
        events = db.execute("SELECT COUNT(*) FROM sse_events").fetchone()[0]
    assert (stored_body, stored_encoding, stream, events) == (body, encoding, 0, 0)
    [note] = json.loads(notes)  # one note: the body is not decoded twice
    assert f"kept {encoding}-encoded" in note

    flags["upstream"] = "http://127.0.0.1:9"
    replayer = await start_proxy(load_config(None, {}, {**flags, "mode": "replay"}), log)
    try:
        assert await get_raw(replayer.url) == recorded
    finally:
        await replayer.stop()


@pytest.mark.parametrize(
    ("content_type", "decoded"),
    [("application/json", JSON_BODY), ("text/event-stream", b"".join(EVENTS))],
    ids=["json", "sse"],
)
async def test_a_gzip_body_of_several_members_is_stored_and_replayed_whole(
    tmp_path: Path, content_type: str, decoded: bytes
) -> None:
    # RFC 1952 allows members one after the other; zlib alone stops after the first.
    half = len(decoded) // 2
    body = gzip.compress(decoded[:half], mtime=0) + gzip.compress(decoded[half:], mtime=0)
    upstream = TestServer(mislabelled_upstream(body, content_type, "gzip"), port=0)
    await upstream.start_server()
    flags = {"upstream": str(upstream.make_url("")), "cassette": str(tmp_path / "m.db")}
    log = make_logger("json", "error")
    got = []
    for mode in ("record", "replay"):
        proxy = await start_proxy(load_config(None, {}, {**flags, "mode": mode, "port": 0}), log)
        got.append(await get_raw(proxy.url))
        await proxy.stop()
    await upstream.close()

    assert got[0] == (200, body, "gzip")  # the client's bytes untouched
    assert got[1] == (200, decoded, None)  # every member, decoded
    with sqlite3.connect(tmp_path / "m.db") as db:
        assert db.execute("SELECT content_encoding, notes FROM exchanges").fetchone() == (
            None,
            "[]",
        )


async def one_route_upstream(path: str, handler: Handler) -> TestServer:
    """A started upstream answering POSTs to `path` with `handler`."""
    app = web.Application()
    app.router.add_post(path, handler)
    upstream = TestServer(app, host="127.0.0.1", port=0)
    await upstream.start_server()
    return upstream


async def test_a_zstd_event_stream_is_stored_event_by_event(tmp_path: Path) -> None:
    # SDKs built on httpx or aiohttp with zstd installed offer it; an upstream may take it.
    zstd = pytest.importorskip("backports.zstd")  # what aiohttp's speedups install

    frames = [zstd.compress(event) for event in EVENTS]  # a frame per event, as sent

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "content-encoding": "zstd"}
        )
        await response.prepare(request)
        for frame in frames:
            await response.write(frame)
        await response.write_eof()
        return response

    upstream = await one_route_upstream("/v1/chat/completions", stream)
    cassette = tmp_path / "zstd.db"
    flags = {"upstream": str(upstream.make_url("")), "cassette": str(cassette), "port": 0}
    proxy = await start_proxy(load_config(None, {}, flags), make_logger("json", "error"))
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.post(proxy.url + "/v1/chat/completions", data=b"{}") as r,
    ):
        got = (await r.read(), r.headers.get("content-encoding"))
    await proxy.stop()
    await upstream.close()

    assert got == (b"".join(frames), "zstd")  # the client's bytes untouched
    with sqlite3.connect(cassette) as db:
        events = [row[0] for row in db.execute("SELECT data FROM sse_events ORDER BY idx")]
        stored = db.execute("SELECT stream, content_encoding, notes FROM exchanges").fetchone()
    assert events == EVENTS
    assert stored == (1, None, "[]")


async def test_a_compressed_request_body_is_forwarded_as_what_it_is(tmp_path: Path) -> None:
    # aiohttp's server hands the handler the body decoded: forwarded with its old
    # content-encoding, it would be plain JSON labelled gzip.
    seen: list[tuple[str | None, bytes]] = []

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((request.headers.get("content-encoding"), body))
        return web.json_response(json.loads(body))

    upstream = await one_route_upstream("/v1/embeddings", echo)
    cassette = tmp_path / "request-gzip.db"
    flags = {"upstream": str(upstream.make_url("")), "cassette": str(cassette), "port": 0}
    payload = b'{"model": "m", "input": "hello"}'
    answers = []
    for mode in ("record", "replay"):
        proxy = await start_proxy(
            load_config(None, {}, {**flags, "mode": mode}), make_logger("json", "error")
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                proxy.url + "/v1/embeddings",
                data=gzip.compress(payload, mtime=0),
                headers={"content-encoding": "gzip", "content-type": "application/json"},
            ) as r,
        ):
            answers.append((r.status, await r.json()))
        await proxy.stop()
    await upstream.close()

    assert seen == [(None, payload)]  # once: the replay matched the recording
    assert answers == [(200, json.loads(payload))] * 2
    with sqlite3.connect(cassette) as db:
        (headers,) = db.execute("SELECT request_headers FROM exchanges").fetchone()
    assert "content-encoding" not in headers

"""Compressed responses pass to the client untouched and are stored (and replayed) decoded."""

from __future__ import annotations

import gzip
import sqlite3
import zlib
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

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

"""An upstream that does not answer in time: an OpenAI-shaped 504, stored flagged. And one that
ignores `Expect: 100-continue` is never left waiting for a 100 Continue."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.config import load_config
from proxy.logs import make_logger
from proxy.server import start_proxy

TEN_SECONDS = aiohttp.ClientTimeout(total=10)


async def test_silent_upstream_gives_504_and_is_stored_incomplete(tmp_path: Path) -> None:
    released = asyncio.Event()

    async def silent(request: web.Request) -> web.Response:
        await released.wait()  # never answers while the proxy waits
        return web.Response(text="late")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", silent)
    upstream = TestServer(app, host="127.0.0.1", port=0)
    await upstream.start_server()
    config_file = tmp_path / "c.toml"
    config_file.write_text("[upstream]\nread_timeout = 0.3\n")
    cassette = tmp_path / "t.db"
    config = load_config(
        config_file,
        {},
        {
            "mode": "record",
            "upstream": str(upstream.make_url("")),
            "cassette": str(cassette),
            "port": 0,
        },
    )
    proxy = await start_proxy(config, make_logger("json", "error"))
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(proxy.url + "/v1/chat/completions", json={"model": "m"}) as response,
        ):
            body = await response.json()
            status = response.status
    finally:
        released.set()
        await proxy.stop()
        await upstream.close()
    assert status == 504
    assert body["error"]["type"] == "upstream_error"
    assert body["error"]["code"] == "upstream_timeout"
    with sqlite3.connect(cassette) as db:
        row = db.execute("SELECT status, complete, outcome, error_code FROM exchanges").fetchone()
    assert row == (504, 0, "upstream_timeout", "upstream_timeout")


async def test_an_upstream_ignoring_expect_100_continue_still_answers(tmp_path: Path) -> None:
    """The proxy holds the whole body before it forwards, so it never asks the upstream for a 100
    Continue: one that ignores `Expect` (RFC 9110 allows it) would otherwise never be sent it."""
    heads: list[bytes] = []

    async def ignores_expect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        length = next(
            int(line.partition(b":")[2])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\n{}"
        )
        await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(ignores_expect, "127.0.0.1", 0)
    config_file = tmp_path / "c.toml"
    config_file.write_text("[upstream]\nread_timeout = 2.0\n")
    flags = {
        "mode": "record",
        "upstream": f"http://127.0.0.1:{upstream.sockets[0].getsockname()[1]}",
        "cassette": str(tmp_path / "expect.db"),
        "port": 0,
    }
    proxy = await start_proxy(load_config(config_file, {}, flags), make_logger("json", "error"))
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                proxy.url + "/v1/files", data=b'{"a": 1}', expect100=True, timeout=TEN_SECONDS
            ) as response,
        ):
            status, body = response.status, await response.read()
    finally:
        await proxy.stop()
        upstream.close()
    assert (status, body) == (200, b"{}")
    assert len(heads) == 1 and b"expect" not in heads[0].lower()

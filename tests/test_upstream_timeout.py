"""An upstream that does not answer in time: an OpenAI-shaped 504, stored flagged."""

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

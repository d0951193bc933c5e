"""build_app(config) → the aiohttp application: admin routes plus the catch-all proxy handler.

Resources (cassette, upstream session) live in cleanup_ctx and are reached through typed AppKeys
(proxy.keys), so several applications can run in one process without sharing anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from proxy.admin import add_admin_routes
from proxy.cassette import Cassette, cassette_exists
from proxy.config import Config
from proxy.decode import TypedView
from proxy.forward import Upstream
from proxy.handler import ProxyHandler
from proxy.keys import CASSETTE, CONFIG, LOG, NAMED, SHUTTING_DOWN, UPSTREAM
from proxy.logs import Logger
from proxy.named import NamedCassettes


def build_app(config: Config, log: Logger, *, follow_active: bool = False) -> web.Application:
    """`follow_active`: API paths outside /_c/ go to the active named cassette (the pytest
    plugin's session URL) instead of the server's own cassette."""
    # The body limit is enforced by the handler with an OpenAI-shaped 413, so aiohttp's is lifted.
    app = web.Application(client_max_size=config.server.max_body_size + 1)
    app[CONFIG] = config
    app[LOG] = log
    app[SHUTTING_DOWN] = asyncio.Event()
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(_mark_shutdown)
    add_admin_routes(app)
    app.router.add_route("*", "/{tail:.*}", ProxyHandler(app, follow_active=follow_active).handle)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    view = TypedView()
    if config.server.mode != "replay":
        view.load_types()  # now, rather than stalling the loop on the first recording's write
    path = Path(config.server.cassette)
    if (
        config.server.cassette_dir is not None
        and config.server.mode == "replay"
        and not cassette_exists(path)
    ):
        # Replaying a folder of named cassettes needs no default one: requests outside /_c/
        # then miss, saying the cassette holds nothing.
        cassette = Cassette.nothing_to_replay(path, config, view, app[LOG])
    else:
        cassette = await Cassette.open(path, config.server.mode, config, view, app[LOG])
    if config.server.cassette_dir is not None:
        app[NAMED] = NamedCassettes(Path(config.server.cassette_dir), config, view, app[LOG])
    upstream = Upstream(config.upstream)
    await upstream.start()
    app[UPSTREAM] = upstream
    app[CASSETTE] = cassette
    try:
        yield
    finally:
        await upstream.close()
        # Closing drains each write-behind queue first: nothing accepted is lost.
        if NAMED in app:
            await app[NAMED].close()
        await cassette.close()


async def _mark_shutdown(app: web.Application) -> None:
    app[SHUTTING_DOWN].set()

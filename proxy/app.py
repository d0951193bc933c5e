"""build_app(config) → the aiohttp application: admin routes plus the catch-all proxy handler.

Resources (cassette, upstream session) live in cleanup_ctx and are reached through typed AppKeys,
so several applications can run in one process without sharing anything.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from proxy.cassette import Cassette
from proxy.config import Config, parse_timing
from proxy.decode import TypedView
from proxy.errors import error_response
from proxy.exchange import Exchange
from proxy.forward import Upstream
from proxy.headers import credential_of, fingerprint, storable_request_headers
from proxy.logs import Logger
from proxy.replay import explain_miss, serve_recording

CONFIG = web.AppKey("config", Config)
LOG = web.AppKey("log", Logger)
CASSETTE = web.AppKey("cassette", Cassette)
UPSTREAM = web.AppKey("upstream", Upstream)
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)

ADMIN_PREFIX = "/_proxy/"


def build_app(config: Config, log: Logger) -> web.Application:
    # The body limit is enforced by the handler with an OpenAI-shaped 413, so aiohttp's is lifted.
    app = web.Application(client_max_size=config.server.max_body_size + 1)
    app[CONFIG] = config
    app[LOG] = log
    app[SHUTTING_DOWN] = asyncio.Event()
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(_mark_shutdown)
    app.router.add_get(ADMIN_PREFIX + "health", _health)
    app.router.add_route("*", "/{tail:.*}", ProxyHandler(app).handle)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    cassette = await Cassette.open(
        Path(config.server.cassette), config.server.mode, config, TypedView(), app[LOG]
    )
    upstream = Upstream(config.upstream)
    await upstream.start()
    app[UPSTREAM] = upstream
    app[CASSETTE] = cassette
    try:
        yield
    finally:
        await upstream.close()
        await cassette.close()  # drains the write-behind queue first: nothing accepted is lost


async def _mark_shutdown(app: web.Application) -> None:
    app[SHUTTING_DOWN].set()


def _admin_allowed(request: web.Request) -> bool:
    if request.app[CONFIG].server.admin_allow_remote:
        return True
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def _health(request: web.Request) -> web.Response:
    if not _admin_allowed(request):
        return error_response(
            403, "admin routes answer on loopback only", "forbidden", "admin_remote"
        )
    cassette = request.app[CASSETTE]
    return web.json_response(
        {
            "status": "ok",
            "mode": cassette.mode,
            "cassette": str(cassette.path),
            "exchanges": cassette.exchange_count,
            "upstream": request.app[CONFIG].upstream.url,
        }
    )


class ProxyHandler:
    """Every non-admin request: replay it, forward and record it, or explain the miss."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        config = app[CONFIG]
        self._limit = config.server.max_body_size
        self._scale = parse_timing(config.replay.timing)
        self._miss_status = config.replay.miss_status
        # Hashing the key once per distinct credential, not once per request.
        self._fingerprints: dict[str, str] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = asyncio.get_running_loop().time()
        app = self._app
        cassette = app[CASSETTE]
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            return body
        path, _, query = request.raw_path.partition("?")
        canonical = cassette.rules.canonical(
            request.method, path, query, request.headers, request.headers.get("content-type"), body
        )
        key = cassette.rules.key(canonical)
        if cassette.mode != "record":
            take = cassette.index.take(key)
            if take.exchange is not None:
                recorded = take.exchange
                headers = cassette.replay_headers(recorded)
                if self._scale is None and not recorded.stream:  # the common case, kept flat
                    response: web.StreamResponse = web.Response(
                        status=recorded.status, headers=headers, body=recorded.response_body
                    )
                else:
                    response = await serve_recording(
                        request, recorded, headers, self._scale, arrived
                    )
                self._log_replay(recorded, arrived, credential_of(request.headers))
                return response
            if cassette.mode == "replay":
                message = explain_miss(cassette, canonical, take)
                app[LOG].warning("replay miss", method=request.method, path=path, detail=message)
                return error_response(
                    self._miss_status, message, "cassette_miss", "cassette_miss", retry=False
                )
        credential = credential_of(request.headers)
        exchange = Exchange(
            id=cassette.new_id(),
            started_at=time.time(),
            method=request.method,
            path=path,
            query=query,
            request_headers=storable_request_headers(request.headers.items()),
            request_body=body,
            match_key=key,
            key_fingerprint=self._fingerprint(credential) if credential else None,
        )
        return await app[UPSTREAM].relay(
            request, exchange, cassette.record, app[SHUTTING_DOWN].is_set
        )

    def _fingerprint(self, credential: str) -> str:
        known = self._fingerprints.get(credential)
        if known is None:
            if len(self._fingerprints) >= 1024:
                self._fingerprints.clear()
            known = self._fingerprints[credential] = fingerprint(credential)
        return known

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        declared = request.content_length
        if declared is not None and declared > self._limit:
            return self._too_large(declared)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(None)
        if len(body) > self._limit:
            return self._too_large(len(body))
        return body

    def _too_large(self, size: int | None) -> web.Response:
        got = f" ({size} bytes)" if size is not None else ""
        return error_response(
            413,
            f"request body{got} exceeds the proxy's limit of {self._limit} bytes "
            "(server.max_body_size); nothing was forwarded",
            "invalid_request_error",
            "request_too_large",
            retry=False,
        )

    def _log_replay(self, exchange: Exchange, arrived: float, credential: str | None) -> None:
        # `ms` and `key` describe this replay, not the recording (its own are in the cassette).
        self._app[CASSETTE].replay_logger(exchange).info(
            "exchange",
            ms=round((asyncio.get_running_loop().time() - arrived) * 1000, 2),
            key=self._fingerprint(credential) if credential else None,
        )

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

import msgspec
from aiohttp import web

from proxy.cassette import Cassette
from proxy.config import Config, Mode, parse_timing
from proxy.decode import TypedView
from proxy.errors import error_response
from proxy.exchange import Exchange
from proxy.forward import Upstream
from proxy.headers import credential_of, fingerprint, storable_request_headers
from proxy.logs import Logger
from proxy.named import NAMED_PREFIX, BadCassetteName, NamedCassettes, split_named_path
from proxy.replay import explain_miss, serve_recording
from proxy.store import StoreError

CONFIG = web.AppKey("config", Config)
LOG = web.AppKey("log", Logger)
CASSETTE = web.AppKey("cassette", Cassette)
UPSTREAM = web.AppKey("upstream", Upstream)
NAMED = web.AppKey("named", NamedCassettes)
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
    app.router.add_get(ADMIN_PREFIX + "cassettes", _list_named)
    app.router.add_put(ADMIN_PREFIX + "cassettes/{name:.+}", _set_named_mode)
    app.router.add_route("*", "/{tail:.*}", ProxyHandler(app).handle)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    view = TypedView()
    cassette = await Cassette.open(
        Path(config.server.cassette), config.server.mode, config, view, app[LOG]
    )
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


def _admin_allowed(request: web.Request) -> bool:
    if request.app[CONFIG].server.admin_allow_remote:
        return True
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def _health(request: web.Request) -> web.Response:
    if not _admin_allowed(request):
        return _forbidden()
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


async def _list_named(request: web.Request) -> web.Response:
    if not _admin_allowed(request):
        return _forbidden()
    named = request.app.get(NAMED)
    if named is None:
        return _named_disabled()
    return web.json_response({"directory": str(named.directory), "cassettes": named.summary()})


class ModeChange(msgspec.Struct, forbid_unknown_fields=True):
    mode: Mode
    fresh: bool = False


async def _set_named_mode(request: web.Request) -> web.Response:
    """PUT /_proxy/cassettes/<name> {"mode": "replay", "fresh": false}: per-cassette mode."""
    if not _admin_allowed(request):
        return _forbidden()
    named = request.app.get(NAMED)
    if named is None:
        return _named_disabled()
    try:
        change = msgspec.json.decode(await request.read(), type=ModeChange)
        cassette = await named.set_mode(request.match_info["name"], change.mode, fresh=change.fresh)
    except (msgspec.DecodeError, BadCassetteName, StoreError) as exc:
        return error_response(400, str(exc), "invalid_request_error", "bad_cassette_request")
    return web.json_response(
        {"name": request.match_info["name"], "mode": cassette.mode, "path": str(cassette.path),
         "exchanges": cassette.exchange_count}
    )  # fmt: skip


def _forbidden() -> web.Response:
    return error_response(403, "admin routes answer on loopback only", "forbidden", "admin_remote")


def _named_disabled() -> web.Response:
    return error_response(
        404,
        "named cassettes are off: start the proxy with --cassette-dir DIR to serve /_c/<name>/v1/...",
        "invalid_request_error",
        "named_cassettes_disabled",
        retry=False,
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
        raw_path = request.raw_path
        if raw_path.startswith(NAMED_PREFIX):
            named = await self._named(raw_path)
            if isinstance(named, web.Response):
                return named
            cassette, raw_path = named
        else:
            cassette = app[CASSETTE]
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            return body
        path, _, query = raw_path.partition("?")
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
                cassette.stats.replayed += 1
                self._log_replay(recorded, arrived, credential_of(request.headers))
                return response
            if cassette.mode == "replay":
                message = explain_miss(cassette, canonical, take)
                cassette.stats.misses.append(message)
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
            request, raw_path, exchange, cassette.record, app[SHUTTING_DOWN].is_set
        )

    async def _named(self, raw_path: str) -> tuple[Cassette, str] | web.Response:
        """The named cassette a `/_c/<name>/…` request is for, and the API path it carries."""
        named = self._app.get(NAMED)
        if named is None:
            return _named_disabled()
        split = split_named_path(raw_path)
        if split is None:
            return error_response(
                400,
                f"{raw_path.partition('?')[0]}: expected /_c/<cassette name>/v1/...",
                "invalid_request_error",
                "bad_cassette_path",
                retry=False,
            )
        name, api_path = split
        try:
            return await named.get(name), api_path
        except (BadCassetteName, StoreError) as exc:
            return error_response(
                400, str(exc), "invalid_request_error", "bad_cassette_name", retry=False
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

"""Admin routes under /_proxy/: health and named-cassette modes; loopback only unless configured."""

from __future__ import annotations

import ipaddress
import time

import msgspec
from aiohttp import web

from proxy.config import Mode
from proxy.errors import error_response
from proxy.keys import CASSETTE, CONFIG, NAMED
from proxy.named import BadCassetteName
from proxy.store import StoreError

ADMIN_PREFIX = "/_proxy/"


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get(ADMIN_PREFIX + "health", _health)
    app.router.add_get(ADMIN_PREFIX + "cassettes", _list_named)
    app.router.add_put(ADMIN_PREFIX + "cassettes/{name:.+}", _set_named_mode)


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
        return named_disabled()
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
        return named_disabled()
    try:
        change = msgspec.json.decode(await request.read(), type=ModeChange)
        dropped_before = time.time() if change.fresh else None
        cassette = await named.set_mode(
            request.match_info["name"], change.mode, drop_before=dropped_before
        )
    except (msgspec.DecodeError, BadCassetteName, StoreError) as exc:
        return error_response(400, str(exc), "invalid_request_error", "bad_cassette_request")
    return web.json_response(
        {"name": request.match_info["name"], "mode": cassette.mode, "path": str(cassette.path),
         "exchanges": cassette.exchange_count}
    )  # fmt: skip


def _forbidden() -> web.Response:
    return error_response(403, "admin routes answer on loopback only", "forbidden", "admin_remote")


def named_disabled() -> web.Response:
    return error_response(
        404,
        "named cassettes are off: start the proxy with --cassette-dir DIR to serve /_c/<name>/v1/...",
        "invalid_request_error",
        "named_cassettes_disabled",
        retry=False,
    )

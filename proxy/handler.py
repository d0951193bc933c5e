"""The proxy handler: every non-admin request is replayed, forwarded and recorded, or explained."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from proxy.admin import named_disabled
from proxy.cassette import Cassette
from proxy.config import parse_timing
from proxy.errors import error_response
from proxy.exchange import Exchange
from proxy.headers import credential_of, fingerprint, split_request_headers
from proxy.keys import CASSETTE, CONFIG, LOG, NAMED, SHUTTING_DOWN, UPSTREAM
from proxy.named import NAMED_PREFIX, BadCassetteName, NamedCassettes, split_named_path
from proxy.replay import explain_miss, serve_recording
from proxy.store import StoreError


class ProxyHandler:
    """Every non-admin request: replay it, forward and record it, or explain the miss."""

    def __init__(self, app: web.Application, *, follow_active: bool = False) -> None:
        self._app = app
        self._follow_active = follow_active
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
        if not raw_path.startswith("/"):
            return _not_origin_form(request.method, raw_path)
        if raw_path.startswith(NAMED_PREFIX):
            named = await self._named(raw_path)
            if isinstance(named, web.Response):
                return named
            cassette, raw_path = named
        else:
            if self._follow_active:
                active = await self._active(app[NAMED], request)
                if isinstance(active, web.Response):
                    return active
                cassette = active
            else:
                cassette = app[CASSETTE]
        # No await since the cassette was looked up: held before anyone can close it, it stays
        # open until this request is over (see NamedCassettes._retire).
        cassette.hold()
        try:
            return await self._serve(request, cassette, raw_path, arrived)
        finally:
            cassette.settled()

    async def _serve(
        self, request: web.Request, cassette: Cassette, raw_path: str, arrived: float
    ) -> web.StreamResponse:
        app = self._app
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
                if self._scale is None:  # the common case, kept flat
                    response: web.StreamResponse = web.Response(
                        status=recorded.status, headers=headers, body=cassette.replay_body(recorded)
                    )
                else:
                    response = await serve_recording(
                        request, recorded, headers, self._scale, arrived
                    )
                credential = credential_of(request.headers)
                cassette.replayed(
                    recorded,
                    ms=round((asyncio.get_running_loop().time() - arrived) * 1000, 2),
                    key=self._fingerprint(credential) if credential else None,
                )
                return response
            if cassette.mode == "replay":
                message = explain_miss(cassette, canonical, key, take)
                cassette.stats.misses.append(message)
                app[LOG].warning("replay miss", method=request.method, path=path, detail=message)
                return error_response(
                    self._miss_status, message, "cassette_miss", "cassette_miss", retry=False
                )
        credential = credential_of(request.headers)
        split = split_request_headers(request.headers)
        exchange = Exchange(
            id=cassette.new_id(),
            started_at=time.time(),
            method=request.method,
            path=path,
            query=query,
            request_headers=split.stored,
            request_body=body,
            match_key=key,
            recorded_by=cassette.recorder,
            key_fingerprint=self._fingerprint(credential) if credential else None,
        )
        return await app[UPSTREAM].relay(
            request,
            raw_path,
            split.forwarded,
            exchange,
            cassette.record,
            app[SHUTTING_DOWN].is_set,
        )

    async def _named(self, raw_path: str) -> tuple[Cassette, str] | web.Response:
        """The named cassette a `/_c/<name>/…` request is for, and the API path it carries."""
        named = self._app.get(NAMED)
        if named is None:
            return named_disabled()
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

    async def _active(self, named: NamedCassettes, request: web.Request) -> Cassette | web.Response:
        """The running test's cassette, for a request to the pytest plugin's session URL."""
        name = named.active
        if name is None:
            return error_response(
                self._miss_status,
                f"cassette-proxy: {request.method} {request.path} was sent while no test with a "
                "cassette was running, so it is neither replayed nor recorded; give the test that "
                "sends it a cassette (@pytest.mark.cassette or the `cassette` fixture)",
                "invalid_request_error",
                "no_active_cassette",
                retry=False,
            )
        try:
            return await named.get(name)
        except StoreError as exc:
            return error_response(500, str(exc), "server_error", "cassette_unusable", retry=False)

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


def _not_origin_form(method: str, target: str) -> web.Response:
    """The refusal of an absolute-form (`http://host/...`), authority-form (`host:port`) or other
    request target that is not a path: glued onto the upstream URL it could name another host,
    which would then get the client's API key. Nothing is forwarded or recorded."""
    shown = target if len(target) <= 200 else target[:199] + "…"
    return error_response(
        400,
        f"cassette-proxy: {method} {shown!r}: the request target must be a path starting with "
        "'/'; the proxy forwards only to its configured upstream, and nothing was forwarded",
        "invalid_request_error",
        "invalid_request_target",
        retry=False,
    )

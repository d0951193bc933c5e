"""The upstream side: one ClientSession, and a relay that streams and tees as chunks arrive.

The client gets every chunk the moment the upstream sends it; the tee (raw chunks, or SSE events with
their arrival offsets) is only handed to the cassette once the exchange is over, so the response path
never waits on storage or decoding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from aiohttp import web
from yarl import URL

from proxy.config import UpstreamConfig
from proxy.content_encoding import (
    CorruptBody,
    Decompressor,
    UnsupportedEncoding,
    decompressor_for,
    is_identity,
)
from proxy.errors import error_body, error_response
from proxy.exchange import Exchange, Outcome
from proxy.headers import Pairs, split_response_headers
from proxy.sse import SseEvent, SseSplitter, is_event_stream, parse_event

Finish = Callable[[Exchange], None]


class _Tee:
    """What the cassette keeps of a response body, fed each chunk as it goes to the client:
    the raw bytes, or, for an event stream, its events decoded and split as they arrive."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        self._chunks: list[bytes] = []
        self._decoder: Decompressor | None = None  # set while an event stream is being split
        self._splitter = SseSplitter()
        self._encoding: str | None = None

    def split_events(self, encoding: str | None) -> None:
        """Store the body as SSE events, decoded from `encoding`, or say why it cannot be."""
        try:
            self._decoder = decompressor_for(encoding)
        except UnsupportedEncoding as exc:
            self._exchange.notes.append(f"event stream kept {encoding}-encoded, not split: {exc}")
            return
        self._exchange.stream = True
        self._exchange.content_encoding = None
        if not is_identity(encoding):
            # The encoded bytes are kept too until the stream has decoded to its end: if it
            # does not, they are what the cassette stores.
            self._encoding = encoding

    def feed(self, chunk: bytes, at: float) -> None:
        if self._decoder is None or self._encoding is not None:
            self._chunks.append(chunk)
        if self._decoder is not None:
            try:
                self._events(self._decoder.decompress(chunk), at)
            except CorruptBody as exc:
                self._keep_encoded(exc)

    def close(self, at: float) -> None:
        """The body so far (even if partial) onto the exchange."""
        if self._decoder is not None:
            try:
                self._events(self._decoder.flush(), at)
            except CorruptBody as exc:
                self._keep_encoded(exc)
            else:
                if tail := self._splitter.flush():
                    self._exchange.events.append(SseEvent(at, tail))
                self._chunks.clear()
        self._exchange.response_body = b"".join(self._chunks)

    def _events(self, data: bytes, at: float) -> None:
        self._exchange.events.extend(SseEvent(at, raw) for raw in self._splitter.feed(data))

    def _keep_encoded(self, exc: CorruptBody) -> None:
        """A stream that does not decode is stored as its encoded bytes, not as events."""
        exchange = self._exchange
        exchange.notes.append(f"event stream kept {self._encoding}-encoded, not split: {exc}")
        exchange.stream = False
        exchange.content_encoding = self._encoding
        exchange.events.clear()
        self._decoder = None


class Upstream:
    def __init__(self, config: UpstreamConfig) -> None:
        base = URL(config.url)
        # Users often paste an SDK base URL ending in /v1; requests already carry that prefix.
        prefix = base.path.rstrip("/")
        prefix = prefix[: -len("/v1")] if prefix.endswith("/v1") else prefix
        self._base = str(base.origin()) + prefix  # every target starts with it
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=config.connect_timeout, sock_read=config.read_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            # Cookies an upstream sets belong to the client that got them, never to the next one.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def target(self, raw_path_qs: str) -> URL:
        """The upstream URL for an origin-form target (the handler refuses any other)."""
        if not raw_path_qs.startswith("/"):
            # Glued onto the base, `@host/...` or `host:port/...` would name another host.
            raise ValueError(f"not an origin-form request target: {raw_path_qs!r}")
        return URL(self._base + raw_path_qs, encoded=True)

    async def relay(
        self,
        request: web.Request,
        raw_path_qs: str,
        headers: Pairs,
        exchange: Exchange,
        finish: Finish,
        shutting_down: Callable[[], bool],
    ) -> web.StreamResponse:
        assert self._session is not None, "Upstream.start() was not awaited"
        loop = asyncio.get_running_loop()
        started = loop.time()
        tee = _Tee(exchange)

        def elapsed_ms() -> float:
            return (loop.time() - started) * 1000

        def done(outcome: Outcome) -> None:
            """Close the tee (body or events so far, even if partial) and hand it to storage."""
            at = elapsed_ms()
            tee.close(at)
            exchange.outcome = outcome
            exchange.duration_ms = at
            finish(exchange)

        def interrupted() -> Outcome:
            return Outcome.SHUTDOWN if shutting_down() else Outcome.CLIENT_DISCONNECTED

        try:
            upstream = await self._session.request(
                request.method,
                self.target(raw_path_qs),
                headers=headers,
                data=exchange.request_body or None,
                allow_redirects=False,
            )
        except asyncio.CancelledError:
            done(interrupted())
            raise
        except TimeoutError:
            failed = self._failed(exchange, tee, 504, "timed out")
            done(Outcome.UPSTREAM_TIMEOUT)
            return failed
        except aiohttp.ClientError as exc:
            failed = self._failed(exchange, tee, 502, str(exc))
            done(Outcome.UPSTREAM_UNREACHABLE)
            return failed

        exchange.ttfb_ms = elapsed_ms()
        exchange.status = upstream.status
        to_client, exchange.response_headers = split_response_headers(upstream.headers, "recorded")
        exchange.upstream_request_id = upstream.headers.get("x-request-id")
        encoding = upstream.headers.get("content-encoding")
        exchange.content_encoding = encoding
        if is_event_stream(upstream.headers.get("content-type")):
            tee.split_events(encoding)
        elif upstream.content.is_eof() and _has_body(request.method, upstream.status):
            # The whole body came with the headers (a usual small JSON answer): nothing is left
            # to wait for, so it goes out in one write instead of chunk by chunk.
            body = upstream.content.read_nowait()
            upstream.release()
            tee.feed(body, elapsed_ms())
            done(Outcome.COMPLETE)
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=to_client, body=body
            )
        response = web.StreamResponse(
            status=upstream.status,
            reason=upstream.reason,
            headers=to_client,
        )

        def delivered() -> bool:
            """Whether the client has had the whole answer: the upstream body ended, or the last
            event is the `[DONE]` after which OpenAI sends nothing (SDKs hang up right there)."""
            if upstream.content.at_eof():
                return True
            last = parse_event(exchange.events[-1].data) if exchange.events else None
            return last is not None and last.data == "[DONE]"

        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                # Tee first: a client that hangs up once it has this chunk fails the write below.
                tee.feed(chunk, elapsed_ms())
                await response.write(chunk)
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionResetError) as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            upstream.close()  # drops the upstream connection: the upstream sees the cancel
            if delivered():
                done(Outcome.COMPLETE)
            else:
                done(interrupted() if cancelled else Outcome.CLIENT_DISCONNECTED)
            if cancelled:
                raise
            return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            upstream.close()
            exchange.notes.append(f"upstream failed mid-response: {exc!r}")
            done(Outcome.UPSTREAM_BROKEN)
            # The status line is gone already; closing tells the client the body is truncated.
            if request.transport is not None:
                request.transport.close()
            return response
        upstream.release()
        done(Outcome.COMPLETE)
        return response

    @staticmethod
    def _failed(exchange: Exchange, tee: _Tee, status: int, detail: str) -> web.Response:
        """The proxy's own 502/504, sent to the client and stored as the exchange's response."""
        message = f"cassette-proxy could not reach the upstream: {detail}"
        code = "upstream_timeout" if status == 504 else "upstream_unreachable"
        exchange.status = status
        exchange.response_headers = [("content-type", "application/json")]
        exchange.notes.append(message)
        tee.feed(error_body(message, "upstream_error", code), 0.0)
        return error_response(status, message, "upstream_error", code)


def _has_body(method: str, status: int) -> bool:
    """Whether a response carries body bytes the client reads (not a HEAD's, a 1xx, 204 or 304)."""
    return method != "HEAD" and status >= 200 and status not in (204, 304)

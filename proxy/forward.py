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
from proxy.content_encoding import Decompressor, UnsupportedEncoding, decompressor_for
from proxy.errors import error_body, error_response
from proxy.exchange import Exchange, Outcome
from proxy.headers import (
    client_response_headers,
    storable_response_headers,
    upstream_request_headers,
)
from proxy.sse import SseEvent, SseSplitter, is_event_stream

Finish = Callable[[Exchange], None]


class Upstream:
    def __init__(self, config: UpstreamConfig) -> None:
        base = URL(config.url)
        # Users often paste an SDK base URL ending in /v1; requests already carry that prefix.
        prefix = base.path.rstrip("/")
        self._prefix = prefix[: -len("/v1")] if prefix.endswith("/v1") else prefix
        self._origin = base.origin()
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
        return URL(str(self._origin) + self._prefix + raw_path_qs, encoded=True)

    async def relay(
        self,
        request: web.Request,
        exchange: Exchange,
        finish: Finish,
        shutting_down: Callable[[], bool],
    ) -> web.StreamResponse:
        assert self._session is not None, "Upstream.start() was not awaited"
        loop = asyncio.get_running_loop()
        started = loop.time()

        def elapsed_ms() -> float:
            return (loop.time() - started) * 1000

        def done(outcome: Outcome) -> None:
            exchange.outcome = outcome
            exchange.duration_ms = elapsed_ms()
            finish(exchange)

        try:
            upstream = await self._session.request(
                request.method,
                self.target(request.raw_path),
                headers=upstream_request_headers(request.headers),
                data=exchange.request_body or None,
                allow_redirects=False,
            )
        except asyncio.CancelledError:
            done(Outcome.SHUTDOWN if shutting_down() else Outcome.CLIENT_DISCONNECTED)
            raise
        except TimeoutError:
            return self._failed(exchange, done, 504, Outcome.UPSTREAM_TIMEOUT, "timed out")
        except aiohttp.ClientError as exc:
            return self._failed(exchange, done, 502, Outcome.UPSTREAM_UNREACHABLE, str(exc))

        exchange.ttfb_ms = elapsed_ms()
        exchange.status = upstream.status
        exchange.response_headers = storable_response_headers(upstream.headers.items())
        exchange.upstream_request_id = upstream.headers.get("x-request-id")
        encoding = upstream.headers.get("content-encoding")
        exchange.content_encoding = encoding
        events: list[SseEvent] | None = None
        splitter = SseSplitter()
        decoder: Decompressor | None = None
        if is_event_stream(upstream.headers.get("content-type")):
            try:
                decoder = decompressor_for(encoding)
            except UnsupportedEncoding as exc:
                exchange.notes.append(f"event stream kept {encoding}-encoded, not split: {exc}")
            else:
                events = exchange.events
                exchange.stream = True
                exchange.content_encoding = None
        chunks: list[bytes] = []
        response = web.StreamResponse(
            status=upstream.status,
            reason=upstream.reason,
            headers=client_response_headers(upstream.headers, "recorded"),
        )
        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
                if decoder is None or events is None:
                    chunks.append(chunk)
                    continue
                at = elapsed_ms()
                events.extend(SseEvent(at, raw) for raw in splitter.feed(decoder.decompress(chunk)))
            await response.write_eof()
        except asyncio.CancelledError:
            upstream.close()  # drops the upstream connection: the upstream sees the cancel
            self._keep_tail(exchange, splitter, decoder, elapsed_ms())
            exchange.response_body = b"".join(chunks)
            done(Outcome.SHUTDOWN if shutting_down() else Outcome.CLIENT_DISCONNECTED)
            raise
        except ConnectionResetError:
            upstream.close()
            self._keep_tail(exchange, splitter, decoder, elapsed_ms())
            exchange.response_body = b"".join(chunks)
            done(Outcome.CLIENT_DISCONNECTED)
            return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            upstream.close()
            exchange.notes.append(f"upstream failed mid-response: {exc!r}")
            self._keep_tail(exchange, splitter, decoder, elapsed_ms())
            exchange.response_body = b"".join(chunks)
            done(Outcome.UPSTREAM_BROKEN)
            # The status line is gone already; closing tells the client the body is truncated.
            if request.transport is not None:
                request.transport.close()
            return response
        upstream.release()
        self._keep_tail(exchange, splitter, decoder, elapsed_ms())
        exchange.response_body = b"".join(chunks)
        done(Outcome.COMPLETE)
        return response

    @staticmethod
    def _keep_tail(
        exchange: Exchange, splitter: SseSplitter, decoder: Decompressor | None, at: float
    ) -> None:
        if decoder is None or not exchange.stream:
            return
        rest = splitter.feed(decoder.flush())
        exchange.events.extend(SseEvent(at, raw) for raw in rest)
        tail = splitter.flush()
        if tail:
            exchange.events.append(SseEvent(at, tail))

    @staticmethod
    def _failed(
        exchange: Exchange,
        done: Callable[[Outcome], None],
        status: int,
        outcome: Outcome,
        detail: str,
    ) -> web.Response:
        message = f"cassette-proxy could not reach the upstream: {detail}"
        code = "upstream_timeout" if status == 504 else "upstream_unreachable"
        exchange.status = status
        exchange.response_body = error_body(message, "upstream_error", code)
        exchange.response_headers = [("content-type", "application/json")]
        exchange.notes.append(message)
        done(outcome)
        return error_response(status, message, "upstream_error", code)

"""Serving recordings: status, headers and body bytes as recorded, SSE events one by one.

With a timing scale, the first byte waits the recorded TTFB and every event its recorded offset
(times the scale), measured from when the request arrived.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web
from multidict import CIMultiDict

from proxy.cassette import Cassette
from proxy.exchange import Exchange
from proxy.matching import Canonical, Difference, differences
from proxy.recordings import Take


async def serve_recording(
    request: web.Request,
    exchange: Exchange,
    headers: CIMultiDict[str],
    scale: float | None,
    arrived: float,
) -> web.StreamResponse:
    loop = asyncio.get_running_loop()

    async def wait_until(offset_ms: float | None) -> None:
        if offset_ms is not None and scale is not None:
            delay = arrived + offset_ms * scale / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    if scale is not None:
        await wait_until(exchange.ttfb_ms)
    if not exchange.stream:
        return web.Response(status=exchange.status, headers=headers, body=exchange.response_body)
    response = web.StreamResponse(status=exchange.status, headers=headers)
    await response.prepare(request)
    for event in exchange.events:
        if scale is not None:
            await wait_until(event.offset_ms)
        await response.write(event.data)
    await response.write_eof()
    return response


def explain_miss(cassette: Cassette, live: Canonical, key: str, take: Take) -> str:
    """Why nothing was served: the nearest recording and the first field that differs."""
    where = f"cassette {cassette.path}"
    request_line = f"{live.method} {live.path}"
    if take.used_up:
        return (
            f"cassette-proxy replay miss: {request_line} matches a recording in {where}, but all "
            f'{take.recorded} recording(s) of it were already replayed (replay.repeat = "error"); '
            "record again to capture the extra call"
        )
    broken = cassette.index.unreplayable(key)
    if broken is not None:
        why = f": {broken.notes[0]}" if broken.notes else ""
        return (
            f"cassette-proxy replay miss: {request_line} was recorded in {where} as exchange "
            f"#{broken.id} ({_when(broken)}), but that recording cannot be replayed: it ended "
            f"{broken.outcome.value}{why}; record it again"
        )
    nearest: tuple[tuple[int, int], Exchange, list[Difference]] | None = None
    for exchange in cassette.index:
        if exchange.method != live.method:
            continue
        found = differences(live, cassette.canonical_of(exchange))
        rank = (int(exchange.path != live.path), len(found))
        if nearest is None or rank < nearest[0]:
            nearest = (rank, exchange, found)
    if nearest is None:
        return (
            f"cassette-proxy replay miss: no recording in {where} matches {request_line}, and it "
            f"holds no {live.method} requests at all; record it first (--mode record or auto)"
        )
    _, exchange, found = nearest
    first = found[0].describe() if found else "no difference in matched fields"
    more = f" (and {len(found) - 1} more difference(s))" if len(found) > 1 else ""
    return (
        f"cassette-proxy replay miss: no recording in {where} matches {request_line}. Nearest is "
        f"exchange #{exchange.id} ({exchange.method} {exchange.path}, {_when(exchange)}): "
        f"{first}{more}."
    )


def _when(exchange: Exchange) -> str:
    at = datetime.fromtimestamp(exchange.started_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return f"recorded {at}"

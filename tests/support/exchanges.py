"""Stored exchanges built in memory, for tests of what reads a cassette's rows."""

from __future__ import annotations

from proxy.exchange import Exchange
from proxy.sse import SseEvent


def stored_exchange(
    path: str,
    request: bytes,
    *,
    exchange_id: int = 1,
    status: int = 200,
    body: bytes = b"",
    events: list[bytes] | None = None,
    request_type: str = "application/json",
) -> Exchange:
    """A POST to `path` as the store holds it: a JSON (or `events` SSE) response, no timings."""
    return Exchange(
        id=exchange_id,
        started_at=0.0,
        method="POST",
        path=path,
        query="",
        request_headers=[("content-type", request_type)],
        request_body=request,
        match_key=f"key-{exchange_id}",
        status=status,
        response_headers=[("content-type", "text/event-stream" if events else "application/json")],
        response_body=body,
        stream=bool(events),
        events=[SseEvent(float(i), raw) for i, raw in enumerate(events or [])],
    )

"""The record of one request/response exchange, as kept in a cassette."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from proxy.sse import SseEvent


class Outcome(StrEnum):
    COMPLETE = "complete"
    CLIENT_DISCONNECTED = "client_disconnected"
    UPSTREAM_UNREACHABLE = "upstream_unreachable"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_BROKEN = "upstream_broken"
    SHUTDOWN = "shutdown"


class Usage(msgspec.Struct, kw_only=True):
    """The typed columns: what the decoded view says about the exchange."""

    model: str | None = None
    input_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    # Usage counted in seconds of audio rather than tokens (whisper-1 transcriptions).
    audio_seconds: float | None = None


class Exchange(msgspec.Struct, kw_only=True):
    id: int
    started_at: float
    method: str
    path: str
    query: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    match_key: str
    key_fingerprint: str | None = None
    endpoint: str | None = None
    status: int = 0
    response_headers: list[tuple[str, str]] = msgspec.field(default_factory=list)
    # For event streams this stays empty and `events` holds the bytes.
    response_body: bytes = b""
    # The coding `response_body` is stored in: None once decoded for storage (the usual case).
    content_encoding: str | None = None
    stream: bool = False
    events: list[SseEvent] = msgspec.field(default_factory=list)
    ttfb_ms: float | None = None
    duration_ms: float | None = None
    outcome: Outcome = Outcome.COMPLETE
    notes: list[str] = msgspec.field(default_factory=list)
    upstream_request_id: str | None = None
    # The pytest test (node id) that made the recording, when the plugin recorded it.
    recorded_by: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)

    @property
    def complete(self) -> bool:
        return self.outcome is Outcome.COMPLETE

    @property
    def replayable(self) -> bool:
        """Complete, or an event stream its client left partway: replayed, it gives the client
        the events it had when it left (a test that reads only the first few, then closes). A
        body cut short any other way is not what any client asked for."""
        return self.complete or (
            self.outcome is Outcome.CLIENT_DISCONNECTED and self.stream and self.status != 0
        )

    def body_bytes(self) -> bytes:
        """The identity-encoded response body, streams included."""
        if self.stream:
            return b"".join(event.data for event in self.events)
        return self.response_body

"""Media types of response bodies: what kind of body a content type names, and the typed
description of a body that is not JSON.

The generator uses :func:`media_kind` to give each route a kind from the media its spec
operation declares (`Route.media`, `Route.kind`); the typed view uses it on the actual
`Content-Type` of a stored response, and describes binary and text bodies with
:class:`BinaryBody` and :class:`TextBody` — size and SHA-256, never the bytes themselves
(text bodies also keep their text: transcripts, SDP answers).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Literal

import msgspec

MediaKind = Literal["json", "sse", "text", "binary"]
#: A route's kind: that of its non-stream success body, `sse` when a stream is all it
#: declares, `none` when it declares no body.
RouteKind = Literal["json", "sse", "text", "binary", "none"]

SSE_MEDIA = "text/event-stream"
#: `application/...` types whose bodies are text (SDP answers, subtitles, JSON Lines).
_TEXT_APPLICATIONS = frozenset(
    {"application/sdp", "application/x-subrip", "application/jsonl", "application/x-ndjson"}
)
_SRT_START = re.compile(r"\A\s*\d+\r?\n\d{2}:\d{2}:\d{2},\d{3} --> ")
_VTT_START = "WEBVTT"
_SDP_START = "v=0"


class BinaryBody(msgspec.Struct, kw_only=True):
    """A binary response body (audio, images, video, archives, file content)."""

    content_type: str | None
    size: int
    sha256: str


class TextBody(msgspec.Struct, kw_only=True):
    """A text response body; `format` is `srt`, `vtt`, `sdp` or `plain`."""

    content_type: str | None
    size: int
    sha256: str
    format: str
    text: str


def essence(content_type: str | None) -> str:
    """The media type without parameters, lower case (`""` when there is none)."""
    return (content_type or "").split(";")[0].strip().lower()


def media_kind(content_type: str | None) -> MediaKind | None:
    """What a content type names; None when there is no content type."""
    media = essence(content_type)
    if not media:
        return None
    if media == SSE_MEDIA:
        return "sse"
    major, _, subtype = media.partition("/")
    if subtype == "json" or subtype.endswith("+json"):
        return "json"
    if major == "text" or media in _TEXT_APPLICATIONS:
        return "text"
    return "binary"


def route_kind(media: Sequence[str]) -> RouteKind:
    """The kind of an operation from the success media it declares, in order."""
    kinds = [media_kind(m) for m in media]
    body = next((k for k in kinds if k is not None and k != "sse"), None)
    if body is not None:
        return body
    return "sse" if "sse" in kinds else "none"


def charset(content_type: str | None, default: str = "utf-8") -> str:
    """The `charset` parameter of a content type."""
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return default


def binary_body(content_type: str | None, data: bytes) -> BinaryBody:
    return BinaryBody(
        content_type=content_type, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )


def text_body(content_type: str | None, data: bytes) -> TextBody:
    """The body as text in its declared charset (UTF-8 by default).

    Raises `UnicodeDecodeError` or `LookupError` when it is not text in that charset.
    """
    text = data.decode(charset(content_type))
    return TextBody(
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        format=text_format(content_type, text),
        text=text,
    )


def text_format(content_type: str | None, text: str) -> str:
    """srt / vtt / sdp / plain. The API sends transcripts as `text/plain` whatever their
    format, so the text itself decides when the media type does not."""
    media = essence(content_type)
    start = text.lstrip("\ufeff")
    if media == "text/vtt" or start.startswith(_VTT_START):
        return "vtt"
    if media == "application/x-subrip" or _SRT_START.match(start):
        return "srt"
    if media == "application/sdp" or start.startswith(_SDP_START):
        return "sdp"
    return "plain"

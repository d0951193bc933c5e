"""Header policy: what crosses the proxy, what is stored, and how credentials become fingerprints."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import NamedTuple

from multidict import CIMultiDict, CIMultiDictProxy

# RFC 9110 §7.6.1 connection-specific headers, plus ones the transport recomputes.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Never forwarded upstream: the proxy speaks to the upstream host itself. `expect`: the proxy
# already holds the whole body, and an upstream that ignores `Expect: 100-continue` (as RFC 9110
# allows) would leave the request waiting for a 100 that never comes.
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect"}
# A request body in one of these codings reaches the handler decoded (aiohttp's server decodes
# it), so its `content-encoding` no longer describes it: neither forwarded nor stored.
DECODED_REQUEST_CODINGS = frozenset({"gzip", "deflate", "br", "zstd"})
# Headers that carry secrets: forwarded to the upstream, never stored.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"}
)
NOT_STORED = CREDENTIAL_HEADERS | HOP_BY_HOP
# Response headers that carry secrets or per-client state: sent to the client, never stored.
SECRET_RESPONSE_HEADERS = frozenset({"set-cookie"})
# Recomputed when a recording is served again: the stored body is identity-encoded.
NOT_REPLAYED = HOP_BY_HOP | {"content-length", "content-encoding"}

PROXY_SOURCE_HEADER = "x-cassette-proxy"

Pairs = list[tuple[str, str]]


def fingerprint(secret: str) -> str:
    """A short, non-reversible identifier for a credential, stable across runs."""
    digest = hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()
    return f"fp_{digest[:16]}"


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of header `name` (lower case) among stored pairs."""
    return next((v for k, v in headers if k.lower() == name), None)


def credential_of(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> str | None:
    """The API key a request presents, bearer prefix stripped, if any."""
    value = headers.get("authorization")
    if value is not None:
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() in ("bearer", "basic") and token else value
    return headers.get("api-key") or headers.get("x-api-key")


def connection_named(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """Header names the `Connection` headers list beyond the standard hop-by-hop ones: they are
    hop-by-hop too. Every `Connection` header counts (a list may be split over several). Empty
    for the usual `keep-alive`."""
    values = headers.getall("connection", ())
    if not values:
        return frozenset()
    named = frozenset(token.strip().lower() for value in values for token in value.split(","))
    return named - HOP_BY_HOP - {""}


class RequestHeaders(NamedTuple):
    forwarded: Pairs  # to the upstream, credentials included, names as the client sent them
    stored: Pairs  # lower-case names, no credentials


class ResponseHeaders(NamedTuple):
    to_client: Pairs  # the upstream's, minus hop-by-hop, plus where the response came from
    stored: Pairs  # lower-case names, no cookies


def split_request_headers(headers: CIMultiDictProxy[str]) -> RequestHeaders:
    """What to forward and what to store, in one pass (this runs for every request)."""
    named = connection_named(headers)  # parsed once for both sets
    not_forwarded = NOT_FORWARDED | named if named else NOT_FORWARDED
    not_stored = NOT_STORED | named if named else NOT_STORED
    forwarded: Pairs = []
    stored: Pairs = []
    encoding_asked = False
    for name, value in headers.items():
        low = name.lower()
        if low == "content-encoding" and value.lower() in DECODED_REQUEST_CODINGS:
            continue
        if low not in not_forwarded:
            forwarded.append((name, value))
            encoding_asked = encoding_asked or low == "accept-encoding"
        if low not in not_stored:
            stored.append((low, value))
    if not encoding_asked:
        # Otherwise aiohttp would ask for gzip on the client's behalf and hand it bytes it
        # never said it could read.
        forwarded.append(("Accept-Encoding", "identity"))
    return RequestHeaders(forwarded, stored)


def split_response_headers(headers: CIMultiDictProxy[str], source: str) -> ResponseHeaders:
    """What the client gets (body bytes untouched, so length kept) and what is stored."""
    named = connection_named(headers)
    dropped = HOP_BY_HOP | named if named else HOP_BY_HOP
    to_client: Pairs = []
    stored: Pairs = []
    for name, value in headers.items():
        low = name.lower()
        if low in dropped:
            continue
        to_client.append((name, value))
        if low not in SECRET_RESPONSE_HEADERS:
            stored.append((low, value))
    to_client.append((PROXY_SOURCE_HEADER, source))
    return ResponseHeaders(to_client, stored)


def replay_response_headers(
    headers: Iterable[tuple[str, str]], body_encoding: str | None, *, head: bool = False
) -> CIMultiDict[str]:
    """Recorded headers for a replay; `content-encoding` only while the body is still encoded.

    The answer to a HEAD has no body: its `content-length` and `content-encoding` describe the
    body a GET would get, so they replay as recorded.
    """
    dropped = HOP_BY_HOP if head else NOT_REPLAYED
    out = CIMultiDict((k, v) for k, v in headers if k not in dropped)
    if body_encoding:
        out["content-encoding"] = body_encoding
    out[PROXY_SOURCE_HEADER] = "replayed"
    return out

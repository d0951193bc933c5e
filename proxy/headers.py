"""Header policy: what crosses the proxy, what is stored, and how credentials become fingerprints."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

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
# Never forwarded upstream: the proxy speaks to the upstream host itself.
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length"}
# Headers that carry secrets: forwarded to the upstream, never stored.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"}
)
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


def connection_scoped(headers: CIMultiDictProxy[str], base: frozenset[str]) -> frozenset[str]:
    """`base` plus the headers a `Connection` header names: they are hop-by-hop too."""
    named = headers.get("connection")
    if not named:
        return base
    return base | {token.strip().lower() for token in named.split(",") if token.strip()}


def upstream_request_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    dropped = connection_scoped(headers, NOT_FORWARDED)
    out = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in dropped)
    if "accept-encoding" not in out:
        # Otherwise aiohttp would ask for gzip on the client's behalf and hand it bytes it
        # never said it could read.
        out["Accept-Encoding"] = "identity"
    return out


def storable_request_headers(headers: Iterable[tuple[str, str]]) -> Pairs:
    return [
        (k.lower(), v)
        for k, v in headers
        if k.lower() not in CREDENTIAL_HEADERS and k.lower() not in HOP_BY_HOP
    ]


def client_response_headers(headers: CIMultiDictProxy[str], source: str) -> CIMultiDict[str]:
    """Upstream response headers as passed to the client (body bytes untouched, so length kept)."""
    dropped = connection_scoped(headers, HOP_BY_HOP)
    out = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in dropped)
    out[PROXY_SOURCE_HEADER] = source
    return out


def storable_response_headers(headers: Iterable[tuple[str, str]]) -> Pairs:
    return [
        (k.lower(), v)
        for k, v in headers
        if k.lower() not in SECRET_RESPONSE_HEADERS and k.lower() not in HOP_BY_HOP
    ]


def replay_response_headers(
    headers: Iterable[tuple[str, str]], body_encoding: str | None
) -> CIMultiDict[str]:
    """Recorded headers for a replay; `content-encoding` only while the body is still encoded."""
    out = CIMultiDict((k, v) for k, v in headers if k not in NOT_REPLAYED)
    if body_encoding:
        out["content-encoding"] = body_encoding
    out[PROXY_SOURCE_HEADER] = "replayed"
    return out

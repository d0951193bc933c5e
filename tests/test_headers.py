"""Header policy: hop-by-hop handling, what is stored and replayed, and credential fingerprints."""

from __future__ import annotations

from pathlib import Path

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.headers import (
    credential_of,
    fingerprint,
    replay_response_headers,
    split_request_headers,
    split_response_headers,
)
from tests.support.fake_openai import FakeOpenAI
from tests.support.proxies import ProxyFactory
from tests.support.raw_http import raw_exchange


def proxy_of(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_hop_by_hop_and_connection_named_headers_are_not_forwarded() -> None:
    incoming = proxy_of(
        ("Host", "127.0.0.1:8080"),
        ("Connection", "keep-alive, X-Hop"),
        ("X-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Authorization", "Bearer sk-live"),
        ("Content-Type", "application/json"),
        ("Content-Length", "12"),
        ("Accept-Encoding", "gzip"),
    )
    forwarded, stored = split_request_headers(incoming)
    assert dict(forwarded) == {
        "Authorization": "Bearer sk-live",  # the upstream needs the key
        "Content-Type": "application/json",
        "Accept-Encoding": "gzip",
    }
    assert dict(stored) == {
        "host": "127.0.0.1:8080",
        "content-type": "application/json",
        "content-length": "12",
        "accept-encoding": "gzip",
    }


def test_every_connection_header_names_hop_by_hop_headers() -> None:
    """A second `Connection` header counts as much as the first (RFC 9110 §5.3: a list)."""
    forwarded, stored = split_request_headers(
        proxy_of(
            ("Connection", "keep-alive"),
            ("Connection", "X-Hop, X-Other"),
            ("X-Hop", "1"),
            ("X-Other", "2"),
            ("Accept", "*/*"),
        )
    )
    assert forwarded == [("Accept", "*/*"), ("Accept-Encoding", "identity")]
    assert stored == [("accept", "*/*")]
    to_client, stored = split_response_headers(
        proxy_of(("Connection", "close"), ("Connection", "X-Hop"), ("X-Hop", "1")), "recorded"
    )
    assert to_client == [("x-cassette-proxy", "recorded")] and stored == []


def test_no_accept_encoding_means_identity_upstream() -> None:
    forwarded, stored = split_request_headers(proxy_of(("Accept", "*/*")))
    assert forwarded == [("Accept", "*/*"), ("Accept-Encoding", "identity")]
    assert stored == [("accept", "*/*")]  # what the client sent, not what the proxy added


def test_credentials_and_cookies_never_stored() -> None:
    forwarded, stored = split_request_headers(
        proxy_of(
            ("Authorization", "Bearer sk-a"),
            ("api-key", "azure"),
            ("X-Api-Key", "x"),
            ("Cookie", "c=1"),
            ("OpenAI-Organization", "org-1"),
            ("Transfer-Encoding", "chunked"),
        )
    )
    assert stored == [("openai-organization", "org-1")]
    assert len(forwarded) == 6  # all but Transfer-Encoding, plus Accept-Encoding: identity
    to_client, stored = split_response_headers(
        proxy_of(("Set-Cookie", "__cf_bm=x"), ("X-Request-Id", "req")), "recorded"
    )
    assert stored == [("x-request-id", "req")]
    assert ("Set-Cookie", "__cf_bm=x") in to_client  # the client's cookie, just not kept


def test_client_and_replay_response_headers() -> None:
    upstream = proxy_of(
        ("Content-Type", "application/json"),
        ("Content-Length", "10"),
        ("Content-Encoding", "gzip"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "close"),
    )
    pairs, stored = split_response_headers(upstream, "recorded")
    to_client = CIMultiDict(pairs)
    # the body passes untouched, so its length and coding stay
    assert to_client["Content-Length"] == "10" and to_client["Content-Encoding"] == "gzip"
    assert "Transfer-Encoding" not in to_client and "Connection" not in to_client
    assert to_client["x-cassette-proxy"] == "recorded"
    replayed = replay_response_headers(stored, None)  # stored body is decoded
    assert "content-encoding" not in replayed and "content-length" not in replayed
    assert replayed["x-cassette-proxy"] == "replayed"
    assert replay_response_headers(stored, "br")["content-encoding"] == "br"
    # A HEAD has no body: its length and coding describe a GET's, and replay as recorded.
    head = replay_response_headers(stored, None, head=True)
    assert head["content-length"] == "10" and head["content-encoding"] == "gzip"
    assert "transfer-encoding" not in head and "connection" not in head


def response_head(answer: bytes) -> dict[str, str]:
    lines = answer.partition(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
    return {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}


def test_a_head_replays_the_recorded_content_length(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    request = (
        f"HEAD /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api_key}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    recorder = proxies.start("record", upstream.url, cassette)
    recorded = response_head(raw_exchange(recorder.port, request))
    recorder.stop()
    replayer = proxies.start("replay", upstream.url, cassette)
    replayed = response_head(raw_exchange(replayer.port, request))
    replayer.stop()
    assert int(recorded["content-length"]) > 0
    assert replayed["x-cassette-proxy"] == "replayed"
    for name in ("content-length", "content-type"):
        assert replayed.get(name) == recorded[name]


def test_fingerprint_is_stable_short_and_hides_the_key() -> None:
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
    assert credential_of(proxy_of(("Authorization", f"Bearer {key}"))) == key
    assert credential_of(proxy_of(("api-key", "azure-key"))) == "azure-key"
    assert credential_of(proxy_of(("Accept", "*/*"))) is None
    print_ = fingerprint(key)
    assert print_ == fingerprint(key) != fingerprint(key + "x")
    assert print_.startswith("fp_") and len(print_) == 19
    assert key not in print_ and key[-4:] not in print_

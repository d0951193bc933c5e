"""A secret never reaches disk: not in the database, not in the WAL, not in the shared-memory file,
while the proxy runs or after it stops. Requests are attributed by a key fingerprint instead. And
a request, with its key, only ever goes to the configured upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest

from proxy.config import UpstreamConfig
from proxy.forward import Upstream
from tests.support.clients import sync_client
from tests.support.fake_openai import FakeOpenAI
from tests.support.loop_thread import LoopThread
from tests.support.proxies import ProxyFactory, query, wait_until
from tests.support.raw_http import body_of, raw_exchange, status_of

SUFFIXES = ("", "-wal", "-shm", "-journal")


def cassette_files(cassette: Path) -> dict[str, bytes]:
    files = {}
    for suffix in SUFFIXES:
        path = cassette.with_name(cassette.name + suffix)
        if path.exists():
            files[path.name] = path.read_bytes()
    return files


def assert_secret_absent(cassette: Path, secret: str) -> dict[str, bytes]:
    files = cassette_files(cassette)
    assert cassette.name in files
    unique = secret.removeprefix("sk-test-")
    for name, data in files.items():
        # Booleans, so a failure names the file instead of printing its bytes.
        whole = secret.encode() in data
        part = unique.encode() in data or unique.upper().encode() in data
        assert not whole, f"the API key is in {name}"
        assert not part, f"the unique part of the API key is in {name}"
    return files


def test_api_key_never_reaches_the_cassette_files(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = proxies.start("record", upstream.url, cassette)
    with sync_client(recorder.base_url, api_key, max_retries=0) as client:
        messages = [{"role": "user", "content": "keep my secrets"}]
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        with client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True
        ) as stream:
            assert len(list(stream)) > 2
        client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        client.models.list()
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"RIFF" * 100))
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("does-not-exist")
    calls = 6
    assert upstream.request_count == calls
    assert upstream.bearer_tokens == {api_key}, "the key must still be forwarded upstream"

    # While the proxy runs: wait until every exchange is written (write-behind), then look.
    wait_until(
        lambda: query(cassette, "SELECT COUNT(*) FROM exchanges") == [(calls,)],
        what="exchanges to reach the cassette",
    )
    running = assert_secret_absent(cassette, api_key)
    assert running.get(cassette.name + "-wal"), "the WAL should hold the session's writes"

    recorder.stop()
    assert_secret_absent(cassette, api_key)

    fingerprints = query(cassette, "SELECT DISTINCT key_fingerprint FROM exchanges")
    assert len(fingerprints) == 1
    fingerprint = fingerprints[0][0]
    assert isinstance(fingerprint, str) and fingerprint
    for (headers,) in query(cassette, "SELECT request_headers FROM exchanges"):
        assert "authorization" not in headers.lower()


def test_another_key_gets_another_fingerprint(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    other = api_key + "-other"
    recorder = proxies.start("record", upstream.url, cassette)
    for key in (api_key, other, api_key):
        with sync_client(recorder.base_url, key) as client:
            client.models.retrieve("gpt-4o-mini")
    recorder.stop()
    rows = query(cassette, "SELECT key_fingerprint FROM exchanges ORDER BY id")
    assert rows[0] == rows[2] != rows[1]
    assert_secret_absent(cassette, api_key)
    assert_secret_absent(cassette, other)


@pytest.mark.parametrize("header", ["api-key", "x-api-key", "cookie"])
def test_other_credential_headers_never_reach_disk(
    header: str, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    """Azure-style `api-key`, `x-api-key` and cookies are secrets too."""
    recorder = proxies.start("record", upstream.url, cassette)
    value = api_key if header != "cookie" else f"session={api_key}"
    response = httpx2.get(
        recorder.base_url + "/models",
        headers={header: value, "authorization": "Bearer sk-unrelated-but-present"},
        trust_env=False,
    )
    assert response.status_code == 200
    assert upstream.requests[-1].headers.get(header) == value, "forwarded upstream unchanged"
    recorder.stop()
    assert_secret_absent(cassette, api_key)
    headers = query(cassette, "SELECT request_headers FROM exchanges")
    assert len(headers) == 1 and f'"{header}"' not in headers[0][0]


def get_request(target: str, api_key: str) -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api_key}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


@pytest.fixture
def elsewhere(servers: LoopThread) -> Iterator[FakeOpenAI]:
    """A second server: a host the client names that is not the proxy's upstream."""
    fake = FakeOpenAI()
    servers.run(fake.start())
    yield fake
    servers.run(fake.stop())


@pytest.mark.parametrize("target", ["http://{host}/v1/models", "munity://{host}/v1/models"])
def test_a_request_target_that_is_not_a_path_is_refused_and_never_forwarded(
    target: str,
    upstream: FakeOpenAI,
    elsewhere: FakeOpenAI,
    proxies: ProxyFactory,
    cassette: Path,
    api_key: str,
) -> None:
    """Glued onto the upstream URL, an absolute-form target would send the key to its host."""
    recorder = proxies.start("record", upstream.url, cassette)
    host = elsewhere.url.removeprefix("http://")
    answer = raw_exchange(recorder.port, get_request(target.format(host=host), api_key))
    recorder.stop()
    assert status_of(answer) == 400
    error = json.loads(body_of(answer))["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_request_target"
    assert "nothing was forwarded" in error["message"]
    assert upstream.requests == [] and elsewhere.requests == []
    assert query(cassette, "SELECT COUNT(*) FROM exchanges") == [(0,)]


@pytest.mark.parametrize("path", ["//{host}/v1/models", "/@{host}/v1/models"])
def test_a_path_cannot_name_another_host(
    path: str,
    upstream: FakeOpenAI,
    elsewhere: FakeOpenAI,
    proxies: ProxyFactory,
    cassette: Path,
    api_key: str,
) -> None:
    recorder = proxies.start("record", upstream.url, cassette)
    host = elsewhere.url.removeprefix("http://")
    raw_exchange(recorder.port, get_request(path.format(host=host), api_key))
    recorder.stop()
    assert [seen.path for seen in upstream.requests] == [path.format(host=host)]
    assert elsewhere.requests == []


@pytest.mark.parametrize("target", ["@127.0.0.1/v1/models", "127.0.0.1:9/v1/models", "http://x/"])
def test_the_upstream_url_is_only_ever_built_from_a_path(target: str) -> None:
    """aiohttp refuses some of these itself; the upstream side refuses them all again."""
    upstream = Upstream(UpstreamConfig(url="https://api.openai.com/v1"))
    assert upstream.target("//127.0.0.1:9/v1/models").host == "api.openai.com"
    with pytest.raises(ValueError, match="not an origin-form request target"):
        upstream.target(target)

"""A secret never reaches disk: not in the database, not in the WAL, not in the shared-memory file,
while the proxy runs or after it stops. Requests are attributed by a key fingerprint instead."""

from __future__ import annotations

from pathlib import Path

import httpx2
import openai
import pytest

from tests.support.clients import sync_client
from tests.support.fake_openai import FakeOpenAI
from tests.support.proxies import ProxyFactory, query, wait_until

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

"""Named cassettes through one server: /_c/<name>/v1/... served from DIR/<name>.db."""

from __future__ import annotations

import asyncio
import http.client
import json
import sqlite3
from pathlib import Path

import httpx2
import openai
import pytest

from tests.support.clients import async_client, sync_client
from tests.support.fake_openai import FakeOpenAI
from tests.support.proxies import ProxyFactory, closed_port_url, query

COUNTER = {"model": "counter", "messages": [{"role": "user", "content": "count"}]}


def named_url(base_url: str, name: str) -> str:
    """`http://host:port/v1` → `http://host:port/_c/<name>/v1`."""
    return base_url.removesuffix("/v1") + f"/_c/{name}/v1"


def answer(base_url: str, api_key: str) -> str | None:
    with sync_client(base_url, api_key, max_retries=0) as client:
        return client.chat.completions.create(**COUNTER).choices[0].message.content  # type: ignore[call-overload]


def test_each_name_has_its_own_file_recordings_and_order(
    tmp_path: Path, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    directory = tmp_path / "cassettes"
    recorder = proxies.start("record", upstream.url, cassette, cassette_dir=str(directory))
    a = named_url(recorder.base_url, "suite/test_a")
    b = named_url(recorder.base_url, "suite/test_b")
    assert [answer(a, api_key), answer(b, api_key), answer(a, api_key)] == [
        "answer 1",
        "answer 2",
        "answer 3",
    ]
    recorder.stop()
    assert sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*.db")) == [
        "suite/test_a.db",
        "suite/test_b.db",
    ]
    with sqlite3.connect(directory / "suite" / "test_a.db") as db:
        assert db.execute("SELECT id, path FROM exchanges").fetchall() == [
            (1, "/v1/chat/completions"),
            (2, "/v1/chat/completions"),
        ]
    assert not cassette.exists() or sqlite3.connect(cassette).execute(
        "SELECT COUNT(*) FROM exchanges"
    ).fetchone() == (0,)

    replayer = proxies.start("replay", closed_port_url(), cassette, cassette_dir=str(directory))
    a = named_url(replayer.base_url, "suite/test_a")
    b = named_url(replayer.base_url, "suite/test_b")
    # each cassette keeps its own sequence: b's only recording, a's two in order
    assert answer(b, api_key) == "answer 2"
    assert answer(a, api_key) == "answer 1"
    assert answer(a, api_key) == "answer 3"
    assert upstream.counter_calls == 3


async def test_parallel_clients_never_take_each_others_recordings(
    tmp_path: Path, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    directory = tmp_path / "cassettes"
    recorder = await proxies.astart("record", upstream.url, cassette, cassette_dir=str(directory))

    async def run(base_url: str, name: str, times: int) -> list[str | None]:
        async with async_client(named_url(base_url, name), api_key) as client:
            out = []
            for _ in range(times):
                reply = await client.chat.completions.create(**COUNTER)  # type: ignore[call-overload]
                out.append(reply.choices[0].message.content)
            return out

    recorded = await asyncio.gather(*(run(recorder.base_url, f"w{i}", 3) for i in range(6)))
    await recorder.astop()
    replayer = await proxies.astart(
        "replay", closed_port_url(), cassette, cassette_dir=str(directory)
    )
    replayed = await asyncio.gather(*(run(replayer.base_url, f"w{i}", 3) for i in range(6)))
    assert replayed == recorded
    assert len({answer for answers in recorded for answer in answers}) == 18


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2Fescape",
        "../escape",
        "a/../../escape",
        "a//b",
        "%2e%2e/x",
        # Not valid file names everywhere a cassette kept in git may be checked out
        "suite:login",
        "a~b*",
        "x" * 201,
    ],
)
def test_names_escaping_the_directory_are_refused(
    tmp_path: Path, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, name: str
) -> None:
    directory = tmp_path / "inside" / "cassettes"
    proxy = proxies.start("record", upstream.url, cassette, cassette_dir=str(directory))
    # http.client sends the path as written (HTTP libraries would normalise the dots away)
    host, port = proxy.base_url.removeprefix("http://").removesuffix("/v1").split(":")
    for _ in range(2):  # refused every time: only names that passed the checks are remembered
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", f"/_c/{name}/v1/models", headers={"authorization": "Bearer k"})
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
        assert response.status == 400
        assert body["error"]["code"] == "bad_cassette_name"
    assert upstream.request_count == 0
    assert list(tmp_path.rglob("*.db")) == [] or all(
        p.is_relative_to(directory) or p == cassette for p in tmp_path.rglob("*.db")
    )
    assert not (tmp_path / "inside" / "escape.db").exists()
    assert not (tmp_path / "escape.db").exists()


def test_mode_per_cassette_and_fresh_rewrite(
    tmp_path: Path, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    directory = tmp_path / "cassettes"
    proxy = proxies.start("record", upstream.url, cassette, cassette_dir=str(directory))
    admin = proxy.base_url.removesuffix("/v1") + "/_proxy/cassettes"
    url = named_url(proxy.base_url, "t")
    assert answer(url, api_key) == "answer 1"

    switched = httpx2.put(f"{admin}/t", json={"mode": "replay"})
    assert switched.status_code == 200 and switched.json()["mode"] == "replay"
    assert answer(url, api_key) == "answer 1"  # replayed while the server records
    assert upstream.counter_calls == 1
    with (
        pytest.raises(openai.BadRequestError, match="cassette-proxy replay miss"),
        sync_client(url, api_key, max_retries=0) as client,
    ):
        client.chat.completions.create(
            model="counter", messages=[{"role": "user", "content": "other"}]
        )

    rewritten = httpx2.put(f"{admin}/t", json={"mode": "record", "fresh": True})
    assert rewritten.json()["exchanges"] == 0
    assert answer(url, api_key) == "answer 2"
    listing = httpx2.get(admin).json()
    assert [(c["name"], c["mode"], c["exchanges"]) for c in listing["cassettes"]] == [
        ("t", "record", 1)
    ]
    assert httpx2.put(f"{admin}/t", json={"mode": "sideways"}).status_code == 400


def test_named_paths_without_a_cassette_dir_are_a_clear_error(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path
) -> None:
    proxy = proxies.start("record", upstream.url, cassette)
    base = proxy.base_url.removesuffix("/v1")
    response = httpx2.get(f"{base}/_c/t/v1/models")
    assert response.status_code == 404
    assert "--cassette-dir" in response.json()["error"]["message"]
    assert upstream.request_count == 0


@pytest.mark.parametrize("ending", ["finished", "abandoned"])
def test_a_stream_still_running_when_its_cassette_is_released_is_stored(
    tmp_path: Path,
    upstream: FakeOpenAI,
    proxies: ProxyFactory,
    cassette: Path,
    api_key: str,
    ending: str,
) -> None:
    """Switching a cassette's mode (or a pytest test ending) releases it while a stream the
    client started may still be running: the exchange is stored when it ends, not lost."""
    directory = tmp_path / "cassettes"
    proxy = proxies.start("record", upstream.url, cassette, cassette_dir=str(directory))
    admin = proxy.base_url.removesuffix("/v1") + "/_proxy/cassettes"
    prompt = f"outlives its cassette ({ending})"
    with sync_client(named_url(proxy.base_url, "t"), api_key, max_retries=0) as client:
        stream = client.chat.completions.create(
            model="slow-stream",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            max_completion_tokens=4,
        )
        chunks = iter(stream)
        assert next(chunks).choices[0].delta.content == "tick0 "
        released = httpx2.put(f"{admin}/t", json={"mode": "record"})
        assert released.status_code == 200
        if ending == "finished":
            assert [c.choices[0].delta.content for c in chunks] == ["tick1 ", "tick2 ", "tick3 "]
        stream.close()  # abandoned: the client hangs up after the first event
    upstream.slow_streams[prompt].ended.wait(10)
    proxy.stop()
    rows = query(directory / "t.db", "SELECT complete, outcome FROM exchanges")
    expected = (1, "complete") if ending == "finished" else (0, "client_disconnected")
    assert rows == [expected]


def test_replaying_named_cassettes_needs_no_default_cassette(
    tmp_path: Path, upstream: FakeOpenAI, proxies: ProxyFactory, api_key: str
) -> None:
    directory = tmp_path / "cassettes"
    recorder = proxies.start(
        "record", upstream.url, tmp_path / "recorder.db", cassette_dir=str(directory)
    )
    assert answer(named_url(recorder.base_url, "suite/test_a"), api_key) == "answer 1"
    recorder.stop()

    # In CI: a folder of per-test cassettes, and no cassettes/default.db anyone recorded.
    default = tmp_path / "default.db"
    replayer = proxies.start("replay", closed_port_url(), default, cassette_dir=str(directory))
    assert answer(named_url(replayer.base_url, "suite/test_a"), api_key) == "answer 1"
    with pytest.raises(openai.BadRequestError, match="holds no POST requests at all"):
        answer(replayer.base_url, api_key)  # outside /_c/: a miss, not a crash
    assert not default.exists()

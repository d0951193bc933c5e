"""Streaming, shutdown and failure behaviour: no buffering, graceful drain on SIGTERM, clients that
leave early, bodies over the limit, an unreachable upstream, and config errors at start-up."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from aiohttp import web

from tests.support.clients import HttpLog, async_client, sync_client
from tests.support.fake_openai import FakeOpenAI
from tests.support.loop_thread import LoopThread
from tests.support.proxies import (
    ProxyFactory,
    ProxyProcess,
    clean_env,
    closed_port_url,
    free_port,
    proxy_command,
    query,
)


def slow_request(prompt: str, events: int) -> dict[str, Any]:
    return {
        "model": "slow-stream",
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "max_completion_tokens": events,
    }


# ------------------------------------------------------------------------------------------------
# Streams are tee'd, never buffered.


def test_each_event_reaches_the_client_before_the_upstream_sends_the_next(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = proxies.start("record", upstream.url, cassette)
    received: list[tuple[float, str | None]] = []
    with (
        sync_client(recorder.base_url, api_key, max_retries=0) as client,
        client.chat.completions.create(**slow_request("no buffering", 4)) as stream,
    ):
        for chunk in stream:
            received.append((time.monotonic(), chunk.choices[0].delta.content))
    log = upstream.slow_streams["no buffering"]
    assert log.finished and not log.cancelled
    assert [text for _, text in received] == ["tick0 ", "tick1 ", "tick2 ", "tick3 "]
    # Both clocks are time.monotonic() in this process: an ordering check, not a duration.
    for i in range(len(received) - 1):
        assert received[i][0] < log.write_times[i + 1], (
            f"event {i} reached the client only after the upstream started writing event {i + 1}"
        )


def test_a_body_arriving_in_parts_reaches_the_client_part_by_part(
    servers: LoopThread, proxies: ProxyFactory, cassette: Path
) -> None:
    """Not only event streams: any body still arriving is relayed as it comes (only one that
    came whole with the headers is sent in one write)."""
    second_part = threading.Event()

    async def download(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "application/octet-stream"})
        await response.prepare(request)
        await response.write(b"part one;")
        await asyncio.to_thread(second_part.wait, 10)
        await response.write(b"part two")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/v1/files/file-1/content", download)
    runner = web.AppRunner(app)
    servers.run(runner.setup())
    servers.run(web.TCPSite(runner, "127.0.0.1", 0).start())
    try:
        host, port = runner.addresses[0][:2]
        proxy = proxies.start("record", f"http://{host}:{port}", cassette)
        with (
            httpx2.Client(timeout=10) as client,
            client.stream("GET", f"{proxy.base_url}/files/file-1/content") as response,
        ):
            parts = response.iter_raw()
            assert next(parts) == b"part one;"  # while the upstream still holds part two
            second_part.set()
            assert b"".join(parts) == b"part two"
        proxy.stop()
    finally:
        second_part.set()
        servers.run(runner.cleanup())
    assert query(cassette, "SELECT response_body, complete FROM exchanges") == [
        (b"part one;part two", 1)
    ]


# ------------------------------------------------------------------------------------------------
# SIGTERM drains in-flight streams, then flushes the cassette.


async def test_sigterm_lets_ten_in_flight_streams_finish_then_exits_zero(
    upstream: FakeOpenAI, tmp_path: Path, api_key: str
) -> None:
    cassette = tmp_path / "drain.db"
    port = free_port()
    proc = ProxyProcess(
        [
            "serve", "--mode", "record", "--upstream", upstream.url, "--cassette", str(cassette),
            "--host", "127.0.0.1", "--port", str(port), "--log-format", "json",
        ],
        tmp_path,
        port,
    )  # fmt: skip
    events = 8
    try:
        health = await asyncio.to_thread(proc.wait_healthy)
        assert health["mode"] == "record" and health["status"] == "ok"
        started = [asyncio.Event() for _ in range(10)]

        async def one(i: int, client: openai.AsyncOpenAI) -> list[str | None]:
            texts: list[str | None] = []
            async with await client.chat.completions.create(
                **slow_request(f"drain {i}", events)
            ) as stream:
                async for chunk in stream:
                    texts.append(chunk.choices[0].delta.content)
                    started[i].set()
            return texts

        async with async_client(proc.base_url, api_key, max_retries=0) as client:
            tasks = [asyncio.create_task(one(i, client)) for i in range(10)]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 30)
            signalled = time.monotonic()
            proc.process.send_signal(signal.SIGTERM)
            results = await asyncio.wait_for(asyncio.gather(*tasks), 30)
        returncode = await asyncio.to_thread(proc.process.wait, 30)
    finally:
        proc.kill()

    expected = [f"tick{j} " for j in range(events)]
    assert results == [expected] * 10
    assert returncode == 0, proc.stderr()
    assert "Traceback" not in proc.stderr()
    logs = [upstream.slow_streams[f"drain {i}"] for i in range(10)]
    assert all(log.finished and not log.cancelled for log in logs)
    # The streams really were in flight: the upstream kept writing after the signal.
    assert all(log.write_times[-1] > signalled for log in logs)
    rows = query(cassette, "SELECT COUNT(*) FROM exchanges WHERE complete = 1 AND stream = 1")
    assert rows == [(10,)]
    events_stored = query(cassette, "SELECT COUNT(*) FROM sse_events")
    assert events_stored == [(10 * (events + 1),)]  # every chunk plus [DONE]


async def test_a_stream_outlasting_the_shutdown_grace_is_cut_and_stored_as_shutdown(
    tmp_path: Path, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    config = tmp_path / "grace.toml"
    config.write_text("[server]\nshutdown_grace = 0.5\n")
    recorder = await proxies.astart("record", upstream.url, cassette, config_file=config)
    planned = 40  # 8 s of events: far beyond the grace period
    received: list[str | None] = []
    first = asyncio.Event()

    async def consume(client: openai.AsyncOpenAI) -> BaseException | None:
        try:
            async with await client.chat.completions.create(
                **slow_request("outlasts grace", planned)
            ) as stream:
                async for chunk in stream:
                    received.append(chunk.choices[0].delta.content)
                    first.set()
        except openai.APIConnectionError as exc:
            return exc
        return None

    async with async_client(recorder.base_url, api_key, max_retries=0) as client:
        task = asyncio.create_task(consume(client))
        await asyncio.wait_for(first.wait(), 30)
        await recorder.astop()
        error = await asyncio.wait_for(task, 30)
    assert error is not None, "the client should see its stream cut, not a clean end"
    assert 1 <= len(received) < planned
    log = upstream.slow_streams["outlasts grace"]
    assert await asyncio.to_thread(log.ended.wait, 15)
    assert log.cancelled and not log.finished
    rows = query(cassette, "SELECT id, status, complete, outcome, stream FROM exchanges")
    assert [row[1:] for row in rows] == [(200, 0, "shutdown", 1)]
    stored = query(cassette, "SELECT COUNT(*) FROM sse_events WHERE exchange_id = ?", rows[0][0])
    assert stored[0][0] >= len(received)


def test_cli_replay_mode_serves_the_cassette_and_exits_zero_on_sigint(
    servers: LoopThread, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = proxies.start("record", upstream.url, cassette)
    messages = [{"role": "user", "content": "from the command line"}]
    with sync_client(recorder.base_url, api_key) as client:
        recorded = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    recorder.stop()
    servers.run(upstream.stop())

    port = free_port()
    proc = ProxyProcess(
        [
            "serve", "--mode", "replay", "--upstream", upstream.url, "--cassette", str(cassette),
            "--port", str(port), "--log-format", "json",
        ],
        cassette.parent,
        port,
    )  # fmt: skip
    try:
        health = proc.wait_healthy()
        assert (health["mode"], health["exchanges"]) == ("replay", 1)
        assert health["cassette"].endswith(cassette.name)
        with sync_client(proc.base_url, api_key) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=messages
            )
        proc.process.send_signal(signal.SIGINT)
        returncode = proc.process.wait(30)
    finally:
        proc.kill()
    assert raw.headers["x-cassette-proxy"] == "replayed"
    replayed = raw.parse()
    assert replayed.model_dump() == recorded.model_dump()
    assert replayed._request_id == recorded._request_id
    assert upstream.request_count == 1
    assert returncode == 0, proc.stderr()
    assert "Traceback" not in proc.stderr()


# ------------------------------------------------------------------------------------------------
# A client that leaves mid-stream.


def check_disconnect_recorded(upstream: FakeOpenAI, prompt: str, cassette: Path) -> None:
    log = upstream.slow_streams[prompt]
    assert log.ended.wait(15), "the upstream never learnt that the client went away"
    assert log.cancelled and not log.finished
    assert len(log.write_times) < log.events_planned


def check_disconnect_stored(cassette: Path) -> None:
    rows = query(cassette, "SELECT id, complete, outcome, stream, status FROM exchanges")
    assert [row[1:] for row in rows] == [(0, "client_disconnected", 1, 200)]
    stored = query(
        cassette, "SELECT data FROM sse_events WHERE exchange_id = ? ORDER BY idx", rows[0][0]
    )
    assert stored and b"tick0" in stored[0][0]


def test_sync_client_leaving_mid_stream_cancels_upstream_and_is_stored_incomplete(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = proxies.start("record", upstream.url, cassette)
    with sync_client(recorder.base_url, api_key, max_retries=0) as client:
        stream = client.chat.completions.create(**slow_request("leave early", 25))
        for chunk in stream:
            assert chunk.choices[0].delta.content == "tick0 "
            break
        stream.close()
    check_disconnect_recorded(upstream, "leave early", cassette)
    recorder.stop()
    check_disconnect_stored(cassette)
    # Replayed, the test that left after the first event gets what it had.
    replayer = proxies.start("replay", closed_port_url(), cassette)
    with (
        sync_client(replayer.base_url, api_key, max_retries=0) as client,
        client.chat.completions.create(**slow_request("leave early", 25)) as stream,
    ):
        assert next(iter(stream)).choices[0].delta.content == "tick0 "


def test_in_auto_a_stream_left_partway_is_not_what_the_next_identical_request_gets(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    """The part is replayable later, but a request reading on in the same run is forwarded."""
    recorder = proxies.start("auto", upstream.url, cassette)
    request = slow_request("peek, then read", 5)
    with sync_client(recorder.base_url, api_key, max_retries=0) as client:
        with client.chat.completions.create(**request) as stream:
            assert next(iter(stream)).choices[0].delta.content == "tick0 "
        check_disconnect_recorded(upstream, "peek, then read", cassette)
        with client.chat.completions.create(**request) as stream:
            assert "".join(c.choices[0].delta.content or "" for c in stream).split() == [
                f"tick{i}" for i in range(5)
            ]
    recorder.stop()
    assert query(cassette, "SELECT outcome FROM exchanges ORDER BY id") == [
        ("client_disconnected",),
        ("complete",),
    ]


async def test_async_client_leaving_mid_stream_cancels_upstream_and_is_stored_incomplete(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = await proxies.astart("record", upstream.url, cassette)
    async with async_client(recorder.base_url, api_key, max_retries=0) as client:
        stream = await client.chat.completions.create(**slow_request("leave early async", 25))
        async for chunk in stream:
            assert chunk.choices[0].delta.content == "tick0 "
            break
        await stream.close()
    await asyncio.to_thread(check_disconnect_recorded, upstream, "leave early async", cassette)
    await recorder.astop()
    check_disconnect_stored(cassette)


def test_a_client_hanging_up_after_done_leaves_a_complete_exchange(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    """SDKs close the connection once they read `[DONE]`, often before the body's end arrives."""
    upstream.done_linger = 5.0  # the end of the body comes long after [DONE]
    recorder = proxies.start("record", upstream.url, cassette)
    with sync_client(recorder.base_url, api_key, max_retries=0) as client:
        chunks = list(client.chat.completions.create(**slow_request("hang up after done", 3)))
    assert [c.choices[0].delta.content for c in chunks] == ["tick0 ", "tick1 ", "tick2 "]
    log = upstream.slow_streams["hang up after done"]
    assert log.ended.wait(15) and log.cancelled  # the proxy let the upstream go at once
    recorder.stop()
    rows = query(cassette, "SELECT id, complete, outcome FROM exchanges")
    assert [row[1:] for row in rows] == [(1, "complete")]
    events = query(
        cassette, "SELECT data FROM sse_events WHERE exchange_id = ? ORDER BY idx", rows[0][0]
    )
    assert len(events) == 4 and events[-1][0] == b"data: [DONE]\n\n"


# ------------------------------------------------------------------------------------------------
# Failures the proxy answers itself, OpenAI-shaped.


def test_body_over_the_limit_gets_413_and_never_reaches_the_upstream(
    tmp_path: Path, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    config = tmp_path / "small.toml"
    config.write_text("[server]\nmax_body_size = 2048\n")
    recorder = proxies.start("record", upstream.url, cassette, config_file=config)
    log = HttpLog()
    big = [{"role": "user", "content": "x" * 6000}]
    with sync_client(recorder.base_url, api_key, log=log) as client:
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=big)
        small = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "tiny"}]
        )
    error = info.value
    assert error.status_code == 413
    assert isinstance(error.body, dict)
    assert error.body["type"] == "invalid_request_error"
    assert error.body["code"] == "request_too_large"
    assert "max_body_size" in error.body["message"]
    assert log.requests == 2, "the 413 must not be retried"
    assert log.responses[0].headers.get("x-should-retry") == "false"
    assert small.choices[0].message.content
    assert upstream.request_count == 1 and b"tiny" in upstream.requests[0].body

    # A chunked body (no Content-Length) over the limit is refused the same way.
    def chunks() -> Any:
        for _ in range(10):
            yield b"y" * 1000

    response = httpx2.post(
        recorder.base_url + "/embeddings",
        content=chunks(),
        headers={"authorization": f"Bearer {api_key}", "content-type": "application/json"},
        trust_env=False,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert upstream.request_count == 1


def test_unreachable_upstream_gives_502_and_is_stored_incomplete(
    proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = proxies.start("record", closed_port_url(), cassette)
    with (
        sync_client(recorder.base_url, api_key, max_retries=0) as client,
        pytest.raises(openai.InternalServerError) as info,
    ):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "anyone there?"}]
        )
    error = info.value
    assert error.status_code == 502
    assert isinstance(error.body, dict)
    assert error.body["code"] == "upstream_unreachable" and error.body["message"]
    recorder.stop()
    rows = query(cassette, "SELECT status, complete, outcome, path FROM exchanges")
    assert rows == [(502, 0, "upstream_unreachable", "/v1/chat/completions")]
    # what the client got is what the cassette keeps
    ((stored_body, error_code),) = query(
        cassette, "SELECT response_body, error_code FROM exchanges"
    )
    assert b'"upstream_unreachable"' in stored_body
    assert error_code == "upstream_unreachable"


# ------------------------------------------------------------------------------------------------
# Config errors stop start-up with a message naming the key and the file.


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[server]\nprot = 8080\n", "server.prot"),
        ("[sever]\nport = 8080\n", "sever"),
        ('[replay]\ntiming = "none"\nrepet = "last"\n', "replay.repet"),
        ('[server]\nmax_body_size = "huge"\n', "server.max_body_size"),
    ],
)
def test_config_error_names_the_key_and_file_without_a_traceback(
    tmp_path: Path, toml: str, key: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(toml)
    # --port only keeps a wrongly accepted config off the default port (it would then time out).
    result = subprocess.run(
        proxy_command("serve", "--config", str(bad), "--port", str(free_port())),
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert f"`{key}`" in result.stderr
    assert str(bad) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cassettes").exists(), "nothing should start on a bad config"


def test_replaying_a_cassette_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "cassete.db"
    result = subprocess.run(
        proxy_command("serve", "--mode", "replay", "--cassette", str(missing), "--port", "0"),
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"{missing}: no such cassette to replay" in result.stderr
    assert "Traceback" not in result.stderr
    assert not missing.parent.exists(), "a replay must not create the cassette it could not find"

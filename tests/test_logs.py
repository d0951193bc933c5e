"""Logs: one JSON event per exchange, recorded or replayed, and the writer that batches them."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import select
import signal
import socket
import time
from pathlib import Path
from typing import Any

from proxy.logs import FLUSH_BYTES, FLUSH_DELAY_S, LineWriter, logging_to
from tests.support.clients import sync_client
from tests.support.fake_openai import FakeOpenAI
from tests.support.proxies import ProxyProcess, free_port

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "log me"}]}


def _serve(mode: str, upstream: str, cassette: Path, workdir: Path) -> ProxyProcess:
    port = free_port()
    proc = ProxyProcess(
        [
            "serve", "--mode", mode, "--upstream", upstream, "--cassette", str(cassette),
            "--port", str(port), "--log-format", "json",
        ],
        workdir,
        port,
    )  # fmt: skip
    proc.wait_healthy()
    return proc


def _exchange_events(proc: ProxyProcess) -> list[dict[str, Any]]:
    """Stop the proxy (SIGTERM: everything flushed) and parse its stderr, which must be JSON lines."""
    proc.process.send_signal(signal.SIGTERM)
    assert proc.process.wait(30) == 0
    lines = [json.loads(line) for line in proc.stderr().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == "exchange"]


def test_each_exchange_logs_one_json_event_recorded_and_replayed(
    upstream: FakeOpenAI, cassette: Path, api_key: str, tmp_path: Path
) -> None:
    recorder = _serve("record", upstream.url, cassette, tmp_path)
    try:
        with sync_client(recorder.base_url, api_key, max_retries=0) as client:
            client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
            stream = client.chat.completions.create(  # type: ignore[call-overload]
                **CHAT, stream=True, stream_options={"include_usage": True}
            )
            assert list(stream)[-1].usage is not None  # read to the end, as clients do
        recorded = _exchange_events(recorder)
    finally:
        recorder.kill()
    replayer = _serve("replay", upstream.url, cassette, tmp_path)
    try:
        with sync_client(replayer.base_url, api_key, max_retries=0) as client:
            client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
        replayed = _exchange_events(replayer)
    finally:
        replayer.kill()

    assert [(e["source"], e["mode"], e["stream"]) for e in recorded] == [
        ("recorded", "record", False),
        ("recorded", "record", True),
    ]
    assert [(e["source"], e["mode"], e["id"]) for e in replayed] == [("replayed", "replay", 1)]
    # Each event is stamped with when its exchange ended, however late its line was written.
    assert recorded[0]["timestamp"] <= recorded[1]["timestamp"] < replayed[0]["timestamp"]
    for event in recorded + replayed:
        assert event["level"] == "info" and event["timestamp"].endswith("Z")
        assert (event["method"], event["path"], event["status"]) == (
            "POST",
            "/v1/chat/completions",
            200,
        )
        assert event["model"].startswith("gpt-4o-mini")
        assert event["input_tokens"] > 0 and event["output_tokens"] > 0, (event, recorded, replayed)
        assert event["ms"] >= 0
        # The key's fingerprint, never the key.
        assert event["key"] and event["key"] != api_key and api_key[8:] not in event["key"]
    assert all(event["ttfb_ms"] >= 0 for event in recorded)  # a replay's own TTFB is its ms
    assert api_key not in recorder.stderr() + replayer.stderr()


def test_auto_mode_replays_of_a_fresh_recording_log_its_model_and_tokens(
    upstream: FakeOpenAI, cassette: Path, api_key: str, tmp_path: Path
) -> None:
    proxy = _serve("auto", upstream.url, cassette, tmp_path)
    try:
        with sync_client(proxy.base_url, api_key, max_retries=0) as client:
            client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
            # Replayed at once: the writer (which decodes the typed columns) has not run yet.
            client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
            time.sleep(0.5)  # written by now
            client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
        events = _exchange_events(proxy)
    finally:
        proxy.kill()
    # The recording's line comes once it is written: before or after the first replay's.
    assert sorted(e["source"] for e in events) == ["recorded", "replayed", "replayed"]
    (recorded,) = [e for e in events if e["source"] == "recorded"]
    later = events[-1]
    assert later["source"] == "replayed"
    assert recorded["model"].startswith("gpt-4o-mini") and recorded["input_tokens"] > 0
    assert (later["model"], later["input_tokens"], later["output_tokens"]) == (
        recorded["model"],
        recorded["input_tokens"],
        recorded["output_tokens"],
    )


def test_a_malformed_request_is_one_json_log_line_not_a_traceback(
    upstream: FakeOpenAI, cassette: Path, tmp_path: Path
) -> None:
    # aiohttp logs it through `logging`; a JSON log must stay one object per line.
    proxy = _serve("record", upstream.url, cassette, tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
            conn.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
            assert conn.recv(100).startswith(b"HTTP/1.0 400")
        proxy.process.send_signal(signal.SIGTERM)
        assert proxy.process.wait(30) == 0
        lines = [json.loads(line) for line in proxy.stderr().splitlines() if line.strip()]
    finally:
        proxy.kill()
    (bad,) = [line for line in lines if line.get("logger") == "aiohttp.server"]
    assert bad["level"] == "warning" and "BadHttpMessage" in bad["error"]
    assert "traceback" not in bad
    assert upstream.request_count == 0


def _read_all(fd: int) -> list[bytes]:
    """Every chunk readable from the pipe now (writes that are already there come out as one)."""
    chunks = []
    while select.select([fd], [], [], 0)[0]:
        chunks.append(os.read(fd, 1 << 20))
    return chunks


def test_info_lines_wait_to_share_a_write_and_warnings_go_out_at_once_in_order() -> None:
    read_end, write_end = os.pipe()
    # Room for more than FLUSH_BYTES, so the writer never blocks on a reader that is this test.
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4 * FLUSH_BYTES)
    try:
        with os.fdopen(write_end, "w", closefd=False) as stream:
            writer = LineWriter(stream)

            async def held_then_flushed() -> list[bytes]:
                for i in range(3):
                    writer.info(b'{"n": %d}' % i)
                await asyncio.sleep(0)
                assert _read_all(read_end) == []  # held past the loop iteration
                # The flush timer is due before this sleep ends: timers run in deadline order.
                await asyncio.sleep(FLUSH_DELAY_S * 2)
                return _read_all(read_end)

            assert asyncio.run(held_then_flushed()) == [b'{"n": 0}\n{"n": 1}\n{"n": 2}\n']

            async def warning_after_infos() -> list[bytes]:
                writer.info(b"first")
                writer.warning(b"second")
                return _read_all(read_end)

            assert asyncio.run(warning_after_infos()) == [b"first\nsecond\n"]

            async def many() -> bytes:
                # More than FLUSH_BYTES pending: written without waiting, in PIPE_BUF pieces.
                lines = FLUSH_BYTES // 200 + 1
                for i in range(lines):
                    writer.info(b"%04d" % i + b"x" * 196)
                return b"".join(_read_all(read_end))

            data = asyncio.run(many())
            count = FLUSH_BYTES // 200 + 1
            assert data.split(b"\n")[:-1] == [b"%04d" % i + b"x" * 196 for i in range(count)]

            writer.info(b"outside a loop")  # no loop: written at once
            assert _read_all(read_end) == [b"outside a loop\n"]
    finally:
        os.close(read_end)
        os.close(write_end)


def test_info_lines_still_held_when_the_block_ends_are_written(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    with out.open("w") as stream:

        async def one_event() -> None:
            with logging_to("json", "info", stream) as log:
                log.info("exchange", n=1)
                # The loop ends here, before the flush timer could fire.

        asyncio.run(one_event())
    assert [json.loads(line)["event"] for line in out.read_text().splitlines()] == ["exchange"]

"""Matching and replay order: identical requests replay their recordings in order, a miss fails
loudly (not retried, upstream untouched) and names the field that differed."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import openai
import pytest

from tests.support.clients import HttpLog, sync_client
from tests.support.fake_openai import FakeOpenAI
from tests.support.loop_thread import LoopThread
from tests.support.proxies import ProxyFactory, query

QUESTION = [{"role": "user", "content": "the same question"}]


def ask(client: openai.OpenAI, messages: list[dict[str, str]] = QUESTION) -> str:
    completion = client.chat.completions.create(model="counter", messages=messages)
    return completion.choices[0].message.content or ""


def record_three(upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str) -> None:
    recorder = proxies.start("record", upstream.url, cassette)
    with sync_client(recorder.base_url, api_key) as client:
        assert [ask(client) for _ in range(3)] == ["answer 1", "answer 2", "answer 3"]
    recorder.stop()
    assert upstream.request_count == 3
    keys = query(cassette, "SELECT DISTINCT match_key FROM exchanges")
    assert len(keys) == 1, "identical requests should share one match key"


def test_identical_requests_replay_in_recorded_order_then_repeat_last(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    record_three(upstream, proxies, cassette, api_key)
    # The upstream stays up: anything forwarded would reach it and get "answer 4".
    replayer = proxies.start("replay", upstream.url, cassette)
    log = HttpLog()
    with sync_client(replayer.base_url, api_key, log=log) as client:
        answers = [ask(client) for _ in range(4)]
    assert answers == ["answer 1", "answer 2", "answer 3", "answer 3"]
    assert upstream.request_count == 3
    assert log.sources() == {"replayed"}


def test_a_miss_is_a_400_naming_the_differing_field_and_is_not_retried(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    record_three(upstream, proxies, cassette, api_key)
    replayer = proxies.start("replay", upstream.url, cassette)
    log = HttpLog()
    changed = [{"role": "user", "content": "a different question"}]
    # Default max_retries=2: a retryable answer would show up as three requests.
    with sync_client(replayer.base_url, api_key, log=log) as client:
        with pytest.raises(openai.BadRequestError) as info:
            ask(client, changed)
        assert ask(client) == "answer 1", "a miss must not consume a recording"
    error = info.value
    assert error.status_code == 400
    assert isinstance(error.body, dict)
    assert error.body["type"] == "cassette_miss" and error.body["code"] == "cassette_miss"
    message = error.body["message"]
    assert "body.messages[0].content" in message
    assert '"a different question"' in message and '"the same question"' in message
    assert log.requests == 2
    miss = log.responses[0]
    assert miss.status == 400 and miss.headers.get("x-should-retry") == "false"
    assert upstream.request_count == 3, "a miss in replay mode must never reach the upstream"


def test_repeat_error_policy_turns_an_extra_call_into_a_miss(
    tmp_path: Path, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    record_three(upstream, proxies, cassette, api_key)
    config = tmp_path / "strict.toml"
    config.write_text('[replay]\nrepeat = "error"\n')
    replayer = proxies.start("replay", upstream.url, cassette, config_file=config)
    with sync_client(replayer.base_url, api_key) as client:
        assert [ask(client) for _ in range(3)] == ["answer 1", "answer 2", "answer 3"]
        with pytest.raises(openai.BadRequestError) as info:
            ask(client)
    assert "already replayed" in info.value.message
    assert upstream.request_count == 3


def test_a_miss_on_a_request_recorded_unreplayable_says_so(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = proxies.start("record", upstream.url, cassette)
    with sync_client(recorder.base_url, api_key) as client:
        assert ask(client) == "answer 1"
    recorder.stop()
    # The same cassette, recorded again while the upstream is unreachable: the proxy's own 502
    # is stored, and no replay serves it.
    recorder = proxies.start("record", "http://127.0.0.1:9", cassette)
    down = [{"role": "user", "content": "asked while the upstream was down"}]
    with (
        sync_client(recorder.base_url, api_key, max_retries=0) as client,
        pytest.raises(openai.InternalServerError),
    ):
        ask(client, down)
    recorder.stop()

    replayer = proxies.start("replay", upstream.url, cassette)
    with (
        sync_client(replayer.base_url, api_key) as client,
        pytest.raises(openai.BadRequestError) as info,
    ):
        ask(client, down)
    # Not "nearest is exchange #1: messages[0].content differs", which the user never changed.
    message = info.value.message
    assert "as exchange #2" in message
    assert "cannot be replayed: it ended upstream_unreachable" in message
    assert "messages[0].content" not in message
    assert upstream.request_count == 1


def test_json_bodies_match_by_value_not_bytes(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    record_three(upstream, proxies, cassette, api_key)
    replayer = proxies.start("replay", upstream.url, cassette)
    # The same request as the SDK sent, but keys reordered and pretty-printed.
    sent = json.loads(upstream.requests[0].body)
    reordered = json.dumps(dict(reversed(list(sent.items()))), indent=2).encode()
    assert reordered != upstream.requests[0].body
    response = httpx2.post(
        replayer.base_url + "/chat/completions",
        content=reordered,
        headers={"authorization": f"Bearer {api_key}", "content-type": "application/json"},
        trust_env=False,
    )
    assert response.status_code == 200
    assert response.headers["x-cassette-proxy"] == "replayed"
    assert response.json()["choices"][0]["message"]["content"] == "answer 1"


def test_multipart_uploads_match_by_fields_and_file_digest(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    """The SDK picks a random multipart boundary per request: matching must not depend on it,
    but must depend on the file's bytes."""
    audio = b"\x00\x01fake-wav" * 300
    recorder = proxies.start("record", upstream.url, cassette)
    with sync_client(recorder.base_url, api_key) as client:
        recorded = client.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", audio, "audio/wav")
        ).text
    recorder.stop()
    bodies = [r.body for r in upstream.requests]
    replayer = proxies.start("replay", upstream.url, cassette)
    with sync_client(replayer.base_url, api_key) as client:
        again = client.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", audio, "audio/wav")
        ).text
        with pytest.raises(openai.BadRequestError) as info:
            client.audio.transcriptions.create(
                model="whisper-1", file=("a.wav", audio + b"!", "audio/wav")
            )
    assert again == recorded
    assert upstream.request_count == 1 and len(bodies) == 1
    assert "multipart" in info.value.message and info.value.code == "cassette_miss"


def test_sdk_retries_are_recorded_and_replayed_in_order(
    servers: LoopThread, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    """With retries on (the SDK default), a 500 is recorded three times and replayed three times."""
    upstream.retry_after_ms = 1  # the SDK honours retry-after-ms: no multi-second back-off
    recorder = proxies.start("record", upstream.url, cassette)
    log = HttpLog()
    with (
        sync_client(recorder.base_url, api_key, log=log) as client,
        pytest.raises(openai.InternalServerError) as recorded,
    ):
        client.chat.completions.create(model="server-error", messages=QUESTION)
    assert upstream.request_count == 3 and log.requests == 3
    servers.run(upstream.stop())
    recorder.stop()
    rows = query(cassette, "SELECT status, upstream_request_id FROM exchanges ORDER BY id")
    assert [status for status, _ in rows] == [500, 500, 500]
    assert len({request_id for _, request_id in rows}) == 3

    replayer = proxies.start("replay", upstream.url, cassette)
    replay_log = HttpLog()
    with (
        sync_client(replayer.base_url, api_key, log=replay_log) as client,
        pytest.raises(openai.InternalServerError) as replayed,
    ):
        client.chat.completions.create(model="server-error", messages=QUESTION)
    assert replay_log.requests == 3 and replay_log.sources() == {"replayed"}
    assert [r.headers["x-request-id"] for r in replay_log.responses] == [
        r.headers["x-request-id"] for r in log.responses
    ]
    assert (replayed.value.status_code, str(replayed.value), replayed.value.request_id) == (
        recorded.value.status_code,
        str(recorded.value),
        recorded.value.request_id,
    )
    assert upstream.request_count == 3

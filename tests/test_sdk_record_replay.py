"""The official SDK, sync and async, through the proxy: record against the fake upstream, then replay
from the cassette with the upstream gone. What the SDK sees must be identical both times.

What "the SDK sees" is captured as data: parsed objects (model_dump), request ids, every stream event,
exception class + status + message + body, and digests of binary bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai

from tests.support.clients import HttpLog, async_client, sync_client
from tests.support.fake_openai import EMBEDDING_DIMENSIONS, FakeOpenAI, fake_mp3
from tests.support.loop_thread import LoopThread
from tests.support.proxies import ProxyFactory, query

CHAT_MODEL = "gpt-4o-mini"
MESSAGES = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is a cassette proxy?"},
]
STREAM_MESSAGES = [{"role": "user", "content": "Stream me a short answer, please"}]
TOOL_MESSAGES = [{"role": "user", "content": "Weather in Lisbon tomorrow"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_weather",
            "description": "Look up a forecast",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "limit": {"type": "integer"},
                    "tag": {"type": "string"},
                },
                "required": ["query"],
            },
        },
    }
]
EMBED_INPUT = ["alpha particle", "beta decay", "gamma ray"]
SPEECH = {"model": "tts-1", "voice": "alloy", "input": "Cassettes remember everything."}
AUDIO_FILE = bytes(range(256)) * 23 + b"RIFF-tail"
UPLOAD = b'{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions"}\n' * 20

# Calls that reach the upstream once each when recording (no retries: errors use max_retries=0).
EXPECTED_UPSTREAM_CALLS = 16


def parsed(obj: Any) -> dict[str, Any]:
    return {"data": obj.model_dump(mode="json"), "request_id": obj._request_id}


def status_error(exc: openai.APIStatusError) -> dict[str, Any]:
    return {
        "class": type(exc).__name__,
        "status": exc.status_code,
        "message": str(exc),
        "body": exc.body,
        "request_id": exc.request_id,
    }


def stream_seen(events: list[Any], response: Any) -> dict[str, Any]:
    return {
        "events": [e.model_dump(mode="json") for e in events],
        "status": response.status_code,
        "content_type": response.headers.get("content-type"),
        "request_id": response.headers.get("x-request-id"),
    }


def binary_seen(data: bytes, response: Any) -> dict[str, Any]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "content_type": response.headers.get("content-type"),
        "request_id": response.headers.get("x-request-id"),
    }


def page_seen(page: Any) -> dict[str, Any]:
    return {"data": [m.model_dump(mode="json") for m in page.data]}


# ------------------------------------------------------------------------------------------------
# The same calls, made with the sync and with the async client.


def observe_sync(client: openai.OpenAI) -> dict[str, Any]:
    chat = client.chat.completions
    no_retry = client.with_options(max_retries=0)

    def chat_stream() -> dict[str, Any]:
        with chat.create(
            model=CHAT_MODEL,
            messages=STREAM_MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        ) as stream:
            return stream_seen(list(stream), stream.response)

    def tools_stream() -> dict[str, Any]:
        with chat.create(
            model=CHAT_MODEL, messages=TOOL_MESSAGES, tools=TOOLS, stream=True
        ) as stream:
            return stream_seen(list(stream), stream.response)

    def responses_stream() -> dict[str, Any]:
        with client.responses.create(model="gpt-4.1", input="Count to five", stream=True) as stream:
            return stream_seen(list(stream), stream.response)

    def speech() -> dict[str, Any]:
        content = client.audio.speech.create(**SPEECH)
        return binary_seen(content.read(), content.response)

    calls: dict[str, Callable[[], Any]] = {
        "chat": lambda: parsed(chat.create(model=CHAT_MODEL, messages=MESSAGES)),
        "chat_stream": chat_stream,
        "tools": lambda: parsed(chat.create(model=CHAT_MODEL, messages=TOOL_MESSAGES, tools=TOOLS)),
        "tools_stream": tools_stream,
        "responses": lambda: parsed(
            client.responses.create(model="gpt-4.1", input="Name a colour")
        ),
        "responses_stream": responses_stream,
        "embeddings_base64": lambda: parsed(
            client.embeddings.create(model="text-embedding-3-small", input=EMBED_INPUT)
        ),
        "embeddings_float": lambda: parsed(
            client.embeddings.create(
                model="text-embedding-3-small", input=EMBED_INPUT, encoding_format="float"
            )
        ),
        "models": lambda: page_seen(client.models.list()),
        "model": lambda: parsed(client.models.retrieve("gpt-4o-mini")),
        "speech": speech,
        "transcription": lambda: parsed(
            client.audio.transcriptions.create(
                model="whisper-1", file=("clip.wav", AUDIO_FILE, "audio/wav")
            )
        ),
        "file": lambda: parsed(
            client.files.create(file=("batch.jsonl", UPLOAD, "application/jsonl"), purpose="batch")
        ),
        "not_found": lambda: no_retry.models.retrieve("does-not-exist"),
        "rate_limited": lambda: no_retry.chat.completions.create(
            model="rate-limited", messages=MESSAGES
        ),
        "server_error": lambda: no_retry.chat.completions.create(
            model="server-error", messages=MESSAGES
        ),
    }
    seen: dict[str, Any] = {}
    for name, call in calls.items():
        try:
            seen[name] = call()
        except openai.APIStatusError as exc:  # kept as data: replay must raise the same
            seen[name] = status_error(exc)
    return seen


async def observe_async(client: openai.AsyncOpenAI) -> dict[str, Any]:
    chat = client.chat.completions
    no_retry = client.with_options(max_retries=0)

    async def chat_plain() -> dict[str, Any]:
        return parsed(await chat.create(model=CHAT_MODEL, messages=MESSAGES))

    async def chat_stream() -> dict[str, Any]:
        async with await chat.create(
            model=CHAT_MODEL,
            messages=STREAM_MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        ) as stream:
            return stream_seen([e async for e in stream], stream.response)

    async def tools() -> dict[str, Any]:
        return parsed(await chat.create(model=CHAT_MODEL, messages=TOOL_MESSAGES, tools=TOOLS))

    async def tools_stream() -> dict[str, Any]:
        async with await chat.create(
            model=CHAT_MODEL, messages=TOOL_MESSAGES, tools=TOOLS, stream=True
        ) as stream:
            return stream_seen([e async for e in stream], stream.response)

    async def responses() -> dict[str, Any]:
        return parsed(await client.responses.create(model="gpt-4.1", input="Name a colour"))

    async def responses_stream() -> dict[str, Any]:
        async with await client.responses.create(
            model="gpt-4.1", input="Count to five", stream=True
        ) as stream:
            return stream_seen([e async for e in stream], stream.response)

    async def embeddings_base64() -> dict[str, Any]:
        return parsed(
            await client.embeddings.create(model="text-embedding-3-small", input=EMBED_INPUT)
        )

    async def embeddings_float() -> dict[str, Any]:
        return parsed(
            await client.embeddings.create(
                model="text-embedding-3-small", input=EMBED_INPUT, encoding_format="float"
            )
        )

    async def models() -> dict[str, Any]:
        return page_seen(await client.models.list())

    async def model() -> dict[str, Any]:
        return parsed(await client.models.retrieve("gpt-4o-mini"))

    async def speech() -> dict[str, Any]:
        content = await client.audio.speech.create(**SPEECH)
        return binary_seen(await content.aread(), content.response)

    async def transcription() -> dict[str, Any]:
        return parsed(
            await client.audio.transcriptions.create(
                model="whisper-1", file=("clip.wav", AUDIO_FILE, "audio/wav")
            )
        )

    async def file() -> dict[str, Any]:
        return parsed(
            await client.files.create(
                file=("batch.jsonl", UPLOAD, "application/jsonl"), purpose="batch"
            )
        )

    async def not_found() -> Any:
        return await no_retry.models.retrieve("does-not-exist")

    async def rate_limited() -> Any:
        return await no_retry.chat.completions.create(model="rate-limited", messages=MESSAGES)

    async def server_error() -> Any:
        return await no_retry.chat.completions.create(model="server-error", messages=MESSAGES)

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "chat": chat_plain,
        "chat_stream": chat_stream,
        "tools": tools,
        "tools_stream": tools_stream,
        "responses": responses,
        "responses_stream": responses_stream,
        "embeddings_base64": embeddings_base64,
        "embeddings_float": embeddings_float,
        "models": models,
        "model": model,
        "speech": speech,
        "transcription": transcription,
        "file": file,
        "not_found": not_found,
        "rate_limited": rate_limited,
        "server_error": server_error,
    }
    seen: dict[str, Any] = {}
    for name, call in calls.items():
        try:
            seen[name] = await call()
        except openai.APIStatusError as exc:  # kept as data: replay must raise the same
            seen[name] = status_error(exc)
    return seen


# ------------------------------------------------------------------------------------------------
# What a correct recording looks like to the SDK (so that "replay == record" is not vacuous).


def check_recorded(seen: dict[str, Any], upstream: FakeOpenAI) -> None:
    chat = seen["chat"]["data"]
    assert chat["choices"][0]["message"]["content"].startswith(
        "You said: What is a cassette proxy? ["
    )
    usage = chat["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == usage["prompt_tokens"] // 2 > 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 2

    stream = seen["chat_stream"]
    assert stream["status"] == 200 and stream["content_type"].startswith("text/event-stream")
    events = stream["events"]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text.startswith("You said: Stream me a short answer, please [")
    assert events[-1]["choices"] == [] and events[-1]["usage"]["total_tokens"] > 0
    assert events[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    assert all(e["usage"] is None for e in events[:-1])

    call = seen["tools"]["data"]["choices"][0]
    assert call["finish_reason"] == "tool_calls"
    function = call["message"]["tool_calls"][0]["function"]
    assert function["name"] == "lookup_weather"
    arguments = json.loads(function["arguments"])
    assert arguments["query"] == "Weather in Lisbon tomorrow"

    pieces = [
        tc["function"]["arguments"]
        for e in seen["tools_stream"]["events"]
        for tc in (e["choices"][0]["delta"].get("tool_calls") or [])
    ]
    assert len([p for p in pieces if p]) >= 4, "tool-call arguments should arrive in several deltas"
    assert "".join(pieces) == function["arguments"]

    response = seen["responses"]["data"]
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"].startswith("Response to: Name a colour [")
    assert response["usage"]["output_tokens_details"]["reasoning_tokens"] == 3
    types = [e["type"] for e in seen["responses_stream"]["events"]]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert types.count("response.output_text.delta") >= 3
    assert "response.output_text.done" in types
    stream_events = seen["responses_stream"]["events"]
    deltas = "".join(e["delta"] for e in stream_events if e["type"].endswith(".delta"))
    completed = stream_events[-1]["response"]
    assert deltas == completed["output"][0]["content"][0]["text"]
    assert completed["usage"]["input_tokens_details"]["cached_tokens"] > 0

    # The SDK asked for base64 by default and decoded it: same floats as the float format.
    decoded = [d["embedding"] for d in seen["embeddings_base64"]["data"]["data"]]
    floats = [d["embedding"] for d in seen["embeddings_float"]["data"]["data"]]
    assert len(decoded) == len(EMBED_INPUT) and all(len(v) == EMBEDDING_DIMENSIONS for v in decoded)
    assert decoded == floats
    sent = [json.loads(r.body) for r in upstream.requests if r.path == "/v1/embeddings"]
    assert [s.get("encoding_format") for s in sent] == ["base64", "float"]

    assert [m["id"] for m in seen["models"]["data"]][:2] == ["gpt-4o-mini", "gpt-4.1"]
    assert seen["model"]["data"]["id"] == "gpt-4o-mini"

    mp3 = fake_mp3(SPEECH["input"], SPEECH["voice"])
    assert seen["speech"]["sha256"] == hashlib.sha256(mp3).hexdigest()
    assert seen["speech"]["content_type"] == "audio/mpeg"

    audio_digest = hashlib.sha256(AUDIO_FILE).hexdigest()[:16]
    assert seen["transcription"]["data"]["text"].startswith(f"transcript {audio_digest} ")
    upload = seen["file"]["data"]
    assert upload["id"] == "file-" + hashlib.sha256(UPLOAD).hexdigest()[:24]
    assert upload["bytes"] == len(UPLOAD) and upload["purpose"] == "batch"
    assert upload["filename"] == "batch.jsonl"

    assert (seen["not_found"]["class"], seen["not_found"]["status"]) == ("NotFoundError", 404)
    assert seen["not_found"]["body"]["code"] == "model_not_found"
    assert "does-not-exist" in seen["not_found"]["message"]
    assert (seen["rate_limited"]["class"], seen["rate_limited"]["status"]) == (
        "RateLimitError",
        429,
    )
    assert seen["rate_limited"]["body"]["code"] == "rate_limit_exceeded"
    assert (seen["server_error"]["class"], seen["server_error"]["status"]) == (
        "InternalServerError",
        500,
    )
    assert seen["server_error"]["body"]["type"] == "server_error"

    # Every answer carried the upstream's request id, one per response.
    ids = [
        (v.get("request_id") or "")
        for v in seen.values()
        if isinstance(v, dict) and "request_id" in v
    ]
    assert len(ids) == EXPECTED_UPSTREAM_CALLS - 1  # models.list keeps no id in what we capture
    assert all(i.startswith("req_") for i in ids)
    assert len(set(ids)) == len(ids)


def assert_same(replayed: dict[str, Any], recorded: dict[str, Any]) -> None:
    """Every call's result identical; on failure, list every call that differs and how."""
    assert replayed.keys() == recorded.keys()
    differing = {
        name: {"recorded": recorded[name], "replayed": replayed[name]}
        for name in recorded
        if replayed[name] != recorded[name]
    }
    assert not differing, (
        "replay differs from the recording for: "
        + json.dumps(differing, indent=1, default=str)[:6000]
    )


def check_cassette(path: Path) -> None:
    rows = query(
        path,
        "SELECT path, status, stream, complete, content_encoding, response_body, response_headers"
        " FROM exchanges ORDER BY id",
    )
    assert len(rows) == EXPECTED_UPSTREAM_CALLS
    assert all(row[3] == 1 for row in rows)
    assert sum(row[2] for row in rows) == 3
    assert sorted(row[1] for row in rows if row[1] != 200) == [404, 429, 500]
    # The upstream gzipped its JSON answers; the cassette keeps them decoded, to read and replay.
    json_rows = [row for row in rows if '"application/json"' in row[6]]
    assert len(json_rows) == EXPECTED_UPSTREAM_CALLS - 4  # not the 3 streams nor the mp3
    for _, _, _, _, encoding, body, _ in json_rows:
        assert encoding is None
        assert isinstance(json.loads(body), dict)


def check_gzip_seen(log: HttpLog) -> None:
    """The recording client got the upstream's bytes untouched: gzip, as the upstream sent them."""
    encodings = [
        r.headers.get("content-encoding")
        for r in log.responses
        if r.headers.get("content-type") == "application/json"
    ]
    assert encodings and set(encodings) == {"gzip"}


# ------------------------------------------------------------------------------------------------


def test_sync_client_records_then_replays_identically(
    servers: LoopThread, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = proxies.start("record", upstream.url, cassette)
    log = HttpLog()
    with sync_client(recorder.base_url, api_key, log=log) as client:
        recorded = observe_sync(client)
    check_recorded(recorded, upstream)
    assert upstream.request_count == EXPECTED_UPSTREAM_CALLS
    assert upstream.bearer_tokens == {api_key}
    assert log.sources() == {"recorded"}
    check_gzip_seen(log)

    servers.run(upstream.stop())
    recorder.stop()
    check_cassette(cassette)

    replayer = proxies.start("replay", upstream.url, cassette)
    replay_log = HttpLog()
    with sync_client(replayer.base_url, api_key, log=replay_log) as client:
        replayed = observe_sync(client)
    assert_same(replayed, recorded)
    assert upstream.request_count == EXPECTED_UPSTREAM_CALLS
    assert replay_log.requests == log.requests == EXPECTED_UPSTREAM_CALLS
    assert replay_log.sources() == {"replayed"}


async def test_async_client_records_then_replays_identically(
    servers: LoopThread, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = await proxies.astart("record", upstream.url, cassette)
    log = HttpLog()
    async with async_client(recorder.base_url, api_key, log=log) as client:
        recorded = await observe_async(client)
    check_recorded(recorded, upstream)
    assert upstream.request_count == EXPECTED_UPSTREAM_CALLS
    assert log.sources() == {"recorded"}
    check_gzip_seen(log)

    await servers.arun(upstream.stop())
    await recorder.astop()
    check_cassette(cassette)

    replayer = await proxies.astart("replay", upstream.url, cassette)
    replay_log = HttpLog()
    async with async_client(replayer.base_url, api_key, log=replay_log) as client:
        replayed = await observe_async(client)
    assert_same(replayed, recorded)
    assert upstream.request_count == EXPECTED_UPSTREAM_CALLS
    assert replay_log.requests == log.requests == EXPECTED_UPSTREAM_CALLS
    assert replay_log.sources() == {"replayed"}


async def test_concurrent_streams_record_and_replay(
    servers: LoopThread, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    prompts = [f"stream number {i}: tell me about the number {i * 7}" for i in range(24)]

    async def one(client: openai.AsyncOpenAI, prompt: str) -> dict[str, Any]:
        stream = await client.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage, ids = [], None, set()
        async for chunk in stream:
            ids.add(chunk.id)
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
            if chunk.usage is not None:
                usage = chunk.usage.model_dump(mode="json")
        return {
            "text": "".join(text),
            "usage": usage,
            "ids": ids,
            "request_id": stream.response.headers.get("x-request-id"),
            "source": stream.response.headers.get("x-cassette-proxy"),
        }

    async def all_streams(base_url: str) -> list[dict[str, Any]]:
        async with async_client(base_url, api_key) as client:
            return await asyncio.gather(*(one(client, p) for p in prompts))

    recorder = await proxies.astart("record", upstream.url, cassette)
    recorded = await all_streams(recorder.base_url)
    assert upstream.request_count == len(prompts)
    for prompt, seen in zip(prompts, recorded, strict=True):
        assert seen["text"].startswith(f"You said: {prompt} [")
        assert seen["usage"] is not None and seen["usage"]["completion_tokens"] > 0
        assert len(seen["ids"]) == 1 and seen["source"] == "recorded"
    assert len({s["text"] for s in recorded}) == len(prompts)
    assert len({s["request_id"] for s in recorded}) == len(prompts)

    await servers.arun(upstream.stop())
    await recorder.astop()
    rows = query(cassette, "SELECT COUNT(*) FROM exchanges WHERE complete = 1 AND stream = 1")
    assert rows == [(len(prompts),)]

    replayer = await proxies.astart("replay", upstream.url, cassette)
    replayed = await all_streams(replayer.base_url)
    assert upstream.request_count == len(prompts)
    for before, after in zip(recorded, replayed, strict=True):
        assert after["source"] == "replayed"
        assert {k: v for k, v in after.items() if k != "source"} == {
            k: v for k, v in before.items() if k != "source"
        }

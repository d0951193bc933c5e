"""The typed view: route resolution and typed columns, over the real corpus and exact examples."""

from __future__ import annotations

import hashlib

from proxy.decode import RouteTable, TypedView
from proxy.exchange import Exchange
from proxy.media import BinaryBody, TextBody
from proxy.schemas.routes import ROUTES
from proxy.sse import SseEvent, SseSplitter, is_event_stream
from tests.support.corpus import CorpusExchange, load_corpus
from tests.support.exchanges import stored_exchange


def as_exchange(record: CorpusExchange) -> Exchange:
    body = record.response.body_bytes()
    stream = is_event_stream(record.response.headers.get("content-type"))
    return Exchange(
        id=1,
        started_at=0.0,
        method=record.request.method,
        path=record.request.path,
        query=record.request.query,
        request_headers=list(record.request.headers.items()),
        request_body=record.request.body_bytes(),
        match_key="",
        status=record.response.status,
        response_headers=list(record.response.headers.items()),
        response_body=b"" if stream else body,
        stream=stream,
        events=[SseEvent(0.0, raw) for raw in SseSplitter().feed(body)] if stream else [],
    )


def test_every_corpus_exchange_resolves_and_decodes_without_notes() -> None:
    view = TypedView()
    failures: list[str] = []
    with_tokens = errors = 0
    for record in load_corpus():
        exchange = as_exchange(record)
        view.describe(exchange)
        if exchange.endpoint is None:
            failures.append(
                f"{record.id}: no route for {record.request.method} {record.request.path}"
            )
        failures += [f"{record.id}: {note}" for note in exchange.notes]
        with_tokens += exchange.usage.input_tokens is not None
        if record.response.status >= 400:
            errors += 1
            assert exchange.usage.error_type is not None, record.id
    assert not failures, "\n".join(failures[:30])
    assert errors == 60
    assert with_tokens >= 120  # chat, Responses and embeddings report usage


def test_route_table_prefers_literal_segments_and_maps_azure_paths() -> None:
    table = RouteTable(ROUTES)
    cases = {
        ("POST", "/v1/responses/compact"): "/v1/responses/compact",
        ("GET", "/v1/responses/resp_123"): "/v1/responses/{response_id}",
        ("POST", "/v1/threads/runs"): "/v1/threads/runs",
        ("POST", "/v1/threads/thread_1/runs"): "/v1/threads/{thread_id}/runs",
        ("POST", "/openai/deployments/my-gpt/chat/completions"): "/v1/chat/completions",
        ("GET", "/v1/models/gpt-4o"): "/v1/models/{model}",
    }
    for (method, path), template in cases.items():
        resolved = table.resolve(method, path)
        assert resolved is not None and resolved.template == template, (method, path)
    assert table.resolve("GET", "/v1/no/such/thing/here/at/all") is None


def _exchange(path: str, request: bytes, status: int, body: bytes, events: list[bytes]) -> Exchange:
    return stored_exchange(path, request, status=status, body=body, events=events)


def test_chat_stream_usage_chunk_fills_typed_columns() -> None:
    events = [
        b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06",'
        b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n',
        b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06",'
        b'"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
        b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[],'
        b'"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,'
        b'"prompt_tokens_details":{"cached_tokens":0},'
        b'"completion_tokens_details":{"reasoning_tokens":3}}}\r\n\r\n',
        b"data: [DONE]\n\n",
    ]
    exchange = _exchange(
        "/v1/chat/completions", b'{"model":"gpt-4o","messages":[],"stream":true}', 200, b"", events
    )
    TypedView().describe(exchange)
    usage = exchange.usage
    assert exchange.notes == []
    assert (usage.model, usage.input_tokens, usage.output_tokens) == ("gpt-4o-2024-08-06", 11, 7)
    assert (usage.cached_tokens, usage.reasoning_tokens) == (0, 3)
    assert usage.finish_reason == "tool_calls"


def test_responses_completed_event_and_error_body() -> None:
    completed = (
        b'event: response.completed\ndata: {"type":"response.completed","sequence_number":5,'
        b'"response":{"id":"resp_1","object":"response","model":"gpt-5","status":"completed",'
        b'"output":[],"usage":{"input_tokens":40,"input_tokens_details":{"cached_tokens":32},'
        b'"output_tokens":9,"output_tokens_details":{"reasoning_tokens":4},"total_tokens":49}}}\n\n'
    )
    exchange = _exchange("/v1/responses", b'{"model":"gpt-5","stream":true}', 200, b"", [completed])
    TypedView().describe(exchange)
    usage = exchange.usage
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens) == (40, 32, 9)
    assert (usage.reasoning_tokens, usage.finish_reason, usage.model) == (4, "completed", "gpt-5")

    error = _exchange(
        "/v1/embeddings",
        b'{"model":"text-embedding-3-small","input":"x"}',
        429,
        b'{"error":{"message":"slow down","type":"requests","param":null,'
        b'"code":"rate_limit_exceeded"}}',
        [],
    )
    TypedView().describe(error)
    assert (error.usage.error_type, error.usage.error_code) == ("requests", "rate_limit_exceeded")
    assert error.usage.model == "text-embedding-3-small"


def test_errors_inside_a_200_stream_and_a_numeric_error_code_fill_the_error_columns() -> None:
    # A Responses `error` event carries its code at the top; a chat stream may send a chunk that
    # is an error object (the SDKs raise it); vLLM's error bodies have an integer code.
    responses = _exchange(
        "/v1/responses",
        b'{"model":"gpt-5","stream":true}',
        200,
        b"",
        [
            b'event: error\ndata: {"type":"error","sequence_number":1,"code":"server_error",'
            b'"message":"The model failed.","param":null}\n\n'
        ],
    )
    chat = _exchange(
        "/v1/chat/completions",
        b'{"model":"gpt-4o","messages":[],"stream":true}',
        200,
        b"",
        [b'data: {"error":{"message":"overloaded","type":"server_error","code":"busy"}}\n\n'],
    )
    vllm = _exchange(
        "/v1/chat/completions",
        b'{"model":"m","messages":[]}',
        400,
        b'{"error":{"message":"bad","type":"BadRequestError","param":null,"code":400}}',
        [],
    )
    for exchange in (responses, chat, vllm):
        TypedView().describe(exchange)
    assert (responses.usage.error_type, responses.usage.error_code) == (None, "server_error")
    assert (chat.usage.error_type, chat.usage.error_code) == ("server_error", "busy")
    assert (vllm.usage.error_type, vllm.usage.error_code) == ("BadRequestError", "400")


def test_a_body_that_does_not_fit_the_types_becomes_a_note() -> None:
    exchange = _exchange(
        "/v1/chat/completions",
        b'{"model":"gpt-4o","messages":[]}',
        200,
        b'{"id":"c","choices":"not-a-list","usage":{"prompt_tokens":"many"}}',
        [],
    )
    TypedView().describe(exchange)
    assert len(exchange.notes) == 1
    assert "did not decode as CreateChatCompletionResponse" in exchange.notes[0]
    assert exchange.usage.model == "gpt-4o"  # the request still decoded


# -- binary and text responses ---------------------------------------------------------------


def _response(path: str, request: bytes, body: bytes, content_type: str | None) -> Exchange:
    exchange = _exchange(path, request, 200, body, [])
    exchange.response_headers = [] if content_type is None else [("content-type", content_type)]
    return exchange


SPEECH_REQUEST = b'{"model":"gpt-4o-mini-tts","input":"Hello","voice":"alloy"}'


def test_a_binary_speech_response_is_described_not_decoded() -> None:
    audio = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00" * 50
    view = TypedView()
    exchange = _response("/v1/audio/speech", SPEECH_REQUEST, audio, "audio/mpeg")
    view.describe(exchange)
    assert exchange.notes == [] and exchange.usage.model == "gpt-4o-mini-tts"
    assert view.response_value(exchange) == BinaryBody(
        content_type="audio/mpeg", size=len(audio), sha256=hashlib.sha256(audio).hexdigest()
    )
    # Without a Content-Type the route's declared media (application/octet-stream) decides.
    bare = _response("/v1/audio/speech", SPEECH_REQUEST, audio, None)
    view.describe(bare)
    described = view.response_value(bare)
    assert bare.notes == [] and isinstance(described, BinaryBody)
    assert (described.content_type, described.size) == (None, len(audio))


def test_recorded_speech_and_file_content_are_binary() -> None:
    view = TypedView()
    records = {r.id: r for r in load_corpus()}
    for record_id in ("ruby-openai/speech_tts-1_test#0", "ruby-openai/files_fetch_image#0"):
        record = records[record_id]
        exchange = as_exchange(record)
        view.describe(exchange)
        data = record.response.body_bytes()
        assert exchange.notes == [], record_id
        assert view.response_value(exchange) == BinaryBody(
            content_type=record.response.headers["content-type"],
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )


SRT = b"1\n00:00:00,000 --> 00:00:02,000\nHello, world! This is a test.\n\n\n"
VTT = b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello, world!\n\n"


def test_text_transcripts_are_typed_as_text() -> None:
    """`response_format=srt|vtt|text` answers `text/plain`, though the spec declares JSON."""
    view = TypedView()
    cases = [(SRT, "srt"), (VTT, "vtt"), (b"Hello, world!\n", "plain")]
    for body, text_format in cases:
        exchange = _response("/v1/audio/transcriptions", b"", body, "text/plain; charset=utf-8")
        view.describe(exchange)
        value = view.response_value(exchange)
        assert exchange.notes == [], text_format
        assert isinstance(value, TextBody)
        assert (value.format, value.text, value.size) == (text_format, body.decode(), len(body))
        assert value.sha256 == hashlib.sha256(body).hexdigest()
    # Text that is not valid in its charset is a real failure: described as bytes, with a note.
    broken = _response("/v1/audio/transcriptions", b"", b"\xff\xfe\xfa", "text/plain")
    assert isinstance(view.response_value(broken), BinaryBody)
    assert len(broken.notes) == 1 and "not text" in broken.notes[0]


def test_transcription_json_usage_reaches_the_typed_columns() -> None:
    view = TypedView()
    tokens = _response(
        "/v1/audio/transcriptions",
        b"",
        b'{"text":"Hello.","usage":{"type":"tokens","input_tokens":14,"output_tokens":4,'
        b'"total_tokens":18,"input_token_details":{"text_tokens":0,"audio_tokens":14}}}',
        "application/json",
    )
    view.describe(tokens)
    assert tokens.notes == []
    assert (tokens.usage.input_tokens, tokens.usage.output_tokens) == (14, 4)
    assert type(view.response_value(tokens)).__name__ == "CreateTranscriptionResponse"
    verbose = _response(
        "/v1/audio/translations",
        b"",
        b'{"language":"english","duration":1.5,"text":"Hi.","segments":[{"id":0,"seek":0,'
        b'"start":0.0,"end":1.5,"text":"Hi.","tokens":[1],"temperature":0.0,'
        b'"avg_logprob":-0.2,"compression_ratio":1.0,"no_speech_prob":0.0}]}',
        "application/json",
    )
    view.describe(verbose)
    assert verbose.notes == [] and verbose.usage.input_tokens is None
    assert view.response_value(verbose).segments[0].end == 1.5
    # whisper-1 counts seconds of audio, not tokens.
    seconds = _response(
        "/v1/audio/transcriptions",
        b"",
        b'{"text":"Hello.","usage":{"type":"duration","seconds":3}}',
        "application/json",
    )
    view.describe(seconds)
    assert seconds.notes == []
    assert (seconds.usage.audio_seconds, seconds.usage.input_tokens) == (3, None)
    assert tokens.usage.audio_seconds is None


def test_every_recorded_non_json_response_is_described() -> None:
    view = TypedView()
    kinds: dict[str, int] = {}
    for record in load_corpus():
        exchange = as_exchange(record)
        content_type = record.response.headers.get("content-type", "")
        if exchange.stream or exchange.status >= 400 or "json" in content_type:
            continue
        if not exchange.response_body:
            continue
        value = view.response_value(exchange)
        assert isinstance(value, (BinaryBody, TextBody)), record.id
        kinds[type(value).__name__] = kinds.get(type(value).__name__, 0) + 1
        assert exchange.notes == [], record.id
    # Speech audio and file content; transcripts, SDP answers and container file text.
    assert kinds == {"BinaryBody": 9, "TextBody": 6}

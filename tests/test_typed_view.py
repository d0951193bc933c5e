"""The typed view: route resolution and typed columns, over the real corpus and exact examples."""

from __future__ import annotations

from proxy.decode import RouteTable, TypedView
from proxy.exchange import Exchange
from proxy.schemas.routes import ROUTES
from proxy.sse import SseEvent, SseSplitter, is_event_stream
from tests.support.corpus import CorpusExchange, load_corpus


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
    return Exchange(
        id=1,
        started_at=0.0,
        method="POST",
        path=path,
        query="",
        request_headers=[("content-type", "application/json")],
        request_body=request,
        match_key="",
        status=status,
        response_headers=[("content-type", "text/event-stream" if events else "application/json")],
        response_body=body,
        stream=bool(events),
        events=[SseEvent(float(i), e) for i, e in enumerate(events)],
    )


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

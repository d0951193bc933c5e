"""Tests for the generated msgspec schemas in ``proxy.schemas``.

* every generated struct and union alias builds a msgspec decoder;
* handwritten bodies decode, keep absent apart from null, and re-encode to the same JSON;
* every JSON body of every recorded exchange of the corpus (``../shared/corpus/openai``, when
  present): request, response, error and each SSE event's data, decodes with the types the
  route table names for its operation, and re-encodes to the same JSON values;
* regenerating from the spec (``../shared/openapi``, when present) gives the files in the repo.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import types
import typing
import warnings
from pathlib import Path
from typing import Any

import msgspec
import pytest

import proxy.schemas
from proxy.decode import RouteTable
from proxy.schemas import RAW_FALLBACKS
from proxy.schemas.chat import CreateChatCompletionResponse, CreateChatCompletionStreamResponse
from proxy.schemas.embeddings import CreateEmbeddingResponse
from proxy.schemas.errors import ErrorResponse
from proxy.schemas.responses import ResponseCompletedEvent, ResponseStreamEvent
from proxy.schemas.routes import ROUTES, Route
from proxy.sse import SseSplitter, is_event_stream, parse_event
from tests.support.corpus import load_corpus

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(__file__).parent.parent.parent / "shared"
SPEC = SHARED / "openapi" / "openapi.yaml"

# -- helpers -------------------------------------------------------------------------------


def schema_modules() -> list[types.ModuleType]:
    return [
        importlib.import_module(f"proxy.schemas.{info.name}")
        for info in pkgutil.iter_modules(proxy.schemas.__path__)
    ]


def is_union(value: object) -> bool:
    return isinstance(value, types.UnionType) or typing.get_origin(value) is typing.Union


def generated_types() -> list[tuple[str, object]]:
    """(qualified name, type) of every Struct class and union alias the modules define."""
    found: list[tuple[str, object]] = []
    for module in schema_modules():
        for name, value in sorted(vars(module).items()):
            if isinstance(value, type) and issubclass(value, msgspec.Struct):
                if value.__module__ == module.__name__:
                    found.append((f"{module.__name__}.{name}", value))
            elif is_union(value) and not name.startswith("_"):
                found.append((f"{module.__name__}.{name}", value))
    return found


def roundtrip(type_: Any, raw: str | bytes) -> Any:
    """Decode ``raw`` as ``type_``; assert re-encoding gives the same JSON values."""
    value = msgspec.json.decode(raw, type=type_)
    assert msgspec.json.decode(msgspec.json.encode(value)) == json.loads(raw)
    return value


def route(method: str, template: str) -> Route:
    return next(r for r in ROUTES if r.method == method and r.path == template)


# -- every generated type ----------------------------------------------------------------------


def test_every_type_builds_a_decoder() -> None:
    found = generated_types()
    failures = []
    for name, type_ in found:
        try:
            msgspec.json.Decoder(type_)
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    assert len(found) > 300
    assert not failures, "\n".join(failures)


def test_structs_are_lenient_and_all_fields_optional() -> None:
    for name, type_ in generated_types():
        if not isinstance(type_, type):
            continue
        config = type_.__struct_config__
        assert not config.forbid_unknown_fields, name
        assert config.omit_defaults, name
        assert all(d is msgspec.UNSET for d in type_.__struct_defaults__), name
        assert len(type_.__struct_defaults__) == len(type_.__struct_fields__), name


def test_route_table_lists_every_operation() -> None:
    assert len(ROUTES) == 288
    assert len({(r.method, r.path) for r in ROUTES}) == 288
    chat = route("POST", "/chat/completions")
    assert chat.request.__name__ == "CreateChatCompletionRequest"
    assert chat.response is CreateChatCompletionResponse
    assert chat.stream is CreateChatCompletionStreamResponse
    assert route("POST", "/responses").stream is ResponseStreamEvent
    assert route("GET", "/models/{model}").response.__name__ == "Model"
    assert route("POST", "/embeddings").response is CreateEmbeddingResponse
    assert all(r.error is not None for r in ROUTES)
    runs = route("POST", "/threads/{thread_id}/runs")
    assert runs.stream is None and runs.events is not None
    assert runs.events["thread.run.created"] is runs.response
    assert runs.events["thread.message.delta"].__name__ == "MessageDeltaObject"
    assert route("POST", "/audio/speech").stream is not None
    assert all(r.events is None for r in ROUTES if r.stream is not None)


def test_raw_fallbacks_are_listed() -> None:
    for location, reason in RAW_FALLBACKS:
        assert location and reason


# -- handwritten bodies ------------------------------------------------------------------------------

CHAT_RESPONSE = """{
  "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
  "model": "gpt-4o-mini", "system_fingerprint": null,
  "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
               "message": {"role": "assistant", "content": "Hi!", "refusal": null}}],
  "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}}
}"""

CHAT_CHUNK = """{
  "id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1700000001,
  "model": "gpt-4o-mini",
  "choices": [{"index": 0, "finish_reason": null,
               "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                         "function": {"name": "get_weather", "arguments": "{\\"ci"}}]}}]
}"""

RESPONSE_COMPLETED = """{
  "type": "response.completed", "sequence_number": 7,
  "response": {
    "id": "resp_1", "object": "response", "created_at": 1700000002, "status": "completed",
    "model": "o4-mini", "error": null, "incomplete_details": null,
    "output": [
      {"type": "reasoning", "id": "rs_1", "summary": []},
      {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
       "content": [{"type": "output_text", "text": "pong", "annotations": []}]}
    ],
    "usage": {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 16},
              "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 32},
              "total_tokens": 60}
  }
}"""

EMBEDDINGS_BASE64 = """{
  "object": "list", "model": "text-embedding-3-small",
  "data": [{"object": "embedding", "index": 0, "embedding": "AACAPwAAAEA="}],
  "usage": {"prompt_tokens": 2, "total_tokens": 2}
}"""

EMBEDDINGS_FLOATS = """{
  "object": "list", "model": "text-embedding-3-small",
  "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -1.5, 3e-05]}],
  "usage": {"prompt_tokens": 2, "total_tokens": 2}
}"""

ERROR_BODY = """{
  "error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
            "param": null, "code": "invalid_api_key"}
}"""


def test_chat_completion_response() -> None:
    value = roundtrip(CreateChatCompletionResponse, CHAT_RESPONSE)
    assert value.usage.total_tokens == 12
    assert value.usage.prompt_tokens_details.cached_tokens == 0
    assert value.system_fingerprint is None  # explicit null
    assert value.service_tier is msgspec.UNSET  # absent
    assert value.choices[0].message.content == "Hi!"
    assert value.choices[0].message.tool_calls is msgspec.UNSET


def test_chat_stream_chunk_with_tool_call_delta() -> None:
    value = roundtrip(CreateChatCompletionStreamResponse, CHAT_CHUNK)
    call = value.choices[0].delta.tool_calls[0]
    assert (call.index, call.id, call.function.name) == (0, "call_1", "get_weather")
    assert call.function.arguments == '{"ci'
    assert value.choices[0].finish_reason is None
    assert value.usage is msgspec.UNSET


def test_responses_completed_event_with_usage_details() -> None:
    event = roundtrip(ResponseStreamEvent, RESPONSE_COMPLETED)
    assert isinstance(event, ResponseCompletedEvent)
    assert type(event).__struct_config__.tag == "response.completed"
    usage = event.response.usage
    assert usage.input_tokens_details.cached_tokens == 16
    assert usage.output_tokens_details.reasoning_tokens == 32
    assert event.response.error is None
    assert event.response.instructions is msgspec.UNSET
    message = event.response.output[1]
    assert type(message).__name__ == "OutputMessage"
    assert message.content[0].text == "pong"


def test_embeddings_base64_and_floats() -> None:
    as_base64 = roundtrip(CreateEmbeddingResponse, EMBEDDINGS_BASE64)
    assert as_base64.data[0].embedding == "AACAPwAAAEA="
    as_floats = roundtrip(CreateEmbeddingResponse, EMBEDDINGS_FLOATS)
    assert as_floats.data[0].embedding == [0.25, -1.5, 3e-05]
    assert as_floats.usage.prompt_tokens == 2


def test_error_body() -> None:
    value = roundtrip(ErrorResponse, ERROR_BODY)
    assert value.error.code == "invalid_api_key"
    assert value.error.param is None


def test_unknown_fields_and_enum_values_are_tolerated() -> None:
    body = '{"error": {"message": "m", "type": "brand_new_type", "extra": 1}}'
    value = msgspec.json.decode(body, type=ErrorResponse)
    assert value.error.type == "brand_new_type"
    assert value.error.code is msgspec.UNSET


def test_encoding_adds_no_defaults() -> None:
    assert (
        msgspec.json.encode(msgspec.json.decode(b"{}", type=CreateChatCompletionResponse)) == b"{}"
    )


# -- response media and merged unions ----------------------------------------------------------


def test_route_table_declares_response_media() -> None:
    speech = route("POST", "/audio/speech")
    assert speech.media == ("application/octet-stream", "text/event-stream")
    assert speech.kind == "binary" and speech.response is None
    video = route("GET", "/videos/{video_id}/content")
    assert (video.media, video.kind) == (("video/mp4", "image/webp", "application/json"), "binary")
    assert route("GET", "/skills/{skill_id}/content").kind == "binary"
    sdp = route("POST", "/realtime/calls")
    assert (sdp.media, sdp.kind) == (("application/sdp",), "text")
    chat = route("POST", "/chat/completions")
    assert (chat.media, chat.kind) == (("application/json", "text/event-stream"), "json")
    deleted = route("DELETE", "/responses/{response_id}")  # the spec declares no body
    assert (deleted.media, deleted.kind) == ((), "none")
    assert {r.kind for r in ROUTES} == {"json", "binary", "text", "none"}
    assert all(r.kind == "json" for r in ROUTES if r.response is not None)


TRANSCRIPTION_JSON = """{
  "text": "Hello there.",
  "logprobs": [{"token": "Hello", "logprob": -0.01, "bytes": [72, 101, 108, 108, 111]}],
  "usage": {"type": "tokens", "input_tokens": 14, "output_tokens": 4, "total_tokens": 18,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 14}}
}"""

TRANSCRIPTION_DIARIZED = """{
  "task": "transcribe", "duration": 3.2, "text": "Hi. Hello.",
  "segments": [
    {"type": "transcript.text.segment", "id": "seg_1", "start": 0.0, "end": 1.1,
     "text": "Hi.", "speaker": "A"},
    {"type": "transcript.text.segment", "id": "seg_2", "start": 1.2, "end": 3.2,
     "text": "Hello.", "speaker": "B"}
  ],
  "usage": {"type": "duration", "seconds": 4}
}"""

TRANSCRIPTION_VERBOSE = """{
  "task": "transcribe", "language": "english", "duration": 2.5, "text": "Hello there.",
  "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 2.5, "text": " Hello there.",
                "tokens": [50364, 2425, 456, 13], "temperature": 0.0, "avg_logprob": -0.28,
                "compression_ratio": 0.8, "no_speech_prob": 0.01}],
  "words": [{"word": "Hello", "start": 0.0, "end": 0.6}, {"word": "there", "start": 0.7, "end": 1.2}],
  "usage": {"type": "duration", "seconds": 3}
}"""


def test_transcription_bodies_decode_with_one_merged_type() -> None:
    """The spec's three untagged transcription objects are one merged struct: every form the
    API sends decodes with the route's type and re-encodes to the same JSON."""
    response = route("POST", "/audio/transcriptions").response
    assert response.__name__ == "CreateTranscriptionResponse"
    plain = roundtrip(response, TRANSCRIPTION_JSON)
    assert type(plain.usage).__name__ == "TranscriptTextUsageTokens"
    assert (plain.usage.input_tokens, plain.usage.output_tokens) == (14, 4)
    assert plain.logprobs[0].token == "Hello" and plain.segments is msgspec.UNSET
    diarized = roundtrip(response, TRANSCRIPTION_DIARIZED)
    assert [(s.id, s.speaker) for s in diarized.segments] == [("seg_1", "A"), ("seg_2", "B")]
    assert diarized.usage.seconds == 4
    verbose = roundtrip(response, TRANSCRIPTION_VERBOSE)
    # Segments of both kinds share one merged segment struct: integer or string ids.
    assert type(verbose.segments[0]) is type(diarized.segments[0])
    assert (verbose.segments[0].id, verbose.segments[0].tokens[0]) == (0, 50364)
    assert [w.word for w in verbose.words] == ["Hello", "there"]
    assert roundtrip(response, '{"text": "Hello there."}').text == "Hello there."


def test_translation_and_file_batch_bodies_are_typed() -> None:
    translation = route("POST", "/audio/translations").response
    assert translation.__name__ == "CreateTranslationResponse"
    verbose = roundtrip(
        translation,
        '{"language": "english", "duration": 1.5, "text": "Hi.",'
        ' "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": "Hi.",'
        ' "tokens": [1], "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.0,'
        ' "no_speech_prob": 0.0}]}',
    )
    assert verbose.segments[0].end == 1.5
    # `anyOf: [{required: [file_ids]}, {required: [files]}]` only constrains the object.
    batch = route("POST", "/vector_stores/{vector_store_id}/file_batches").request
    assert batch.__name__ == "CreateVectorStoreFileBatchRequest"
    assert roundtrip(batch, '{"file_ids": ["file-1", "file-2"]}').file_ids == ["file-1", "file-2"]
    files = roundtrip(
        batch,
        '{"files": [{"file_id": "file-1", "attributes": {"lang": "en", "n": 2}}],'
        ' "chunking_strategy": {"type": "static", "static":'
        ' {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}}',
    )
    assert files.files[0].file_id == "file-1"
    assert type(files.chunking_strategy).__name__ == "StaticChunkingStrategyRequestParam"


def test_input_items_without_a_common_tag_are_typed() -> None:
    """`InputItem`'s members (the easy message has an optional `type`) merge into one struct."""
    request = route("POST", "/responses").request
    body = (
        '{"model": "gpt-5", "input": ['
        '{"role": "user", "content": "What is the weather?"},'
        '{"type": "function_call", "call_id": "call_1", "name": "weather",'
        ' "arguments": "{\\"city\\": \\"Paris\\"}"},'
        '{"type": "function_call_output", "call_id": "call_1", "output": "sunny"},'
        '{"role": "user", "content": [{"type": "input_text", "text": "Thanks"}]}]}'
    )
    value = roundtrip(request, body)
    assert _raw_count(value) == 0
    first, call, output, last = value.input
    assert type(first).__name__ == "InputItem" and first.content == "What is the weather?"
    assert (call.type, call.name, output.output) == ("function_call", "weather", "sunny")
    assert type(last.content[0]).__name__ == "InputTextContent"
    assert RAW_FALLBACKS == ()  # nothing in the spec is left as raw JSON


def test_a_nullable_allof_around_a_union_is_that_union() -> None:
    """`tool_choice: {allOf: [ToolChoiceOption, {nullable: true}]}`: a string, a tool or null."""
    run = route("GET", "/threads/{thread_id}/runs/{run_id}").response
    decode = msgspec.json.Decoder(run).decode
    for choice in ('"auto"', '{"type": "function", "function": {"name": "lookup"}}', "null"):
        body = f'{{"id": "run_1", "object": "thread.run", "tool_choice": {choice}}}'.encode()
        value = decode(body)
        assert _raw_count(value) == 0
        assert msgspec.json.decode(msgspec.json.encode(value)) == msgspec.json.decode(body)
    named = decode(b'{"tool_choice": {"type": "function", "function": {"name": "lookup"}}}')
    assert (named.tool_choice.type, named.tool_choice.function.name) == ("function", "lookup")


# -- recorded corpus ------------------------------------------------------------------------------------


def _raw_count(value: Any) -> int:
    """How many ``msgspec.Raw`` values (raw fallbacks) a decoded value holds."""
    if isinstance(value, msgspec.Raw):
        return 1
    if isinstance(value, msgspec.Struct):
        return sum(_raw_count(getattr(value, f)) for f in value.__struct_fields__)
    if isinstance(value, list):
        return sum(_raw_count(v) for v in value)
    if isinstance(value, dict):
        return sum(_raw_count(v) for v in value.values())
    return 0


class CorpusBodies(msgspec.Struct):
    """The JSON bodies of the corpus with the type the route table gives each."""

    typed: list[tuple[str, str, Any, str]] = msgspec.field(default_factory=list)
    untyped: list[str] = msgspec.field(default_factory=list)
    unknown_events: list[str] = msgspec.field(default_factory=list)
    exchanges: int = 0


def _corpus_bodies() -> CorpusBodies:
    """(exchange id, what, type, JSON text) for every JSON body of every corpus exchange."""
    table = RouteTable(ROUTES)
    out = CorpusBodies()
    for record in load_corpus():
        out.exchanges += 1
        request, response = record.request, record.response
        compiled = table.resolve(request.method, request.path)
        assert compiled is not None, f"{record.id}: no route for {request.path}"
        r, rid = compiled.route, record.id
        bodies: list[tuple[str, Any, str]] = []
        if request.body and "json" in request.headers.get("content-type", ""):
            bodies.append(("request", r.request, request.body))
        content_type = response.headers.get("content-type", "")
        if response.body and response.status >= 400:
            bodies.append(("error", r.error, response.body))
        elif response.body and is_event_stream(content_type):
            for i, raw in enumerate(SseSplitter().feed(response.body.encode("utf-8"))):
                event = parse_event(raw)
                if event is None or not event.data or event.data == "[DONE]":
                    continue
                type_ = r.stream
                if r.events is not None:
                    type_ = r.events.get(event.event or "")
                    if type_ is None:
                        out.unknown_events.append(f"{rid} event {i}: {event.event}")
                        continue
                bodies.append((f"event {i}", type_, event.data))
        elif response.body and "json" in content_type:
            bodies.append(("response", r.response, response.body))
        for what, type_, text in bodies:
            if type_ is None:
                out.untyped.append(f"{rid} {what} ({compiled.template})")
            else:
                out.typed.append((rid, what, type_, text))
    return out


def test_corpus_decodes_and_roundtrips() -> None:
    """Every JSON body of all corpus exchanges decodes with its route's types and round-trips."""
    corpus = _corpus_bodies()
    failures: list[str] = []
    kinds: set[str] = set()
    raw_hits = 0
    for rid, what, type_, text in corpus.typed:
        kinds.add(what.split()[0])
        try:
            value = msgspec.json.decode(text, type=type_)
        except msgspec.ValidationError as exc:
            failures.append(f"{rid} {what}: {exc}")
            continue
        raw_hits += _raw_count(value)
        if msgspec.json.decode(msgspec.json.encode(value)) != json.loads(text):
            failures.append(f"{rid} {what}: re-encoded JSON differs")
    summary = (
        f"corpus: {corpus.exchanges} exchanges, {len(corpus.typed)} JSON bodies typed, "
        f"{len(corpus.untyped)} JSON bodies without a type, {raw_hits} raw fallbacks hit, "
        f"{len(corpus.unknown_events)} unknown event names"
    )
    warnings.warn(summary, UserWarning, stacklevel=1)
    assert corpus.exchanges == 392
    assert len(corpus.typed) > 7000
    assert kinds == {"request", "response", "event", "error"}
    assert not corpus.unknown_events, corpus.unknown_events
    assert not failures, f"{summary}\n{len(failures)} failed:\n" + "\n".join(failures[:50])


# -- the generator ------------------------------------------------------------------------------------


@pytest.mark.skipif(not SPEC.is_file(), reason=f"OpenAPI spec not found at {SPEC}")
def test_generated_files_are_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    from proxy.codegen.generate import generate
    from proxy.codegen.groups import default_groups
    from proxy.codegen.loader import load_spec

    spec = load_spec(SPEC)
    output = generate(spec, default_groups(spec))
    schemas_dir = REPO_ROOT / "proxy" / "schemas"
    stale = [
        name
        for name, text in output.files.items()
        if not (schemas_dir / name).is_file()
        or (schemas_dir / name).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"regenerate with `python -m proxy.codegen`: {stale}"
    assert tuple(output.fallbacks) == RAW_FALLBACKS


# -- the generator on a small synthetic spec ------------------------------------------------------

SYNTHETIC_SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "paths": {
        "/things": {
            "post": {
                "operationId": "createThing",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                    }
                },
                "responses": {
                    "200": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}},
                            "text/event-stream": {"schema": {"$ref": "#/components/schemas/Event"}},
                        }
                    }
                },
            },
            "get": {"operationId": "listThings", "responses": {"200": {}}},
        }
    },
    "components": {
        "schemas": {
            "Base": {"type": "object", "properties": {"id": {"type": "string"}}},
            "Thing": {
                "allOf": [
                    {"$ref": "#/components/schemas/Base"},
                    {
                        "type": "object",
                        "required": ["class"],
                        "properties": {
                            "class": {"type": "string"},
                            "api_key.created": {"type": "integer"},
                            "note": {"type": ["string", "null"]},
                            "size": {"type": "integer", "nullable": True},
                            "meta": {"type": "object", "properties": {"k": {"type": "string"}}},
                            "filter": {"$ref": "#/components/schemas/Filter"},
                            "messages": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Message"},
                            },
                            "blob": {
                                "oneOf": [
                                    {
                                        "type": "object",
                                        "required": ["n"],
                                        "properties": {
                                            "a": {"type": "string"},
                                            "n": {"type": "integer"},
                                            "part": {
                                                "type": "object",
                                                "properties": {"x": {"type": "string"}},
                                            },
                                        },
                                    },
                                    {
                                        "type": "object",
                                        "required": ["n"],
                                        "properties": {
                                            "b": {"type": "string"},
                                            "n": {"type": "string"},
                                            "part": {
                                                "type": "object",
                                                "properties": {"y": {"type": "integer"}},
                                            },
                                        },
                                    },
                                ]
                            },
                            "first_event": {"$ref": "#/components/schemas/Started"},
                        },
                    },
                ]
            },
            "Comparison": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "enum": ["eq", "ne"]},
                    "value": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                },
            },
            "Filter": {
                "$recursiveAnchor": True,
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "enum": ["and", "or"]},
                    "filters": {
                        "type": "array",
                        "items": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Comparison"},
                                {"$recursiveRef": "#"},
                            ]
                        },
                    },
                },
            },
            "UserMessage": {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "role": {"type": "string", "enum": ["user"]},
                    "content": {"type": "string"},
                },
            },
            "ToolMessage": {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "role": {"type": "string", "enum": ["tool"]},
                    "id": {"type": "string"},
                },
            },
            "Message": {
                "oneOf": [
                    {"$ref": "#/components/schemas/UserMessage"},
                    {"$ref": "#/components/schemas/ToolMessage"},
                ],
                "discriminator": {"propertyName": "role"},
            },
            "Started": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "enum": ["started"]},
                    "at": {"type": "integer"},
                },
            },
            "Stopped": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "const": "stopped"}},
            },
            "Event": {
                "anyOf": [
                    {"$ref": "#/components/schemas/Started"},
                    {"$ref": "#/components/schemas/Stopped"},
                ],
                "discriminator": {"propertyName": "type"},
            },
        }
    },
}


def _forget_modules() -> None:
    for name in [m for m in sys.modules if m.partition(".")[0] == "synth_schemas"]:
        del sys.modules[name]


def test_generator_on_a_synthetic_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from proxy.codegen.generate import generate, write
    from proxy.codegen.groups import Group
    from proxy.codegen.loader import Spec

    groups = (
        Group("things", ("Thing", "Event"), "Things."),
        Group("errors", ("Stopped",), "Shares a root with things."),
    )
    output = generate(Spec(SYNTHETIC_SPEC, commit="0" * 40), groups)
    write(output, tmp_path / "synth_schemas")
    assert output.fallbacks == ()
    assert output.operations == 2
    text = output.files["things.py"]
    assert "ThingMeta" in text  # inline object: parent + field
    # Two untagged objects merge into one struct; a field they type differently gets the union
    # of both types, and two untagged objects there merge in turn.
    assert "n: str | int | msgspec.UnsetType = msgspec.UNSET" in text
    assert "part: ThingBlobPart | msgspec.UnsetType | None = msgspec.UNSET" in text
    assert "api_key_created: int | msgspec.UnsetType | None = msgspec.field(" in text

    monkeypatch.syspath_prepend(str(tmp_path))
    request.addfinalizer(_forget_modules)
    things = importlib.import_module("synth_schemas.things")
    errors = importlib.import_module("synth_schemas.errors")
    routes = importlib.import_module("synth_schemas.routes")
    assert errors.Stopped is importlib.import_module("synth_schemas._shared").Stopped
    assert [(r.method, r.operation_id) for r in routes.ROUTES] == [
        ("GET", "listThings"),
        ("POST", "createThing"),
    ]
    assert routes.ROUTES[1].stream is things.Event

    body = (
        '{"id": "t1", "class": "c", "api_key.created": 3, "note": null, "meta": {"k": "v"},'
        ' "filter": {"type": "and", "filters": [{"type": "eq", "value": 1.5},'
        ' {"type": "or", "filters": [{"type": "ne", "value": "x"}]}]},'
        ' "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "id": "9"}],'
        ' "blob": {"a": "one", "n": 1, "part": {"x": "x", "y": 2}},'
        ' "first_event": {"type": "started", "at": 1}}'
    )
    thing = roundtrip(things.Thing, body)
    assert thing.class_ == "c"
    assert thing.api_key_created == 3
    assert thing.note is None
    assert thing.size is msgspec.UNSET
    # Used directly, the schema is an untagged struct (its tag is a plain field); inside the
    # union each tag value has its own tagged variant.
    assert type(thing.filter).__name__ == "Filter"
    assert thing.filter.type == "and"
    assert [type(f).__name__ for f in thing.filter.filters] == ["ComparisonEq", "FilterOr"]
    assert [type(m).__name__ for m in thing.messages] == ["UserMessage", "ToolMessage"]
    assert type(thing.blob).__name__ == "ThingBlob"
    assert (thing.blob.a, thing.blob.n, thing.blob.b) == ("one", 1, msgspec.UNSET)
    assert (thing.blob.part.x, thing.blob.part.y) == ("x", 2)
    assert roundtrip(things.ThingBlob, '{"b": "two", "n": "2"}').n == "2"
    assert isinstance(thing.first_event, things.Started)
    assert type(roundtrip(things.Event, '{"type": "stopped"}')).__name__ == "Stopped"

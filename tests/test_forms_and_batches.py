"""Multipart requests decoded into typed form structs; Batch API JSONL files line by line."""

from __future__ import annotations

import hashlib

import msgspec

from proxy.batchfiles import BatchRequestInput, BatchRequestOutput
from proxy.decode import TypedView
from proxy.exchange import Exchange
from proxy.schemas._forms import FormFile
from proxy.schemas.audio import CreateTranscriptionRequest
from proxy.schemas.files import CreateFileRequest
from tests.support.corpus import load_corpus
from tests.support.exchanges import stored_exchange
from tests.test_typed_view import as_exchange

BOUNDARY = "----cassette-test-boundary"
AUDIO = b"RIFF\x00\x01fake wav bytes\r\n--not-a-boundary\x00\xff"


def multipart_body(fields: list[tuple[str, str | tuple[str, str, bytes]]]) -> bytes:
    """A form body: a text field is (name, text), a file (name, (filename, type, bytes))."""
    out = b""
    for name, value in fields:
        out += f"--{BOUNDARY}\r\n".encode()
        if isinstance(value, tuple):
            filename, content_type, content = value
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode() + content
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
        out += b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def form_exchange(path: str, body: bytes, status: int = 200, response: bytes = b"{}") -> Exchange:
    return stored_exchange(
        path,
        body,
        status=status,
        body=response,
        request_type=f"multipart/form-data; boundary={BOUNDARY}",
    )


def test_transcription_form_decodes_with_file_digest_and_model_column() -> None:
    body = multipart_body(
        [
            ("file", ("hello.wav", "audio/wav", AUDIO)),
            ("model", "whisper-1"),
            ("response_format", "verbose_json"),
            ("temperature", "0.2"),
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
        ]
    )
    view = TypedView()
    exchange = form_exchange("/v1/audio/transcriptions", body, response=b'{"text": "hi"}')
    view.describe(exchange)
    assert exchange.notes == []
    assert exchange.endpoint == "/v1/audio/transcriptions"
    assert exchange.usage.model == "whisper-1"

    form = view.request_form(exchange)
    assert isinstance(form, CreateTranscriptionRequest)
    assert form.file == FormFile(
        filename="hello.wav",
        content_type="audio/wav",
        size=len(AUDIO),
        sha256=hashlib.sha256(AUDIO).hexdigest(),
    )
    assert form.model == "whisper-1"
    assert form.response_format == "verbose_json"
    assert form.temperature == 0.2
    assert form.timestamp_granularities == ["word", "segment"]
    assert form.language is msgspec.UNSET


def test_a_form_that_does_not_fit_its_type_becomes_a_note() -> None:
    body = multipart_body(
        [("file", ("a.mp3", "audio/mpeg", b"x")), ("model", "whisper-1"), ("temperature", "hot")]
    )
    exchange = form_exchange("/v1/audio/transcriptions", body)
    TypedView().describe(exchange)  # never raises
    assert len(exchange.notes) == 1
    assert "request form did not decode as CreateTranscriptionRequest" in exchange.notes[0]
    assert "temperature" in exchange.notes[0]
    assert exchange.usage.model is None


BATCH_INPUT = (
    b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
    b'"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}}\n'
    b'{"custom_id": "b", "method": "POST", "url": "/v1/responses", '
    b'"body": {"model": "gpt-4o-mini", "input": "Hello"}}\n'
    b"\n"
    b'{"custom_id": "c", "method": "POST", "url": "/v1/embeddings", '
    b'"body": {"model": "text-embedding-3-small", "input": ["x", "y"]}}\n'
)


def test_batch_input_upload_decodes_line_by_line() -> None:
    body = multipart_body(
        [("purpose", "batch"), ("file", ("batch.jsonl", "application/jsonl", BATCH_INPUT))]
    )
    view = TypedView()
    exchange = form_exchange("/v1/files", body, response=b'{"id": "file-1", "object": "file"}')
    view.describe(exchange)
    assert exchange.notes == []
    form = view.request_form(exchange)
    assert isinstance(form, CreateFileRequest)
    assert form.purpose == "batch"
    assert isinstance(form.file, FormFile) and form.file.size == len(BATCH_INPUT)

    lines = view.batch_input_lines(exchange, BATCH_INPUT)
    assert [number for number, _ in lines] == [1, 2, 4]
    assert all(isinstance(line, BatchRequestInput) for _, line in lines)
    assert [line.custom_id for _, line in lines] == ["a", "b", "c"]


def test_batch_input_line_that_does_not_decode_names_its_line() -> None:
    bad = BATCH_INPUT + b'{"custom_id": "d", "url": "/v1/responses"}\n'  # no method
    bad += b'{"custom_id": "e", "method": "POST", "url": "/v1/chat/completions", '
    bad += b'"body": {"messages": "not a list"}}\n'
    body = multipart_body([("purpose", "batch"), ("file", ("b.jsonl", "application/jsonl", bad))])
    exchange = form_exchange("/v1/files", body)
    TypedView().describe(exchange)
    assert len(exchange.notes) == 2, exchange.notes
    assert exchange.notes[0].startswith("batch input file: line 5 did not decode as ")
    assert "method" in exchange.notes[0]
    assert "body of line 6 (e)" in exchange.notes[1]
    assert "CreateChatCompletionRequest" in exchange.notes[1]


BATCH_OUTPUT = (
    b'{"id": "batch_req_1", "custom_id": "a", "response": {"status_code": 200, '
    b'"request_id": "req_1", "body": {"id": "chatcmpl-1", "object": "chat.completion"}}, '
    b'"error": null}\n'
    b'{"id": "batch_req_2", "custom_id": "b", "response": null, '
    b'"error": {"code": "batch_expired", "message": "expired"}}\n'
)


def content_exchange(body: bytes) -> Exchange:
    return Exchange(
        id=1,
        started_at=0.0,
        method="GET",
        path="/v1/files/file-abc/content",
        query="",
        request_headers=[],
        request_body=b"",
        match_key="",
        status=200,
        response_headers=[("content-type", "application/octet-stream")],
        response_body=body,
    )


def test_batch_output_file_content_decodes_line_by_line() -> None:
    view = TypedView()
    exchange = content_exchange(BATCH_OUTPUT)
    view.describe(exchange)
    assert exchange.notes == []
    lines = view.batch_output_lines(exchange)
    assert lines is not None and len(lines) == 2
    first, second = (line for _, line in lines)
    assert isinstance(first, BatchRequestOutput) and isinstance(second, BatchRequestOutput)
    assert first.response is not None and first.response is not msgspec.UNSET
    assert first.response.status_code == 200
    assert second.error is not None and second.error is not msgspec.UNSET
    assert second.error.code == "batch_expired"

    broken = content_exchange(BATCH_OUTPUT + b'{"id": "batch_req_3", "response": {}}\n')
    view.describe(broken)
    assert len(broken.notes) == 1
    assert broken.notes[0].startswith("batch output file: line 3 did not decode as ")
    assert "custom_id" in broken.notes[0]

    other = content_exchange(b"plain text, not a batch file\n")
    view.describe(other)
    assert other.notes == [] and view.batch_output_lines(other) is None


def test_every_corpus_multipart_request_decodes_into_its_form_type() -> None:
    view = TypedView()
    decoded: list[str] = []
    failures: list[str] = []
    for record in load_corpus():
        exchange = as_exchange(record)
        content_type = record.request.headers.get("content-type") or next(
            (v for k, v in record.request.headers.items() if k.lower() == "content-type"), ""
        )
        if not content_type.lower().startswith("multipart/form-data"):
            continue
        form = view.request_form(exchange)
        route = view.routes.resolve(exchange.method, exchange.path)
        assert route is not None and route.route.form is not None, record.id
        if not isinstance(form, route.route.form):
            failures.append(f"{record.id}: {type(form).__name__}")
        failures += [f"{record.id}: {note}" for note in exchange.notes]
        decoded.append(record.id)
    assert not failures, "\n".join(failures)
    assert len(decoded) == 21

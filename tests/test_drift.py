"""`cassette-proxy drift`: fields, enum values, tags and event types the generated types lack."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.drift import DriftScanner
from proxy.exchange import Exchange
from proxy.schemas.enums import ENUMS
from proxy.store import CassetteStore
from tests.support.corpus import load_corpus
from tests.support.exchanges import stored_exchange
from tests.test_typed_view import as_exchange

CHAT_REQUEST = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
# An unknown field on the message and an unknown finish reason.
CHAT_RESPONSE = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"hi","refusal":null,'
    b'"sparkle":true},"finish_reason":"daydream","logprobs":null}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
)
RESPONSES_REQUEST = b'{"model":"gpt-5","input":"hi","stream":true}'
RESPONSES_EVENTS = [
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
    b'"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi","sequence_number":1}\n\n',
    b'event: response.reticulating\ndata: {"type":"response.reticulating","sequence_number":2}\n\n',
    b'event: response.reticulating\ndata: {"type":"response.reticulating","sequence_number":3}\n\n',
]
EMBEDDINGS_REQUEST = b'{"model":"text-embedding-3-small","input":"x"}'
EMBEDDINGS_RESPONSE = (
    b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-0.25]}],'
    b'"model":"text-embedding-3-small","usage":{"prompt_tokens":1,"total_tokens":1}}'
)


def _exchange(
    exchange_id: int,
    path: str,
    request: bytes,
    body: bytes = b"",
    events: list[bytes] | None = None,
) -> Exchange:
    return stored_exchange(path, request, exchange_id=exchange_id, body=body, events=events)


def _record(path: Path, exchanges: list[Exchange]) -> None:
    async def write() -> None:
        store, _ = await CassetteStore.open(path)
        store.start()
        for exchange in exchanges:
            store.submit(exchange)
        await store.close()

    asyncio.run(write())


def _drift_json(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    assert main(["drift", "--cassette", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    items = json.loads(out)
    assert isinstance(items, list)
    return items


def test_drift_reports_unknown_fields_enum_values_and_event_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cassette = tmp_path / "drift.db"
    _record(
        cassette,
        [
            _exchange(1, "/v1/chat/completions", CHAT_REQUEST, CHAT_RESPONSE),
            _exchange(2, "/v1/responses", RESPONSES_REQUEST, events=RESPONSES_EVENTS),
            _exchange(3, "/v1/embeddings", EMBEDDINGS_REQUEST, EMBEDDINGS_RESPONSE),
            _exchange(4, "/v1/chat/completions", CHAT_REQUEST, CHAT_RESPONSE),
        ],
    )
    assert "daydream" not in ENUMS["CreateChatCompletionResponseChoices", "finish_reason"]

    items = _drift_json(cassette, capsys)

    # By count, then location.
    assert items == [
        {
            "kind": "field",
            "location": "ChatCompletionResponseMessage.sparkle",
            "value": None,
            "count": 2,
            "example": 1,
        },
        {
            "kind": "enum",
            "location": "CreateChatCompletionResponseChoices.finish_reason",
            "value": "daydream",
            "count": 2,
            "example": 1,
        },
        {
            "kind": "event",
            "location": "POST /v1/responses",
            "value": "response.reticulating",
            "count": 2,
            "example": 2,
        },
    ]
    assert not any(item["example"] == 3 for item in items)  # the embeddings exchange is clean


def test_drift_table_and_clean_cassette(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cassette = tmp_path / "clean.db"
    _record(cassette, [_exchange(1, "/v1/embeddings", EMBEDDINGS_REQUEST, EMBEDDINGS_RESPONSE)])
    assert _drift_json(cassette, capsys) == []
    assert main(["drift", "--cassette", str(cassette)]) == 0
    assert capsys.readouterr().out.startswith("no drift")

    drifted = tmp_path / "drifted.db"
    _record(drifted, [_exchange(1, "/v1/chat/completions", CHAT_REQUEST, CHAT_RESPONSE)])
    assert main(["drift", "--cassette", str(drifted)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["COUNT", "KIND", "LOCATION", "VALUE", "EXAMPLE"]
    assert lines[1].split() == ["1", "field", "ChatCompletionResponseMessage.sparkle", "#1"]
    assert lines[-1] == "2 items: 1 field, 1 enum, 0 tag, 0 event"


def test_drift_on_a_missing_or_invalid_cassette_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "missing.db"
    assert main(["drift", "--cassette", str(missing)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"cassette-proxy: drift: no cassette at {missing}\n"
    assert not missing.parent.exists()  # nothing was created

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a SQLite database, not even close" * 100)
    assert main(["drift", "--cassette", str(garbage)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("cassette-proxy: drift: ")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_drift_over_the_corpus_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = load_corpus()
    exchanges = []
    for number, record in enumerate(records, start=1):
        exchange = as_exchange(record)
        exchange.id = number
        exchanges.append(exchange)
    cassette = tmp_path / "corpus.db"
    _record(cassette, exchanges)
    items = _drift_json(cassette, capsys)
    for item in items:
        assert item["kind"] in ("field", "enum", "tag", "event")
        assert isinstance(item["count"], int) and item["count"] >= 1
        assert 1 <= int(str(item["example"])) <= len(records)


def test_unknown_tags_and_request_fields_are_found_at_depth() -> None:
    request = b'{"model":"gpt-5","input":"hi","mystery":1}'
    response = (
        b'{"id":"resp_1","object":"response","status":"completed","output":['
        b'{"type":"new_item","id":"x"},'
        b'{"type":"message","id":"m","role":"assistant","status":"completed",'
        b'"content":[{"type":"output_text","text":"hi","annotations":[],"zzz":1}]}]}'
    )
    scanner = DriftScanner()
    scanner.scan(_exchange(7, "/v1/responses", request, response))
    found = [(i.kind, i.location, i.value, i.count, i.example) for i in scanner.items()]
    assert found == [
        ("field", "CreateResponse.mystery", None, 1, 7),
        ("field", "OutputTextContent.zzz", None, 1, 7),
        ("tag", "Response.output", "new_item", 1, 7),
    ]

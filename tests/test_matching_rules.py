"""Canonical request form and miss explanations (pure functions, no servers needed)."""

from __future__ import annotations

from proxy.config import MatchingConfig
from proxy.matching import Canonical, MatchRules, differences


def rules(**config: list[str]) -> MatchRules:
    return MatchRules(MatchingConfig(**config))


def key(r: MatchRules, body: bytes, query: str = "", content_type: str = "application/json") -> str:
    return r.key(r.canonical("POST", "/v1/chat/completions", query, [], content_type, body))


def multipart(boundary: str, fields: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, content in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content
        out += b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_json_matches_by_value_not_bytes() -> None:
    r = rules()
    a = key(r, b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    b = key(r, b'{"messages":[{"content":"hi","role":"user"}],"model":"m"}')
    assert a == b
    assert a.startswith("sha256:")
    # array order is kept
    c = key(
        r,
        b'{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"user","content":"x"}]}',
    )
    d = key(
        r,
        b'{"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","content":"hi"}]}',
    )
    assert c != d


def test_query_is_sorted_and_ignored_params_dropped() -> None:
    r = rules(ignore_query_params=["api-version"])
    assert key(r, b"", "b=2&a=1&api-version=1") == key(r, b"", "a=1&b=2&api-version=2")
    assert key(r, b"", "a=1") != key(r, b"", "a=2")


def test_ignored_json_paths() -> None:
    r = rules(ignore_json_paths=["body.user", "body.messages[*].name", "metadata.run"])
    a = key(r, b'{"user":"a","metadata":{"run":1,"k":1},"messages":[{"name":"x","content":"c"}]}')
    b = key(r, b'{"user":"b","metadata":{"run":2,"k":1},"messages":[{"name":"y","content":"c"}]}')
    assert a == b
    c = key(r, b'{"user":"b","metadata":{"run":2,"k":2},"messages":[{"name":"y","content":"c"}]}')
    assert a != c


def test_multipart_matches_by_fields_and_file_digest_never_boundary() -> None:
    r = rules()
    fields = [("model", None, b"whisper-1"), ("file", "a.wav", b"RIFF\x00\x01binary")]
    one = key(r, multipart("b1", fields), content_type="multipart/form-data; boundary=b1")
    two = key(r, multipart("zz9", fields), content_type="multipart/form-data; boundary=zz9")
    assert one == two
    changed = [("model", None, b"whisper-1"), ("file", "a.wav", b"RIFF\x00\x02binary")]
    three = key(r, multipart("b1", changed), content_type="multipart/form-data; boundary=b1")
    assert three != one


def test_a_text_fields_content_type_is_not_matched() -> None:
    # Some clients label every form field `text/plain`; the API receives the same value.
    r = rules()
    plain = multipart("b1", [("model", None, b"whisper-1"), ("file", "a.wav", b"RIFF")])
    labelled = plain.replace(
        b'name="model"\r\n', b'name="model"\r\nContent-Type: text/plain; charset=utf-8\r\n'
    )
    assert labelled != plain
    content_type = "multipart/form-data; boundary=b1"
    assert key(r, labelled, content_type=content_type) == key(r, plain, content_type=content_type)


def test_a_quoted_file_name_is_read_whole() -> None:
    # A `;` inside the quotes is part of the name, not the start of another parameter.
    r = rules()
    content_type = "multipart/form-data; boundary=b1"
    one = multipart("b1", [("file", "take;1.wav", b"RIFF")])
    two = multipart("b1", [("file", "take;2.wav", b"RIFF")])
    assert key(r, one, content_type=content_type) != key(r, two, content_type=content_type)
    live = r.canonical("POST", "/v1/audio/transcriptions", "", [], content_type, one)
    recorded = r.canonical("POST", "/v1/audio/transcriptions", "", [], content_type, two)
    assert [d.describe() for d in differences(live, recorded)] == [
        'body.file.filename: "take;1.wav" != "take;2.wav"'
    ]


def test_other_bodies_match_by_bytes() -> None:
    r = rules()
    assert key(r, b"abc", content_type="text/plain") == key(r, b"abc", content_type="text/plain")
    assert key(r, b"abc", content_type="text/plain") != key(r, b"abd", content_type="text/plain")


def test_headers_only_when_configured() -> None:
    def canon(r: MatchRules, value: str) -> str:
        return r.key(r.canonical("GET", "/v1/models", "", [("OpenAI-Beta", value)], None, b""))

    assert canon(rules(), "a") == canon(rules(), "b")
    assert canon(rules(headers=["openai-beta"]), "a") != canon(rules(headers=["openai-beta"]), "b")


def test_differences_name_json_paths_live_value_first() -> None:
    r = rules()
    live = r.canonical(
        "POST", "/v1/chat/completions", "", [], "application/json",
        b'{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}',
    )  # fmt: skip
    recorded = r.canonical(
        "POST", "/v1/chat/completions", "", [], "application/json",
        b'{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hello"}],"n":2}',
    )  # fmt: skip
    found = differences(live, recorded)
    assert [d.describe() for d in found] == [
        'body.messages[1].content: "hi" != "hello"',
        "body.n: <absent> != 2",
    ]


def test_json_numbers_match_by_value_and_a_boolean_is_never_a_number() -> None:
    """One rule for keys and explanations: a key differs exactly when a difference is named."""
    r = rules()

    def canon(temperature: str, logprobs: str, nested: str = "true") -> Canonical:
        body = '{"model": "m", "temperature": %s, "logprobs": %s, "tools": [{"strict": %s}]}'
        raw = (body % (temperature, logprobs, nested)).encode()
        return r.canonical("POST", "/v1/chat/completions", "", [], "application/json", raw)

    recorded = canon("1", "true")
    for same in (canon("1.0", "true"), canon("1e0", "true"), canon("10E-1", "true")):
        assert r.key(same) == r.key(recorded)
        assert differences(same, recorded) == []
    assert r.key(canon("-0.0", "true")) == r.key(canon("0", "true"))

    cases = [
        (canon("1.5", "true"), "body.temperature: 1.5 != 1"),
        (canon("1", "1"), "body.logprobs: 1 != true"),
        (canon("1", "1.0"), "body.logprobs: 1 != true"),
        (canon("1", "true", nested="1"), "body.tools[0].strict: 1 != true"),
    ]
    for live, named in cases:
        assert r.key(live) != r.key(recorded)
        assert [d.describe() for d in differences(live, recorded)] == [named]


def test_a_long_value_is_shown_where_it_differs() -> None:
    # Cut at the same width, two long system prompts differing near their end looked the same.
    prompt = "You are a helpful assistant for ACME Corp. Answer briefly and politely. Today is "
    rules = MatchRules(MatchingConfig())

    def body(day: str) -> Canonical:
        data = f'{{"messages": [{{"role": "system", "content": "{prompt}2026-11-{day}."}}]}}'
        return rules.canonical("POST", "/v1/chat/completions", "", [], "application/json",
                               data.encode())  # fmt: skip

    (found,) = differences(body("25"), body("24"))
    assert found.describe() == (
        'body.messages[0].content: …d politely. Today is 2026-11-25." != '
        '…d politely. Today is 2026-11-24."'
    )


def test_a_multipart_difference_names_the_form_field() -> None:
    rules = MatchRules(MatchingConfig())

    def upload(language: str, audio: bytes) -> Canonical:
        body = (
            b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            b'--b\r\nContent-Disposition: form-data; name="language"\r\n\r\n'
            + language.encode()
            + b'\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n" + audio + b"\r\n--b--\r\n"
        )
        return rules.canonical("POST", "/v1/audio/transcriptions", "", [],
                               "multipart/form-data; boundary=b", body)  # fmt: skip

    found = [d.describe() for d in differences(upload("de", b"RIFF1"), upload("en", b"RIFF22"))]
    assert found[0].startswith('body.file.sha256: "')
    assert found[1:] == ["body.file.size: 5 != 6", 'body.language: "de" != "en"']

"""Canonical request form, match keys, and the explanation of a miss.

Two requests match when their canonical forms are equal: method, path, sorted query (minus ignored
parameters), the configured headers, and the body — JSON by value (key order ignored, array order
kept, numbers by numeric value so `1` and `1.0` are one value, `true` never a number), multipart by
its fields and file digests (never the boundary), anything else by its bytes. The explanation of a
miss (`differences`) follows the same rule, so it names a field whenever the keys differ.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from proxy import multipart
from proxy.config import MatchingConfig
from proxy.media import essence

KEY_ALGORITHM = "sha256"
Json = Any
_PATH_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(\d+|\*)\]")


class Canonical(msgspec.Struct, array_like=True):
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: Json


class MatchRules:
    """Compiled matching configuration."""

    def __init__(self, config: MatchingConfig) -> None:
        self.ignored_query = frozenset(config.ignore_query_params)
        self.headers = tuple(sorted(h.lower() for h in config.headers))
        self.ignored_paths = tuple(_parse_path(p) for p in config.ignore_json_paths)
        self._encoder = msgspec.json.Encoder(order="sorted")
        self._json = msgspec.json.Decoder(float_hook=_json_number)

    def canonical(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        content_type: str | None,
        body: bytes,
    ) -> Canonical:
        return Canonical(
            method,
            path,
            self._query(query) if query else [],
            self._headers(headers) if self.headers else [],
            self._body(content_type, body),
        )

    def key(self, canonical: Canonical) -> str:
        digest = hashlib.sha256(self._encoder.encode(canonical)).hexdigest()
        return f"{KEY_ALGORITHM}:{digest}"

    def _query(self, query: str) -> list[tuple[str, str]]:
        return sorted(
            (k, v)
            for k, v in parse_qsl(query, keep_blank_values=True)
            if k not in self.ignored_query
        )

    def _headers(
        self, headers: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        return sorted((k.lower(), v) for k, v in pairs if k.lower() in self.headers)

    def _body(self, content_type: str | None, body: bytes) -> Json:
        if not body:
            return None
        # What the SDKs send needs no parsing (this runs for every request).
        media = content_type if content_type == "application/json" else essence(content_type)
        if media == "multipart/form-data":
            boundary = _boundary(content_type or "")
            if boundary:
                return {"multipart": multipart_fields(body, boundary)}
        if media.endswith("json") or (not media and body.lstrip()[:1] in (b"{", b"[")):
            try:
                value = self._json.decode(body)
            except msgspec.DecodeError:
                return {"sha256": hashlib.sha256(body).hexdigest()}
            for tokens in self.ignored_paths:
                value = _drop(value, tokens)
            return value
        return {"sha256": hashlib.sha256(body).hexdigest()}


def _json_number(text: str) -> int | float:
    """A JSON number written with a fraction or an exponent: an int when its value is integral,
    so that `1.0`, `1e0` and `1` have one canonical form (JSON numbers match by value)."""
    value = float(text)
    return int(value) if value.is_integer() else value


def _boundary(content_type: str) -> str | None:
    return multipart.boundary(content_type)


def multipart_fields(body: bytes, boundary: str) -> list[list[Json]]:
    """[name, filename, content type, text value or file digest] per part, sorted by name.

    A text field is its name and value: whether a client labels it `text/plain` is how that
    client writes forms (SDKs differ), not what the API is asked, so its content type is left out.
    """
    fields: list[list[Json]] = []
    for part in multipart.parts(body, boundary):
        if part.filename is None:
            value_repr: Json = part.content.decode("utf-8", "replace")
            content_type = None
        else:
            value_repr = {
                "sha256": hashlib.sha256(part.content).hexdigest(),
                "size": len(part.content),
            }
            content_type = part.content_type
        fields.append([part.name, part.filename, content_type, value_repr])
    fields.sort(key=lambda f: str(f[0]))
    return fields


def _parse_path(path: str) -> tuple[str | int, ...]:
    text = path[5:] if path.startswith("body.") else path
    tokens: list[str | int] = []
    for name, index in _PATH_TOKEN.findall(text):
        if name:
            tokens.append(name)
        else:
            tokens.append("*" if index == "*" else int(index))
    return tuple(tokens)


def _drop(value: Json, tokens: tuple[str | int, ...]) -> Json:
    if not tokens:
        return value
    head, rest = tokens[0], tokens[1:]
    if isinstance(value, dict) and isinstance(head, str):
        if head == "*":
            keys = list(value)
        elif head in value:
            keys = [head]
        else:
            return value
        for key in keys:
            if rest:
                value[key] = _drop(value[key], rest)
            else:
                del value[key]
    elif isinstance(value, list) and (head == "*" or isinstance(head, int)):
        if head == "*":
            indexes: Iterable[int] = range(len(value))
        else:
            indexes = [head] if isinstance(head, int) and head < len(value) else []
        if not rest:
            return [v for i, v in enumerate(value) if i not in indexes]
        for i in indexes:
            value[i] = _drop(value[i], rest)
    return value


class Difference(msgspec.Struct):
    path: str
    live: Json
    recorded: Json

    def describe(self) -> str:
        live, recorded = _text(self.live), _text(self.recorded)
        # Two long values cut at the same width would look the same: both are shown from a
        # little before the first character that differs.
        start = 0
        if max(len(live), len(recorded)) > _WIDTH:
            common = next(
                (i for i, (a, b) in enumerate(zip(live, recorded, strict=False)) if a != b),
                min(len(live), len(recorded)),
            )
            start = max(0, common - _CONTEXT)
        return f"{self.path}: {_window(live, start)} != {_window(recorded, start)}"


_MISSING = "<absent>"


def differences(live: Canonical, recorded: Canonical, limit: int = 50) -> list[Difference]:
    """Differing leaves between two canonical requests, in document order, at most `limit`."""
    found: list[Difference] = []
    for name, a, b in (
        ("method", live.method, recorded.method),
        ("path", live.path, recorded.path),
        ("query", _pairs_dict(live.query), _pairs_dict(recorded.query)),
        ("headers", _pairs_dict(live.headers), _pairs_dict(recorded.headers)),
        ("body", _by_field(live.body), _by_field(recorded.body)),
    ):
        _compare(a, b, name, found, limit)
    return found


def _by_field(body: Json) -> Json:
    """A multipart body as the miss message names it: by field name (`body.language`,
    `body.file.sha256`), not by its place among the sorted parts."""
    if not (isinstance(body, dict) and body.keys() == {"multipart"}):
        return body
    fields: dict[str, Json] = {}
    for name, filename, content_type, value in body["multipart"]:
        shown: Json = value
        if filename is not None:
            shown = {"filename": filename, "content_type": content_type, **value}
        key = str(name)
        if key in fields:  # a repeated field (`timestamp_granularities[]`): its values in order
            previous = fields[key]
            fields[key] = [*previous, shown] if isinstance(previous, list) else [previous, shown]
        else:
            fields[key] = shown
    return fields


def _pairs_dict(pairs: list[tuple[str, str]]) -> dict[str, Json]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def _compare(a: Json, b: Json, path: str, found: list[Difference], limit: int) -> None:
    if len(found) >= limit or _same(a, b):
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            sub = f"{path}.{key}" if _PATH_SAFE.fullmatch(str(key)) else f"{path}[{key!r}]"
            _compare(a.get(key, _MISSING), b.get(key, _MISSING), sub, found, limit)
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            left = a[i] if i < len(a) else _MISSING
            right = b[i] if i < len(b) else _MISSING
            _compare(left, right, f"{path}[{i}]", found, limit)
    else:
        found.append(Difference(path, a, b))


def _same(a: Json, b: Json) -> bool:
    """Equal as canonical JSON values, as the match key sees them: Python's `==` (numbers by
    value; the canonical form already made integral floats ints), except that a boolean is never
    a number (in Python `True == 1`)."""
    if a != b:
        return False
    if isinstance(a, dict | list):
        # A `true` against a `1` somewhere inside: the encodings tell, at C speed.
        return msgspec.json.encode(a, order="sorted") == msgspec.json.encode(b, order="sorted")
    return isinstance(a, bool) is isinstance(b, bool)


_PATH_SAFE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


_WIDTH = 80  # characters of a value a miss message shows
_CONTEXT = 30  # of them, before the first that differs


def _text(value: Json) -> str:
    return value if value is _MISSING else msgspec.json.encode(value).decode()


def _window(text: str, start: int) -> str:
    if start == 0 and len(text) <= _WIDTH:
        return text
    head = "…" if start else ""
    shown = text[start : start + _WIDTH - len(head)]
    tail = "…" if start + len(shown) < len(text) else ""
    return head + shown[: _WIDTH - len(head) - len(tail)] + tail

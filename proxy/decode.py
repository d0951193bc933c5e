"""The typed view of an exchange: route table → generated structs → typed columns.

Runs in the cassette writer, after the client has its response. The raw bytes stay the record: a
body the types cannot decode only adds a note to the exchange; it never fails anything.

Multipart requests are parsed into form values (:mod:`proxy.forms`) and converted to the
route's form struct (`Route.form`); Batch API files — a JSONL upload with purpose `batch` and
JSONL file content of a batch's output — are decoded line by line (:mod:`proxy.batchfiles`).
A success response is read as what its `Content-Type` names, else as what the route declares
(`Route.kind`): JSON with the route's type, text and binary bodies described by
:class:`~proxy.media.TextBody` and :class:`~proxy.media.BinaryBody` (:mod:`proxy.media`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from proxy import batchfiles, multipart
from proxy.exchange import Exchange, Usage
from proxy.forms import form_values
from proxy.headers import header_value
from proxy.media import BinaryBody, TextBody, binary_body, media_kind, text_body
from proxy.sse import parse_event

if TYPE_CHECKING:
    from proxy.schemas.routes import Route

API_PREFIX = "/v1"
CREATE_FILE = "createFile"  # POST /files: a batch input file is uploaded with purpose `batch`
RETRIEVE_FILE_CONTENT = "downloadFile"  # GET /files/{file_id}/content
AZURE_PREFIX = ("openai", "deployments")  # /openai/deployments/{deployment}/... ?api-version=
RESOLVED_PATHS = 4096  # (method, path) pairs remembered by RouteTable.resolve
_UNRESOLVED = object()
_FINAL_STATUSES = frozenset(("completed", "incomplete", "failed", "cancelled"))


class _Compiled(NamedTuple):
    route: Route
    template: str


class _Node:
    """One path segment of the route trie: literal children, a `{parameter}` child, operations."""

    __slots__ = ("literal", "operations", "parameter")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        self.parameter: _Node | None = None
        self.operations: dict[str, _Compiled] = {}


class RouteTable:
    """Resolves a concrete path (OpenAI or Azure OpenAI form) to the spec operation it calls."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._root = _Node()
        # Resolved per exchange written: the same few paths again and again.
        self._resolved: dict[tuple[str, str], _Compiled | None] = {}
        for route in routes:
            node = self._root
            # The spec lists some operations twice, once as `…?beta=true`: the first one wins.
            template = route.path.split("?")[0]
            for part in template.strip("/").split("/"):
                if part.startswith("{"):
                    node.parameter = node.parameter or _Node()
                    node = node.parameter
                else:
                    node = node.literal.setdefault(part, _Node())
            node.operations.setdefault(route.method, _Compiled(route, API_PREFIX + template))

    def resolve(self, method: str, path: str) -> _Compiled | None:
        key = (method, path)
        found = self._resolved.get(key, _UNRESOLVED)
        if found is _UNRESOLVED:
            if len(self._resolved) >= RESOLVED_PATHS:
                self._resolved.clear()  # paths carrying ids are endless; the usual few come back
            found = self._resolved[key] = self._resolve(method, path)
        return found  # type: ignore[return-value]

    def _resolve(self, method: str, path: str) -> _Compiled | None:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["v1"]:
            parts = parts[1:]
        elif tuple(parts[:2]) == AZURE_PREFIX and len(parts) > 3:
            parts = parts[3:]
        return self._walk(self._root, parts, 0, method.upper())

    def _walk(self, node: _Node, parts: list[str], depth: int, method: str) -> _Compiled | None:
        if depth == len(parts):
            return node.operations.get(method)
        # Literal segments first: /responses/compact wins over /responses/{response_id}.
        child = node.literal.get(parts[depth])
        if child is not None:
            found = self._walk(child, parts, depth + 1, method)
            if found is not None:
                return found
        if node.parameter is not None:
            return self._walk(node.parameter, parts, depth + 1, method)
        return None


def _field(obj: Any, name: str) -> Any:
    """`_value` of one attribute, without the loop."""
    value = getattr(obj, name, None)
    return None if value is msgspec.UNSET else value


def _value(obj: Any, *names: str) -> Any:
    """Walk attributes of decoded structs; None where a field is absent, null or untyped."""
    for name in names:
        obj = getattr(obj, name, None)
        if obj is None or obj is msgspec.UNSET:
            return None
    return obj


class TypedView:
    def __init__(self) -> None:
        self._routes: RouteTable | None = None
        self._decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
        self._form_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}

    @property
    def routes(self) -> RouteTable:
        """Built on first use: importing the generated types takes ~0.2 s, and a proxy that
        only replays never decodes anything."""
        if self._routes is None:
            from proxy.schemas.routes import ROUTES

            self._routes = RouteTable(ROUTES)
        return self._routes

    def load_types(self) -> None:
        self.routes  # noqa: B018 -- the property imports them

    def describe(self, exchange: Exchange) -> None:
        """Fill `endpoint` and the typed columns; record any decode failure as a note."""
        compiled = self.routes.resolve(exchange.method, exchange.path)
        if compiled is None:
            return
        exchange.endpoint = compiled.template
        route = compiled.route
        usage = exchange.usage
        if route.request is not None and exchange.request_body and is_json_request(exchange):
            request = self._decode(exchange, "request", route.request, exchange.request_body)
            usage.model = _value(request, "model")
        elif route.form is not None and exchange.request_body:
            form = self.request_form(exchange, route)
            usage.model = _value(form, "model")
        if exchange.status >= 400:
            error = self._decode_if_json(exchange, "error", route.error or _error_type())
            usage.error_type = _value(error, "error", "type")
            usage.error_code = _value(error, "error", "code")
            if error is None and not exchange.content_encoding:
                # Not OpenAI's shape (vLLM sends an integer `code`): its type and code still.
                _take_error(exchange.response_body, usage)
        elif exchange.stream:
            if route.stream is not None or route.events is not None:
                self._describe_stream(exchange, route, usage)
        else:
            self._take_result(self.response_value(exchange, route), usage)
            if route.operation_id == RETRIEVE_FILE_CONTENT:
                self.batch_output_lines(exchange)

    def response_value(self, exchange: Exchange, route: Route | None = None) -> Any:
        """A success response that is not a stream, typed: the route's JSON type, or a
        `TextBody` / `BinaryBody` description. The response's `Content-Type` decides what the
        body is, the route's declared media (`Route.kind`) when it has none. None for an error,
        a stream, an empty or still compressed body, or JSON the route has no type for; a note
        when the body does not decode as what it is."""
        route = route or self._route(exchange)
        body = exchange.response_body
        # A body left compressed (`content_encoding`) is not the body's bytes: not described.
        if route is None or exchange.status >= 400 or exchange.stream or not body:
            return None
        if exchange.content_encoding:
            return None
        content_type = header_value(exchange.response_headers, "content-type")
        kind = media_kind(content_type) or route.kind
        if kind == "json" and route.response is not None:
            return self._decode(exchange, "response", route.response, body)
        if kind == "text":
            return self._text(exchange, content_type, body)
        if kind == "binary":
            return binary_body(content_type, body)
        return None

    @staticmethod
    def _text(exchange: Exchange, content_type: str | None, body: bytes) -> TextBody | BinaryBody:
        try:
            return text_body(content_type, body)
        except (UnicodeDecodeError, LookupError) as exc:
            exchange.notes.append(f"response is not text in its charset: {exc}")
            return binary_body(content_type, body)

    def _route(self, exchange: Exchange) -> Route | None:
        compiled = self.routes.resolve(exchange.method, exchange.path)
        return compiled.route if compiled is not None else None

    def request_form(self, exchange: Exchange, route: Route | None = None) -> Any:
        """The multipart request as the route's form struct; None (and a note when it is
        multipart but does not convert) otherwise. A batch upload's file is decoded too."""
        route = route or self._route(exchange)
        content_type = header_value(exchange.request_headers, "content-type")
        boundary = multipart.boundary(content_type or "")
        if route is None or route.form is None or not multipart.is_form_data(content_type):
            return None
        if boundary is None:
            exchange.notes.append("request is multipart without a boundary")
            return None
        parts = multipart.parts(exchange.request_body, boundary)
        # Through JSON rather than `msgspec.convert`: fields kept as `msgspec.Raw` need it.
        decoder = self._form_decoders.get(route.form)
        if decoder is None:
            decoder = self._form_decoders[route.form] = msgspec.json.Decoder(
                route.form, strict=False
            )
        try:
            form = decoder.decode(msgspec.json.encode(form_values(parts)))
        except msgspec.DecodeError as exc:
            exchange.notes.append(f"request form did not decode as {_name(route.form)}: {exc}")
            return None
        if route.operation_id == CREATE_FILE and _value(form, "purpose") == "batch":
            for part in parts:
                if part.name == "file" and part.filename is not None:
                    self.batch_input_lines(exchange, part.content)
        return form

    def batch_input_lines(self, exchange: Exchange, data: bytes) -> list[tuple[int, Any]]:
        """A batch input file's lines; a line that does not decode, or whose `body` does not
        decode as the request of the operation its `method` and `url` name, gets a note."""
        lines, problems = batchfiles.decode_lines(data, output=False)
        exchange.notes += [f"batch input file: {p}" for p in problems]
        for number, line in lines:
            compiled = self.routes.resolve(line.method, line.url.split("?")[0])
            request = compiled.route.request if compiled is not None else None
            if request is None or line.body is msgspec.UNSET:
                continue
            self._decode(
                exchange,
                f"batch input file: body of line {number} ({line.custom_id})",
                request,
                msgspec.json.encode(line.body),
            )
        return lines

    def batch_output_lines(self, exchange: Exchange) -> list[tuple[int, Any]] | None:
        """File content that is a batch's output, line by line (None for any other content)."""
        body = exchange.response_body
        if exchange.status >= 400 or exchange.content_encoding or not body:
            return None
        if not batchfiles.output_like(body):
            return None
        lines, problems = batchfiles.decode_lines(body, output=True)
        exchange.notes += [f"batch output file: {p}" for p in problems]
        return lines

    def _describe_stream(self, exchange: Exchange, route: Route, usage: Usage) -> None:
        """Decode each event's data: with `route.stream`, or, for streams tagged by the SSE
        `event:` name (Assistants runs), with the type `route.events` gives that name."""
        for index, event in enumerate(exchange.events):
            parsed = parse_event(event.data)
            if parsed is None or not parsed.data or parsed.data == "[DONE]":
                continue
            event_type = route.stream
            if route.events is not None:
                event_type = route.events.get(parsed.event or "")
            if event_type is None:
                continue  # an event name the spec does not list: kept raw, not an error
            data = parsed.data.encode("utf-8")
            decoded = self._decode(exchange, f"event {index}", event_type, data)
            self._take_result(_value(decoded, "response") or decoded, usage)
            if b'"error"' in data:
                # An error sent inside a 200 stream: a Responses `error` event, or a chat chunk
                # that is an error object (the SDKs raise it), which the chunk type does not hold.
                _take_error(data, usage)

    @staticmethod
    def _take_result(result: Any, usage: Usage) -> None:
        """Model, tokens, finish reason and error from a response, a stream chunk or an event."""
        if result is None:
            return
        # Written out field by field: this runs for every exchange recorded (and every event).
        usage.model = _field(result, "model") or usage.model
        for choice in _field(result, "choices") or ():
            reason = _field(choice, "finish_reason")
            if reason:
                usage.finish_reason = reason
        status = _field(result, "status")
        if isinstance(status, str) and status in _FINAL_STATUSES:
            reason = _value(result, "incomplete_details", "reason")
            usage.finish_reason = f"{status}:{reason}" if reason else status
        error = _field(result, "error")
        if error is not None:
            error_code = _field(error, "code")
            if error_code:
                usage.error_code = error_code
        counts = _field(result, "usage")
        if counts is None:
            return
        usage.audio_seconds = _field(counts, "seconds")  # usage of type `duration`
        # Chat and embeddings count prompt/completion tokens; Responses counts input/output.
        usage.input_tokens = _either(counts, "input_tokens", "prompt_tokens")
        usage.output_tokens = _either(counts, "output_tokens", "completion_tokens")
        usage.cached_tokens = _field(
            _either(counts, "input_tokens_details", "prompt_tokens_details"), "cached_tokens"
        )
        usage.reasoning_tokens = _field(
            _either(counts, "output_tokens_details", "completion_tokens_details"),
            "reasoning_tokens",
        )

    def _decode_if_json(self, exchange: Exchange, what: str, type_: Any) -> Any:
        content_type = header_value(exchange.response_headers, "content-type")
        if exchange.content_encoding or media_kind(content_type) != "json":
            return None
        return self._decode(exchange, what, type_, exchange.response_body)

    def _decode(self, exchange: Exchange, what: str, type_: Any, data: bytes) -> Any:
        decoder = self._decoders.get(type_)
        if decoder is None:
            decoder = self._decoders[type_] = msgspec.json.Decoder(type_)
        try:
            return decoder.decode(data)
        except msgspec.DecodeError as exc:
            exchange.notes.append(f"{what} did not decode as {_name(type_)}: {exc}")
            return None


def is_json_request(exchange: Exchange) -> bool:
    """Whether the request body is JSON (some operations also take multipart uploads)."""
    content_type = header_value(exchange.request_headers, "content-type")
    return content_type is None or "json" in content_type.lower()


def _either(obj: Any, name: str, other: str) -> Any:
    """Field `name` of a decoded struct, or field `other` where `name` is absent or null."""
    value = _field(obj, name)
    return value if value is not None else _field(obj, other)


def _name(type_: Any) -> str:
    return getattr(type_, "__name__", None) or str(type_)


def _take_error(data: bytes, usage: Usage) -> None:
    """Error type and code from JSON that is `{"error": {...}}` or a `{"type": "error", ...}`
    event, read untyped: a code may be a number, which is kept as its text."""
    try:
        value = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return
    if not isinstance(value, dict):
        return
    error = value.get("error")
    if isinstance(error, dict):
        found = error
    elif value.get("type") == "error":
        found = value
    else:
        return
    kind, code = found.get("type"), found.get("code")
    if isinstance(kind, str) and kind != "error":
        usage.error_type = kind
    if isinstance(code, (str, int)) and not isinstance(code, bool) and code != "":
        usage.error_code = str(code)


def _error_type() -> Any:
    from proxy.schemas.errors import ErrorResponse

    return ErrorResponse

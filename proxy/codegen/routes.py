"""The route table: every operation of the spec, with the generated types that decode it."""

from __future__ import annotations

import re

from proxy.codegen.bodies import route_row
from proxy.codegen.emit import Header, literal, render_data_module
from proxy.codegen.layout import Call, call_lines
from proxy.codegen.loader import Spec
from proxy.codegen.plan import Plan
from proxy.media import route_kind

#: The error envelope (`{"error": {...}}`) of every OpenAI error response. A few operations
#: declare the bare inner object for a 404 in the spec, but the API sends the envelope
#: everywhere; with lenient structs the wrong type would decode silently and lose data.
DEFAULT_ERROR_SCHEMA = "ErrorResponse"

DOC = """\
Every operation of the OpenAPI spec as data.

`ROUTES` has one `Route` per operation, sorted by path then method: the HTTP method in upper
case, the path template exactly as the spec writes it (relative to the `/v1` base URL), the
operationId, and direct references to the generated types that decode the request body
(`request`), the JSON response body (`response`), the JSON in each server-sent event's
`data:` line (`stream`) and an error body (`error`, the `{"error": {...}}` envelope for every
operation, whatever the spec declares per status).

Streams whose events are told apart by the SSE `event:` name rather than by a JSON field
(Assistants runs) have `stream` set to `None` and `events` set to a mapping from event name to
the type of that event's `data:` (an event not in the mapping is not typed; the closing `done`
event's `data: [DONE]` is not JSON). `events` is `None` for every other operation.

Operations that take a `multipart/form-data` request body (file uploads, upload parts, audio,
images, videos, skills, container files, realtime calls) have `form` set to the struct of that
form: one field per form field, typed as the spec types it, with each file part (a `format:
binary` property) typed `FormFile` (file name, content type, size and SHA-256 of the part, from
`_forms`). It is meant for `msgspec.convert(fields, form, strict=False)` over the parsed parts,
not for JSON. An operation that also accepts JSON keeps that body's type in `request`; `form`
is `None` for every operation without a multipart body.

A reference is `None` when that body is not JSON (or, for `form`, not multipart): binary and
text responses (audio, file and video content, zip archives, SDP), or a bare JSON string.
Types are references, not strings: a `Struct` class or a union alias, ready for
`msgspec.json.Decoder(...)`.

`media` lists the content types the spec declares for the success (2xx) responses, by status
then in declared order (with the event streams `proxy.codegen.overrides` adds); `kind` is what
the first of them that is not an event stream holds: `json`, `text` (`text/*`, SDP), `binary`
(audio, images, video, zip, octet streams); `sse` when an event stream is all it declares,
`none` when it declares no body (see `proxy.media.route_kind`)."""

ROUTE_CLASS = """\
class Route(NamedTuple):
    method: str
    path: str
    operation_id: str
    request: Any
    response: Any
    stream: Any
    error: Any
    events: Mapping[str, Any] | None
    form: Any = None
    media: tuple[str, ...] = ()
    kind: str = "none"
"""


def events_constant(schema: str) -> str:
    """The name of the module-level mapping for an event-named stream schema."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", schema).upper()


def _media_literal(media: tuple[str, ...]) -> str:
    items = ", ".join(literal(m) for m in media)
    return f"({items},)" if len(media) == 1 else f"({items})"


_METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")


def render_routes(spec: Spec, plan: Plan, header: Header) -> tuple[str, int]:
    """The text of ``routes.py`` and the number of operations in it."""
    rows = sorted(
        (route_row(spec, op) for op in spec.operations()),
        key=lambda r: (r.path, _METHOD_ORDER.index(r.method), r.operation_id),
    )
    imports: dict[str, set[str]] = {}

    def ref(schema: str | None) -> str:
        if schema is None:
            return "None"
        key = plan.lookup_schema(schema)
        if key is None:
            return "None"
        name = plan.name_of(key)
        imports.setdefault(plan.module_of(key), set()).add(name)
        return name

    body = [*ROUTE_CLASS.splitlines(), "", ""]
    constants: dict[str, str] = {}
    for row in rows:
        if row.events is not None and row.stream is not None and row.stream not in constants:
            constants[row.stream] = events_constant(row.stream)
            body.append(f"{constants[row.stream]}: Mapping[str, Any] = {{")
            body += [f"    {literal(name)}: {ref(schema)}," for name, schema in row.events]
            body += ["}", ""]
    if constants:
        body.append("")
    body.append("ROUTES: tuple[Route, ...] = (")
    for row in rows:
        events = constants[row.stream] if row.events is not None and row.stream else "None"
        stream = None if row.events is not None else row.stream
        args = (
            literal(row.method),
            literal(row.path),
            literal(row.operation_id),
            ref(row.request),
            ref(row.response),
            ref(stream),
            ref(DEFAULT_ERROR_SCHEMA),
            events,
            ref(row.form),
            _media_literal(row.media),
            literal(route_kind(row.media)),
        )
        body += call_lines(Call("Route", args), "    ", "", ",")
    body.append(")")
    text = render_data_module(header, DOC, body, imports, {"Any", "NamedTuple"})
    text = text.replace(
        "from typing import Any, NamedTuple\n",
        "from collections.abc import Mapping\nfrom typing import Any, NamedTuple\n",
    )
    return text, len(rows)

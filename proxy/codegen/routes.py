"""The route table: every operation of the spec, with the generated types that decode it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxy.codegen.emit import Header, literal, render_data_module
from proxy.codegen.layout import Call, call_lines
from proxy.codegen.loader import SCHEMAS_POINTER, Node, Operation, Spec
from proxy.codegen.plan import Plan

JSON = "application/json"
SSE = "text/event-stream"
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
operation, whatever the spec declares per status). A reference is `None` when that body has no
generated type yet (its API group is not emitted) or is not JSON. Types are
references, not strings: a `Struct` class or a union alias, ready for
`msgspec.json.Decoder(...)`."""

ROUTE_CLASS = """\
class Route(NamedTuple):
    method: str
    path: str
    operation_id: str
    request: Any
    response: Any
    stream: Any
    error: Any"""


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One operation and the schema names of its bodies."""

    method: str
    path: str
    operation_id: str
    request: str | None
    response: str | None
    stream: str | None


def _schema_name(spec: Spec, media: Mapping[str, Node], content_type: str) -> str | None:
    entry = media.get(content_type)
    if not isinstance(entry, Mapping):
        return None
    schema = entry.get("schema")
    if not isinstance(schema, Mapping):
        return None
    ref = schema.get("$ref")
    prefix = SCHEMAS_POINTER + "/"
    if isinstance(ref, str) and ref.startswith(prefix):
        return ref[len(prefix) :]
    return None


def _deref(spec: Spec, node: Node) -> Node:
    ref = node.get("$ref")
    return spec.node(ref) if isinstance(ref, str) else node


def route_row(spec: Spec, op: Operation) -> RouteRow:
    """The schema names of an operation's JSON request body, 2xx JSON response and 2xx stream."""
    body = op.node.get("requestBody")
    request = None
    if isinstance(body, Mapping):
        request = _schema_name(spec, _deref(spec, body).get("content") or {}, JSON)
    response = stream = None
    for status, resp in sorted((op.node.get("responses") or {}).items(), key=lambda kv: str(kv[0])):
        content = _deref(spec, resp).get("content") or {}
        if str(status).startswith("2"):
            response = response or _schema_name(spec, content, JSON)
            stream = stream or _schema_name(spec, content, SSE)
    operation_id = str(op.node.get("operationId") or "")
    return RouteRow(op.method, op.path, operation_id, request, response, stream)


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

    body = [*ROUTE_CLASS.splitlines(), "", "", "ROUTES: tuple[Route, ...] = ("]
    for row in rows:
        args = (
            literal(row.method),
            literal(row.path),
            literal(row.operation_id),
            ref(row.request),
            ref(row.response),
            ref(row.stream),
            ref(DEFAULT_ERROR_SCHEMA),
        )
        body += call_lines(Call("Route", args), "    ", "", ",")
    body.append(")")
    text = render_data_module(header, DOC, body, imports, {"Any", "NamedTuple"})
    return text, len(rows)

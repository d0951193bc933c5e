"""Which component schemas an operation's bodies use: JSON request, JSON response, stream, and
the multipart form of a request sent as ``multipart/form-data``.

Shared by the grouping (:mod:`~proxy.codegen.groups`, whose roots these schemas are) and the
route table (:mod:`~proxy.codegen.routes`). Multipart, binary and text bodies have no schema
here: only ``application/json``, ``text/event-stream`` and ``multipart/form-data`` content is
looked at (a multipart schema's ``format: binary`` properties become ``FormFile``); the media
types of the success responses are listed as they are declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxy.codegen.loader import (
    FORM_MEDIA,
    JSON_MEDIA,
    SCHEMAS_POINTER,
    SSE_MEDIA,
    Node,
    Operation,
    Spec,
)
from proxy.codegen.schema import expand, merged_object, tag_values

#: The SSE field that names an event, for streams tagged by it instead of by a JSON property.
EVENT_FIELD = "event"


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One operation and the schema names of its bodies.

    ``events`` is set instead of using ``stream`` directly when the stream's events are told
    apart by their SSE ``event:`` name: (event name, schema of its ``data:``) pairs.
    ``media`` lists the content types of the 2xx responses, by status then as declared.
    """

    method: str
    path: str
    operation_id: str
    request: str | None
    response: str | None
    stream: str | None
    events: tuple[tuple[str, str], ...] | None = None
    form: str | None = None
    media: tuple[str, ...] = ()

    def schemas(self) -> list[str]:
        """Every schema the operation's bodies are decoded with."""
        out = [s for s in (self.request, self.response, self.form) if s is not None]
        if self.events is not None:
            out += [schema for _, schema in self.events]
        elif self.stream is not None:
            out.append(self.stream)
        return out


def _schema_name(media: Mapping[str, Node], content_type: str) -> str | None:
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


def named_events(spec: Spec, schema_name: str) -> tuple[tuple[str, str], ...] | None:
    """(event name, data schema) pairs when ``schema_name`` is a union of ``{event, data}``.

    ``None`` when the schema is not such a union. Events whose data is not a component
    schema (the closing ``done`` event's ``[DONE]``) are left out.
    """
    pointer = f"{SCHEMAS_POINTER}/{schema_name}"
    alts = expand(spec, pointer, spec.node(pointer), deep=True)
    if len(alts.leaves) < 2:
        return None
    pairs: list[tuple[str, str]] = []
    for leaf in alts.leaves:
        props = merged_object(spec, leaf.pointer, leaf.node).properties
        if EVENT_FIELD not in props or "data" not in props:
            return None
        names = tag_values(spec, props[EVENT_FIELD][-1])
        if names is None:
            return None
        data = _schema_name({"d": {"schema": props["data"][-1].node}}, "d")
        if data is not None:
            pairs.extend((name, data) for name in names)
    return tuple(pairs)


def route_row(spec: Spec, op: Operation) -> RouteRow:
    """The schema names of an operation's JSON request body, 2xx JSON response and 2xx stream."""
    body = op.node.get("requestBody")
    request = form = None
    if isinstance(body, Mapping):
        request = _schema_name(_deref(spec, body).get("content") or {}, JSON_MEDIA)
        form = _schema_name(_deref(spec, body).get("content") or {}, FORM_MEDIA)
    response = stream = None
    media: dict[str, None] = {}
    for status, resp in sorted((op.node.get("responses") or {}).items(), key=lambda kv: str(kv[0])):
        content = _deref(spec, resp).get("content") or {}
        if str(status).startswith("2"):
            response = response or _schema_name(content, JSON_MEDIA)
            stream = stream or _schema_name(content, SSE_MEDIA)
            media.update(dict.fromkeys(str(m) for m in content))
    operation_id = str(op.node.get("operationId") or "")
    events = named_events(spec, stream) if stream is not None else None
    return RouteRow(
        op.method, op.path, operation_id, request, response, stream, events, form, tuple(media)
    )

"""Reading the OpenAPI document and addressing its nodes by JSON pointer.

The document is loaded once with PyYAML (the C loader when it is available) and then only
read. :class:`Spec` wraps it with pointer lookups; nothing here interprets schemas.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from proxy.codegen.naming import pascal, unique
from proxy.codegen.overrides import UNDECLARED_STREAMS, schema_patches

SCHEMAS_POINTER = "#/components/schemas"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_MEDIA = "application/json"
SSE_MEDIA = "text/event-stream"
FORM_MEDIA = "multipart/form-data"
#: Body schemas written inline in an operation are moved to components under
#: ``<OperationId><suffix>`` (a name derived from the operationId, made unique).
_HOIST = ((JSON_MEDIA, "Request", "Response"), (SSE_MEDIA, "Request", "StreamEvent"))

Node = Mapping[str, Any]

_COMMIT_RE = re.compile(r"\|\s*commit\s*\|\s*`?([0-9a-f]{40})`?\s*\|")


class SpecError(Exception):
    """The document does not have the shape the generator relies on."""


def escape(segment: str) -> str:
    """Escape one JSON-pointer segment (RFC 6901)."""
    return segment.replace("~", "~0").replace("/", "~1")


def unescape(segment: str) -> str:
    """Undo :func:`escape`."""
    return segment.replace("~1", "/").replace("~0", "~")


def child(pointer: str, *segments: str | int) -> str:
    """The pointer of a node below ``pointer``."""
    return "/".join([pointer, *(escape(str(s)) for s in segments)])


def split(pointer: str) -> list[str]:
    """The unescaped segments of a pointer, without the leading ``#``."""
    if not pointer.startswith("#/"):
        raise SpecError(f"not a local JSON pointer: {pointer!r}")
    return [unescape(s) for s in pointer[2:].split("/")]


def component_of(pointer: str) -> str | None:
    """The pointer of the component schema that contains ``pointer``, if any."""
    segments = split(pointer)
    if len(segments) >= 3 and segments[:2] == ["components", "schemas"]:
        return child(SCHEMAS_POINTER, segments[2])
    return None


@dataclass(frozen=True, slots=True)
class Operation:
    """One ``paths`` entry for one HTTP method."""

    method: str
    path: str
    pointer: str
    node: Node


class Spec:
    """An OpenAPI document, addressed by JSON pointers."""

    def __init__(self, document: Mapping[str, Any], commit: str | None = None) -> None:
        self._document = document
        self.commit = commit
        schemas = document.get("components", {}).get("schemas")
        if not isinstance(schemas, Mapping):
            raise SpecError("the document has no components.schemas")
        self._schemas: Mapping[str, Node] = schemas

    def schema_names(self) -> list[str]:
        """Component schema names in document order."""
        return list(self._schemas)

    def node(self, pointer: str) -> Node:
        """The node at ``pointer``; a :class:`SpecError` if it is missing or not an object."""
        current: Any = self._document
        for segment in split(pointer):
            if isinstance(current, Mapping) and segment in current:
                current = current[segment]
            elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
                current = current[int(segment)]
            else:
                raise SpecError(f"no node at {pointer}")
        if not isinstance(current, Mapping):
            raise SpecError(f"node at {pointer} is not an object")
        return current

    def operations(self) -> Iterator[Operation]:
        """Every operation, in document order."""
        paths = self._document.get("paths", {})
        for path, item in paths.items():
            for method, op in item.items():
                if method in HTTP_METHODS and isinstance(op, Mapping):
                    yield Operation(method.upper(), path, child("#/paths", path, method), op)


def read_commit(source_md: Path) -> str | None:
    """The upstream commit recorded next to the spec (``SOURCE.md``), if there is one."""
    try:
        text = source_md.read_text(encoding="utf-8")
    except OSError:
        return None
    match = _COMMIT_RE.search(text)
    return match.group(1) if match else None


def _set_pointer(document: dict[str, Any], pointer: str, value: Any) -> None:
    segments = split(pointer)
    current: Any = document
    for segment in segments[:-1]:
        current = current[int(segment)] if isinstance(current, list) else current[segment]
    if not isinstance(current, dict):
        raise SpecError(f"the parent of override target {pointer} is not an object")
    current[segments[-1]] = value


def load_spec(path: Path) -> Spec:
    """Load the YAML document at ``path``, apply our overrides and read its source commit."""
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as fh:
        document = yaml.load(fh, Loader=loader)
    if not isinstance(document, dict):
        raise SpecError(f"{path} is not an OpenAPI document")
    schemas = document.get("components", {}).get("schemas", {})
    for pointer, schema in schema_patches(schemas).items():
        _set_pointer(document, pointer, schema)
    add_undeclared_streams(document)
    hoist_inline_bodies(document)
    return Spec(document, read_commit(path.parent / "SOURCE.md"))


def _operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in (document.get("paths") or {}).values():
        for method, op in item.items():
            if method in HTTP_METHODS and isinstance(op, dict):
                yield op


def _ok_response(document: dict[str, Any], op: dict[str, Any]) -> dict[str, Any] | None:
    """The first 2xx response of an operation, with a ``$ref`` to it resolved."""
    for status, response in sorted((op.get("responses") or {}).items(), key=lambda kv: str(kv[0])):
        if str(status).startswith("2") and isinstance(response, dict):
            ref = response.get("$ref")
            if isinstance(ref, str):
                target: Any = document
                for segment in split(ref):
                    target = target[segment]
                return target if isinstance(target, dict) else None
            return response
    return None


def add_undeclared_streams(document: dict[str, Any]) -> None:
    """Declare the event streams of :data:`UNDECLARED_STREAMS` on their operations."""
    for op in _operations(document):
        schema_name = UNDECLARED_STREAMS.get(str(op.get("operationId")))
        response = _ok_response(document, op) if schema_name else None
        if schema_name and response is not None:
            content = response.setdefault("content", {})
            content.setdefault(SSE_MEDIA, {"schema": {"$ref": f"{SCHEMAS_POINTER}/{schema_name}"}})


def _hoistable(schema: Any) -> bool:
    """An inline object or union schema (a bare string or array body stays where it is)."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return False
    return bool(schema.get("properties") or any(schema.get(k) for k in ("oneOf", "anyOf", "allOf")))


def hoist_inline_bodies(document: dict[str, Any]) -> None:
    """Move inline request/response body schemas into ``components.schemas``.

    The generator names and places only component schemas; an operation's inline body gets a
    component named after its operationId, in document order, so the names are stable.
    """
    schemas: dict[str, Any] = document["components"]["schemas"]
    taken = set(schemas)
    for op in _operations(document):
        base = pascal(str(op.get("operationId") or "Operation"))
        bodies: list[tuple[dict[str, Any] | None, int]] = [
            (op.get("requestBody"), 1),
            (_ok_response(document, op), 2),
        ]
        for holder, which in bodies:
            if not isinstance(holder, dict) or "$ref" in holder:
                continue
            for media, *suffixes in _HOIST:
                entry = (holder.get("content") or {}).get(media)
                if not isinstance(entry, dict) or not _hoistable(entry.get("schema")):
                    continue
                name = unique(base + suffixes[which - 1], taken)
                taken.add(name)
                schemas[name] = entry["schema"]
                entry["schema"] = {"$ref": f"{SCHEMAS_POINTER}/{name}"}

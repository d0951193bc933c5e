"""Corrections we apply to the spec before translating it.

The published spec is narrower than what the API sends in a few places, seen in recorded
traffic. Since the generated structs drop fields they do not know when re-encoding, every
field the API really sends must be declared for a decode/encode round trip to be exact.

Each correction sets the schema node at a JSON pointer to a schema written here (the
pointer's parent must exist). Keep this list short and say why for each entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SCHEMAS = "#/components/schemas"
_DELTA_EVENT = re.compile(r"^Response\w*Delta(Streaming)?Event$")


def _of(json_type: str) -> dict[str, Any]:
    """A fresh ``{"type": json_type}`` schema."""
    return {"type": json_type}


def _extra_properties() -> dict[str, dict[str, dict[str, Any]]]:
    """Schema name -> properties the API sends that the schema does not declare."""
    return {
        # The response object echoes these request settings and adds billing/tool usage.
        "Response": {
            "store": _of("boolean"),
            "frequency_penalty": _of("number"),
            "presence_penalty": _of("number"),
            "billing": {"type": "object", "properties": {"payer": _of("string")}},
            "tool_usage": {"type": "object"},
        },
        # The image generation tool and call echo the image settings that were used.
        "ImageGenTool": {"n": _of("integer")},
        "ImageGenToolCall": {
            "background": _of("string"),
            "output_format": _of("string"),
            "quality": _of("string"),
            "size": _of("string"),
            "revised_prompt": _of("string"),
        },
        # The web search tool as echoed in responses.
        "WebSearchTool": {
            "return_token_budget": _of("string"),
            "search_content_types": {"type": "array", "items": _of("string")},
        },
    }


def _properties_pointer(schemas: Mapping[str, Any], name: str) -> str:
    """Where a schema declares its own properties (itself, or its last inline allOf part)."""
    schema = schemas[name]
    if "properties" in schema:
        return f"{_SCHEMAS}/{name}/properties"
    parts = schema.get("allOf") or []
    for i in reversed(range(len(parts))):
        if "properties" in parts[i]:
            return f"{_SCHEMAS}/{name}/allOf/{i}/properties"
    raise KeyError(f"schema {name} declares no properties")


def schema_patches(schemas: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Pointer -> replacement schema, for a document whose component schemas are ``schemas``.

    Returns fresh dicts on every call (no shared mutable state).
    """
    patches: dict[str, dict[str, Any]] = {
        # With `encoding_format: "base64"` (the default of the official SDKs) the API returns
        # each embedding as a base64 string instead of an array of floats.
        f"{_SCHEMAS}/Embedding/properties/embedding": {
            "anyOf": [{"type": "array", "items": _of("number")}, _of("string")],
        },
        # Streamed chat chunks with audio output carry the audio piece by piece in the delta.
        f"{_SCHEMAS}/ChatCompletionStreamResponseDelta/properties/audio": {
            "type": "object",
            "properties": {
                "id": _of("string"),
                "data": _of("string"),
                "expires_at": _of("integer"),
                "transcript": _of("string"),
            },
        },
        # Web search sources of type "api" name the source instead of giving a URL.
        f"{_SCHEMAS}/WebSearchActionSearch/properties/sources/items/properties/name": _of("string"),
        # File search results say which vector store they came from.
        f"{_SCHEMAS}/FileSearchToolCall/properties/results/anyOf/0/items/properties/vector_store_id": (
            _of("string")
        ),
    }
    for name, properties in _extra_properties().items():
        base = _properties_pointer(schemas, name)
        for prop, schema in properties.items():
            patches[f"{base}/{prop}"] = schema
    # Responses stream delta events carry random padding in `obfuscation` unless the request
    # turns it off (`stream_options.include_obfuscation`).
    for name, schema in schemas.items():
        if _DELTA_EVENT.match(name) and "delta" in (schema.get("properties") or {}):
            patches[f"{_SCHEMAS}/{name}/properties/obfuscation"] = _of("string")
    return patches

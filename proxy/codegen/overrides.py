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
        # Every error body may carry these beside the envelope: `detail` (a copy of the error,
        # seen on file 404s) and `usage` (billed audio seconds of a failed transcription).
        "ErrorResponse": {"detail": {"type": "object"}, "usage": {"type": "object"}},
        # Assistants objects still carry fields of the v1 Assistants API and newer settings.
        "AssistantObject": {
            "reasoning_effort": _of("string"),
            "file_ids": {"type": "array", "items": _of("string")},
        },
        "MessageObject": {"file_ids": {"type": "array", "items": _of("string")}},
        "RunObject": {
            "tool_resources": {"type": "object"},
            "reasoning_effort": _of("string"),
            "file_ids": {"type": "array", "items": _of("string")},
        },
        "RunStepObject": {"expires_at": _of("integer")},
        "RunStepCompletionUsage": {
            "prompt_token_details": {"type": "object"},
            "completion_tokens_details": {"type": "object"},
        },
        "RunCompletionUsage": {
            "prompt_token_details": {"type": "object"},
            "completion_tokens_details": {"type": "object"},
        },
        "RunStepDetailsToolCallsFileSearchResultObject": {"attributes": {"type": "object"}},
        "VectorStoreObject": {"description": _of("string")},
        # Stored chat completions (`GET /chat/completions[/{id}]`) name the request that created
        # them and echo its settings.
        "CreateChatCompletionResponse": {
            "request_id": _of("string"),
            "tool_choice": {},
            "tools": {"type": "array"},
            "response_format": {},
            "seed": _of("integer"),
            "temperature": _of("number"),
            "top_p": _of("number"),
            "presence_penalty": _of("number"),
            "frequency_penalty": _of("number"),
            "input_user": _of("string"),
        },
        "FineTuningJob": {
            "user_provided_suffix": _of("string"),
            "usage_metrics": {"type": "object"},
            "shared_with_openai": _of("boolean"),
            "eval_id": _of("string"),
        },
        "CostsResult": {"organization_id": _of("string")},
        # Conversation items as listed and deleted.
        "Message": {
            "object": _of("string"),
            "conversation_id": _of("string"),
            "created_at": _of("integer"),
        },
        "ConversationResource": {"deleted": _of("boolean")},
        # ruby-openai's recorded answer to creating conversation items is the item itself,
        # not a list page: its fields are declared too so that the recording round-trips.
        "ConversationItemList": {
            "id": _of("string"),
            "conversation_id": _of("string"),
            "type": _of("string"),
            "role": _of("string"),
            "content": {"type": "array"},
            "created_at": _of("integer"),
        },
        # The web search tool as echoed in responses.
        "WebSearchTool": {
            "return_token_budget": _of("string"),
            "search_content_types": {"type": "array", "items": _of("string")},
        },
    }


def _properties_pointer(schemas: Mapping[str, Any], name: str) -> str:
    """Where a schema declares its own properties (itself, or its last inline allOf/anyOf part)."""
    schema = schemas[name]
    if "properties" in schema:
        return f"{_SCHEMAS}/{name}/properties"
    for keyword in ("allOf", "anyOf"):
        parts = schema.get(keyword) or []
        for i in reversed(range(len(parts))):
            if "properties" in parts[i]:
                return f"{_SCHEMAS}/{name}/{keyword}/{i}/properties"
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
    # The checkpoint metrics say which kind of metrics they are.
    patches[f"{_SCHEMAS}/FineTuningJobCheckpoint/properties/metrics/properties/type"] = _of(
        "string"
    )
    # Clients send non-string metadata values (the API answers 400); the request still decodes.
    patches[f"{_SCHEMAS}/Metadata/anyOf/0/additionalProperties"] = {
        "anyOf": [_of("string"), _of("number"), _of("boolean")]
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
    for pointer in _nullable_properties(schemas):
        patches[pointer] = {**_node(schemas, pointer), "nullable": True}
    return patches


def _node(schemas: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    """The schema at a pointer below the component schemas (a copy of the mapping)."""
    node: Any = schemas
    for segment in pointer.removeprefix(_SCHEMAS + "/").split("/"):
        node = node[int(segment)] if isinstance(node, list) else node[segment]
    return dict(node)


def _nullable_properties(schemas: Mapping[str, Any]) -> list[str]:
    """Pointers of required properties the API sends as null."""
    pointers = [
        f"{_SCHEMAS}/RunObject/properties/instructions",  # a run created without instructions
        f"{_SCHEMAS}/VectorStoreObject/properties/name",  # a vector store created without a name
        # Legacy completions stream chunks before the last one.
        f"{_SCHEMAS}/CreateCompletionResponse/properties/choices/items/properties/finish_reason",
    ]
    # An empty page of a list has no first or last id.
    for name, schema in schemas.items():
        props = schema.get("properties") or {}
        if "has_more" in props:
            pointers += [
                f"{_SCHEMAS}/{name}/properties/{p}" for p in ("first_id", "last_id") if p in props
            ]
    return pointers


#: Operations that answer with a server-sent event stream (when the request asks for
#: `"stream": true`) although the spec declares only a JSON response for them: operationId ->
#: the schema of each event. Seen in recorded traffic.
UNDECLARED_STREAMS: dict[str, str] = {
    # Legacy completions stream chunks shaped like the full response object.
    "createCompletion": "CreateCompletionResponse",
    # `GET /responses/{id}?stream=true` resumes a background response's event stream.
    "getResponse": "ResponseStreamEvent",
    # Assistants runs stream `event:`-named events whose `data:` is the object named by the
    # event (the union lists each as an `{event, data}` pair).
    "createThreadAndRun": "AssistantStreamEvent",
    "createRun": "AssistantStreamEvent",
    "submitToolOuputsToRun": "AssistantStreamEvent",
}

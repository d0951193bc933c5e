"""Which schemas each generated module is built around.

A group is one API area, emitted as one module. Its roots are the component schemas its
endpoints send and receive; everything they reference that no other group reaches lives
in the group's module, and what several groups reach lives in :data:`SHARED_MODULE`.
"""

from __future__ import annotations

from dataclasses import dataclass

SHARED_MODULE = "_shared"


@dataclass(frozen=True, slots=True)
class Group:
    """One emitted module: its name, its root schemas and a one-line summary we wrote."""

    module: str
    roots: tuple[str, ...]
    summary: str


def default_groups() -> tuple[Group, ...]:
    """The groups emitted today (a first slice of the API)."""
    return (
        Group(
            "chat",
            (
                "CreateChatCompletionRequest",
                "CreateChatCompletionResponse",
                "CreateChatCompletionStreamResponse",
            ),
            "Chat Completions: request, response and streamed chunk.",
        ),
        Group(
            "responses",
            ("CreateResponse", "Response", "ResponseStreamEvent"),
            "Responses API: request, response and the union of stream events.",
        ),
        Group(
            "embeddings",
            ("CreateEmbeddingRequest", "CreateEmbeddingResponse"),
            "Embeddings: request and response.",
        ),
        Group(
            "models",
            ("ListModelsResponse", "Model", "DeleteModelResponse"),
            "Models: list, retrieve and delete.",
        ),
        Group(
            "errors",
            ("ErrorResponse", "Error"),
            "The error body every endpoint returns on failure.",
        ),
    )

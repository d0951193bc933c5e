"""Which schemas each generated module is built around.

A group is one API area, emitted as one module. Operations are grouped by the first segment
of their path (``/vector_stores/{id}/files`` -> ``vector_stores``), with the organization
admin endpoints (``/organization/...`` and ``/projects/...``) together in ``admin``. A group's
roots are the component schemas its operations send and receive (see
:mod:`~proxy.codegen.bodies`); everything they reference that no other group reaches lives in
the group's module, and what several groups reach lives in :data:`SHARED_MODULE`. The error
envelope is a group of its own (``errors``), since every operation answers with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.codegen.bodies import route_row
from proxy.codegen.loader import Spec

SHARED_MODULE = "_shared"
ERRORS_MODULE = "errors"

#: First path segment -> module, where the module is not named after the segment.
_MODULE_OF_SEGMENT = {"organization": "admin", "projects": "admin"}

#: One-line summaries we wrote for each module (a module without one gets a generic line).
_SUMMARIES = {
    "admin": "Organization administration: audit logs, invites, users, projects, project users, "
    "service accounts, API keys, roles, groups, certificates, spend limits, usage and costs.",
    "assistants": "Assistants (beta): create, list, retrieve, modify and delete assistants.",
    "audio": "Audio: speech, transcription and translation JSON bodies and their stream events.",
    "batches": "Batch API: create, retrieve, cancel and list batches.",
    "chat": "Chat Completions: request, response, streamed chunk and stored completions.",
    "chatkit": "ChatKit: sessions, threads and thread items.",
    "completions": "Legacy completions: request, response and streamed chunk.",
    "containers": "Containers and container files.",
    "content_provenance_checks": "Content provenance checks.",
    "conversations": "Conversations and their items.",
    "embeddings": "Embeddings: request and response.",
    "evals": "Evals, eval runs and their output items.",
    "files": "Files: list, retrieve and delete file objects.",
    "fine_tuning": "Fine-tuning jobs, their events and checkpoints, and checkpoint permissions.",
    "images": "Images: generation and edit responses and image stream events.",
    "models": "Models: list, retrieve and delete.",
    "moderations": "Moderations: request and response.",
    "realtime": "Realtime: client secrets, sessions, transcription sessions and calls.",
    "responses": "Responses API: request, response, the union of stream events, input items, "
    "input token counts and compaction.",
    "skills": "Skills and skill versions.",
    "threads": "Assistants threads, messages, runs and run steps; run stream event payloads.",
    "uploads": "Uploads: create, complete and cancel multi-part uploads.",
    "vector_stores": "Vector stores, their files and file batches, and search.",
    "videos": "Videos: generation jobs, remixes and characters.",
}


@dataclass(frozen=True, slots=True)
class Group:
    """One emitted module: its name, its root schemas and a one-line summary we wrote."""

    module: str
    roots: tuple[str, ...]
    summary: str


def module_of_path(path: str) -> str:
    """The module an operation's path template belongs to."""
    segment = path.split("?")[0].strip("/").split("/")[0]
    return _MODULE_OF_SEGMENT.get(segment, segment)


def default_groups(spec: Spec) -> tuple[Group, ...]:
    """One group per API area of ``spec`` (sorted by module name), then the error envelope."""
    roots: dict[str, dict[str, None]] = {}
    for op in spec.operations():
        found = roots.setdefault(module_of_path(op.path), {})
        for schema in route_row(spec, op).schemas():
            found.setdefault(schema)
    groups = [
        Group(
            module,
            tuple(sorted(schemas)),
            _SUMMARIES.get(module, f"The `/{module}` endpoints: JSON request and response bodies."),
        )
        for module, schemas in sorted(roots.items())
        if schemas
    ]
    groups.append(
        Group(
            ERRORS_MODULE,
            ("ErrorResponse", "Error"),
            "The error body every endpoint returns on failure.",
        )
    )
    return tuple(groups)

"""Batch API files: the JSONL a batch reads (uploaded with purpose `batch`) and the JSONL it
writes (downloaded as file content), decoded line by line.

The spec has no schema for a line of these files, so their types are written here, after the
documented file format: an input line is `{custom_id, method, url, body}`; an output line is
`{id, custom_id, response: {status_code, request_id, body}, error: {code, message}}`. Fields
other than `custom_id` (and, for input, `method` and `url`) are optional; `body` is any JSON.
"""

from __future__ import annotations

from typing import Any

import msgspec


class BatchRequestInput(msgspec.Struct, kw_only=True, omit_defaults=True):
    custom_id: str
    method: str
    url: str
    body: Any = msgspec.UNSET


class BatchResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    status_code: int | msgspec.UnsetType = msgspec.UNSET
    request_id: str | msgspec.UnsetType | None = msgspec.UNSET
    body: Any = msgspec.UNSET


class BatchError(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str | msgspec.UnsetType | None = msgspec.UNSET
    message: str | msgspec.UnsetType | None = msgspec.UNSET


class BatchRequestOutput(msgspec.Struct, kw_only=True, omit_defaults=True):
    custom_id: str
    id: str | msgspec.UnsetType | None = msgspec.UNSET
    response: BatchResponse | msgspec.UnsetType | None = msgspec.UNSET
    error: BatchError | msgspec.UnsetType | None = msgspec.UNSET


_INPUT = msgspec.json.Decoder(BatchRequestInput)
_OUTPUT = msgspec.json.Decoder(BatchRequestOutput)
_OBJECT = msgspec.json.Decoder(dict[str, Any])


def output_like(data: bytes) -> bool:
    """Whether file content looks like a batch output file: its first line is a JSON object
    with `custom_id` and `response` (or `error`)."""
    first = next((line for line in data.splitlines() if line.strip()), b"")
    if not first.lstrip().startswith(b"{"):
        return False
    try:
        keys = _OBJECT.decode(first)
    except msgspec.DecodeError:
        return False
    return "custom_id" in keys and ("response" in keys or "error" in keys)


def decode_lines(data: bytes, output: bool) -> tuple[list[tuple[int, Any]], list[str]]:
    """(line number, decoded line) for each non-empty line that decodes as an input (or output)
    line, and a problem naming the line number for each one that does not."""
    decoder: msgspec.json.Decoder[Any] = _OUTPUT if output else _INPUT
    name = "BatchRequestOutput" if output else "BatchRequestInput"
    lines: list[tuple[int, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append((number, decoder.decode(line)))
        except msgspec.DecodeError as exc:
            problems.append(f"line {number} did not decode as {name}: {exc}")
    return lines, problems

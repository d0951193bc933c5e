"""Multipart form parts → the plain values a generated form struct converts from.

Field names follow the bracket convention clients use for forms: `name[]` (and a name sent more
than once) collects a list, `name[0]`, `name[1]`, … an ordered list, `name[key]` a nested
object. A file part (one with a file name) becomes a `FormFile` mapping — name, content type,
size and SHA-256, never the bytes; a text part is its text, or its JSON value when the part's
own content type is JSON. `msgspec.convert(values, form, strict=False)` then turns text into
the numbers and booleans the form's fields declare.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

from proxy.multipart import Part

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_APPEND = ""


def part_value(part: Part) -> Any:
    """The plain value of one part."""
    if part.filename is not None:
        return {
            "filename": part.filename,
            "content_type": part.content_type or None,
            "size": len(part.content),
            "sha256": hashlib.sha256(part.content).hexdigest(),
        }
    if part.content_type and "json" in part.content_type.lower():
        try:
            return msgspec.json.decode(part.content)
        except msgspec.DecodeError:
            pass
    return part.content.decode("utf-8", "replace")


def _path(name: str) -> list[str]:
    head, bracket, _ = name.partition("[")
    if not bracket or not head:
        return [name]
    return [head, *_BRACKETS.findall(name[len(head) :])]


def form_values(parts: list[Part]) -> dict[str, Any]:
    """A mapping from field name to value, lists and nested objects built from the names."""
    root: dict[str, Any] = {}
    for part in parts:
        _put(root, _path(part.name), part_value(part))
    return {k: _finish(v) for k, v in root.items()}


class _Seq(dict[int, Any]):
    """A list being filled by index (`[0]`) or by appending (`[]`)."""


def _put(node: dict[Any, Any], path: list[str], value: Any) -> None:
    key: Any = path[0]
    if isinstance(node, _Seq):
        key = len(node) if key == _APPEND or not key.isdigit() else int(key)
    if len(path) == 1:
        if key in node:
            existing = node[key]
            if not isinstance(existing, _Seq):  # a repeated plain name: a list of its values
                existing = node[key] = _Seq({0: existing})
            existing[len(existing)] = value
        else:
            node[key] = value
        return
    following = path[1]
    child = node.get(key)
    if not isinstance(child, dict):
        child = node[key] = _Seq() if following == _APPEND or following.isdigit() else {}
    _put(child, path[1:], value)


def _finish(value: Any) -> Any:
    if isinstance(value, _Seq):
        return [_finish(value[k]) for k in sorted(value)]
    if isinstance(value, dict):
        return {k: _finish(v) for k, v in value.items()}
    return value

"""The one `multipart/form-data` parser: request matching and the typed view both read parts here.

Lenient by design (it reads recorded requests, it does not validate them): parts are split on
the boundary, a part's head gives its `Content-Disposition` name and file name and its
`Content-Type`; a part without a head separator has empty content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxy.media import essence

# `; name=value` in a header, the value a token or a quoted string (which may hold `;`).
_PARAMETER = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True, slots=True)
class Part:
    """One part: form field name (`""` when absent), file name (`None` for a text field), the
    part's own content type (`None` when absent) and its content bytes."""

    name: str
    filename: str | None
    content_type: str | None
    content: bytes


def boundary(content_type: str) -> str | None:
    """The `boundary` parameter of a `multipart/...` content type."""
    return _parameters(content_type).get("boundary")


def is_form_data(content_type: str | None) -> bool:
    """Whether a content type is `multipart/form-data`."""
    return essence(content_type) == "multipart/form-data"


def parts(body: bytes, boundary: str) -> list[Part]:
    """The parts of a multipart body, in body order."""
    delimiter = b"--" + boundary.encode("latin-1")
    found: list[Part] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.partition(b"\r\n\r\n")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        disposition: dict[str, str] = {}
        part_type: str | None = None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = _parameters(value)
            elif name.strip().lower() == "content-type":
                part_type = value.strip()
        found.append(
            Part(disposition.get("name", ""), disposition.get("filename"), part_type, content)
        )
    return found


def _parameters(value: str) -> dict[str, str]:
    """A header value's parameters by lower-case name, quotes removed: a quoted file name such
    as `"a;b.wav"` stays whole."""
    found: dict[str, str] = {}
    for match in _PARAMETER.finditer(value):
        raw = match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = raw[1:-1]  # escapes kept: clients differ on them, and both sides read alike
        found.setdefault(match.group(1).lower(), raw)
    return found

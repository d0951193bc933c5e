"""Python identifiers for schema names, derived names and JSON field names."""

from __future__ import annotations

import keyword
import re

_NON_IDENT = re.compile(r"[^0-9A-Za-z_]+")
_WORDS = re.compile(r"[0-9A-Za-z]+")

#: Names the generated modules use in annotations and defaults. A struct field with one of
#: these names would shadow it while msgspec resolves the annotations (it evaluates them
#: with the class namespace as locals), so such fields are renamed.
ANNOTATION_NAMES = frozenset(
    {"Any", "TypeAlias", "bool", "dict", "float", "int", "list", "msgspec", "str"}
)


def pascal(text: str) -> str:
    """``"input_tokens_details"`` -> ``"InputTokensDetails"``; ``"response.done"`` -> ``"ResponseDone"``."""
    parts = _WORDS.findall(text)
    out = "".join(p[:1].upper() + p[1:] for p in parts)
    if not out:
        return "X"
    if out[0].isdigit():
        out = "N" + out
    return out


def class_name(schema_name: str) -> str:
    """A component schema name as a class name (kept as is when it is already valid)."""
    if schema_name.isidentifier() and not keyword.iskeyword(schema_name):
        return schema_name[:1].upper() + schema_name[1:]
    cleaned = _NON_IDENT.sub("_", schema_name).strip("_")
    name = pascal(cleaned) if "_" in cleaned else cleaned
    if not name or not name[0].isalpha():
        name = "S" + name
    return name[:1].upper() + name[1:]


def attribute_name(json_name: str, taken: set[str]) -> str:
    """A safe Python attribute for a JSON field name, distinct from every name in ``taken``.

    Keywords, invalid identifiers, leading underscores and names that would shadow names
    used by the generated annotations are changed; the caller maps the attribute back to
    the JSON name with ``msgspec.field(name=...)`` when they differ.
    """
    name = json_name
    if not name.isidentifier():
        name = _NON_IDENT.sub("_", name).strip("_") or "field"
        if name[0].isdigit():
            name = "f_" + name
    name = name.lstrip("_") or "field"
    while keyword.iskeyword(name) or name in ANNOTATION_NAMES or name in taken:
        name += "_"
    return name


def unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name`` with the smallest numeric suffix that is not in ``taken``."""
    if name not in taken:
        return name
    n = 2
    while f"{name}{n}" in taken:
        n += 1
    return f"{name}{n}"

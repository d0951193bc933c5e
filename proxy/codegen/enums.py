"""Known values of enum-valued string fields, as data (the generated types use plain `str`).

`ENUMS` maps (struct class name, JSON field name) to the string constants the spec allows at
that field, in spec order. A field is listed only when every string it can hold is enumerated:
the field itself (a string `enum` or `const`) or the items of an array at the field. A field
that also accepts free text (such as a model name) is not listed.
"""

from __future__ import annotations

from collections.abc import Mapping

from proxy.codegen.emit import Header, literal, render_data_module
from proxy.codegen.layout import INDENT, LINE_LENGTH
from proxy.codegen.loader import Node, Spec, child
from proxy.codegen.model import DefKey, StructDef
from proxy.codegen.plan import Plan
from proxy.codegen.schema import Kind, Leaf, expand, kind_of, merged_object, tag_values

DOC = """\
Known values of enum-valued string fields.

The generated structs keep enum-valued strings as plain `str` so that a new value still
decodes. `ENUMS` maps (struct class name, JSON field name) to the values the spec lists for
that field, in spec order: the field's own value or, for an array, each item. A field is
listed only when every string it can hold is enumerated (a field that also takes free text,
such as a model name, is not listed)."""

EnumRow = tuple[str, str, tuple[str, ...]]


def known_values(spec: Spec, pointer: str, node: Node) -> tuple[str, ...] | None:
    """The string constants a property allows, or ``None`` when it also takes any string."""
    values: dict[str, None] = {}
    for leaf in expand(spec, pointer, node, deep=True).leaves:
        if kind_of(spec, leaf) is Kind.ARRAY:
            items = leaf.node.get("items")
            if not isinstance(items, Mapping) or not items:
                return None
            item_pointer = child(leaf.pointer, "items")
            for item in expand(spec, item_pointer, items, deep=True).leaves:
                if not _add_values(spec, item, values):
                    return None
        elif not _add_values(spec, leaf, values):
            return None
    return tuple(values) if values else None


def _add_values(spec: Spec, leaf: Leaf, values: dict[str, None]) -> bool:
    """Add a leaf's string constants; ``False`` when the leaf accepts any string."""
    kind = kind_of(spec, leaf)
    if kind is Kind.ANY:
        return False
    if kind is not Kind.STR:
        return True  # not a string position (an object, a number, a nested array)
    found = tag_values(spec, leaf)
    if found is None:
        return False
    values.update(dict.fromkeys(found))
    return True


def _field_values(spec: Spec, key: DefKey, name: str) -> tuple[str, ...] | None:
    """The known values of a struct's field; for a merged struct, of every member's field."""
    values: dict[str, None] = {}
    for pointer in key.members or (key.pointer,):
        properties = merged_object(spec, pointer, spec.node(pointer)).properties
        if name not in properties:
            continue
        last = properties[name][-1]
        found = known_values(spec, last.pointer, last.node)
        if found is None:
            return None
        values.update(dict.fromkeys(found))
    return tuple(values) if values else None


def collect_enums(spec: Spec, plan: Plan) -> tuple[EnumRow, ...]:
    """(struct name, JSON field name, values) for every enumerated field, sorted by name."""
    rows: list[EnumRow] = []
    for key, definition in plan.definitions.items():
        if not isinstance(definition, StructDef):
            continue
        for field in definition.fields:
            values = _field_values(spec, key, field.json_name)
            if values is not None:
                rows.append((plan.names[key], field.json_name, values))
    return tuple(sorted(rows))


def _entry_lines(row: EnumRow) -> list[str]:
    struct, field, values = row
    head = f"{INDENT}({literal(struct)}, {literal(field)}): "
    items = [literal(v) for v in values]
    one = f"{head}({', '.join(items)}{',' if len(items) == 1 else ''}),"
    if len(one) <= LINE_LENGTH:
        return [one]
    # Like ruff: a tuple that does not fit after its key gets one value per line.
    return [f"{head}(", *(f"{INDENT * 2}{item}," for item in items), f"{INDENT}),"]


def render_enums(rows: tuple[EnumRow, ...], header: Header) -> str:
    """The text of ``enums.py``."""
    body = ["ENUMS: dict[tuple[str, str], tuple[str, ...]] = {"]
    for row in rows:
        body += _entry_lines(row)
    body.append("}")
    return render_data_module(header, DOC, body, {}, set())

"""Intermediate representation between the OpenAPI document and the emitted Python code.

The translator (:mod:`proxy.codegen.translate`) turns schema nodes into these immutable
values; the planner (:mod:`proxy.codegen.plan`) names them and assigns them to modules; the
emitter (:mod:`proxy.codegen.emit`) renders them. Nothing here knows about YAML or about
source text.

A definition is identified by a :class:`DefKey`: the JSON pointer of the schema node it comes
from, plus the tag it carries when it is a member of a tagged union. One schema node can
therefore give several definitions (an untagged struct and one tagged variant per tag value).
A merged struct (the objects of a union that no property tags, as one struct) is identified by
the pointers of the object schemas it merges; its pointer is the union's, which names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: ``file`` is a ``format: binary`` string: a file part of a multipart form (``FormFile``).
PrimKind = Literal["str", "int", "float", "bool", "any", "file"]


@dataclass(frozen=True, order=True, slots=True)
class DefKey:
    """Identity of a generated definition: schema pointer plus optional union tag, or the
    object schemas a merged struct combines (``members``, empty for every other struct)."""

    pointer: str
    tag_field: str | None = None
    tag: str | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Prim:
    """A JSON scalar (``any`` is an unconstrained JSON value)."""

    kind: PrimKind


@dataclass(frozen=True, slots=True)
class RawJson:
    """A value msgspec cannot model faithfully; kept as undecoded JSON (``msgspec.Raw``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ListOf:
    """A JSON array."""

    item: Typed


@dataclass(frozen=True, slots=True)
class DictOf:
    """A JSON object used as a map from string keys to values."""

    value: Typed


@dataclass(frozen=True, slots=True)
class DefRef:
    """A reference to a generated struct or union alias."""

    key: DefKey


@dataclass(frozen=True, slots=True)
class UnionOf:
    """Two or more alternatives, already checked to be expressible by msgspec."""

    members: tuple[TypeExpr, ...]


TypeExpr = Prim | RawJson | ListOf | DictOf | DefRef | UnionOf


@dataclass(frozen=True, slots=True)
class Typed:
    """A type expression plus whether JSON ``null`` is allowed."""

    expr: TypeExpr
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One struct field: its JSON name and its type (the Python name is chosen when emitting)."""

    json_name: str
    typed: Typed


@dataclass(frozen=True, slots=True)
class StructDef:
    """A ``msgspec.Struct``; ``key.tag_field``/``key.tag`` are set for tagged variants."""

    key: DefKey
    base_name: str
    fields: tuple[FieldDef, ...]


@dataclass(frozen=True, slots=True)
class AliasDef:
    """A module-level type alias (a named union of structs)."""

    key: DefKey
    base_name: str
    typed: Typed


Definition = StructDef | AliasDef


def walk_refs(typed: Typed) -> list[DefKey]:
    """Every definition key a type refers to, in first-seen order."""
    out: list[DefKey] = []
    stack: list[TypeExpr] = [typed.expr]
    while stack:
        expr = stack.pop()
        if isinstance(expr, DefRef):
            out.append(expr.key)
        elif isinstance(expr, ListOf):
            stack.append(expr.item.expr)
        elif isinstance(expr, DictOf):
            stack.append(expr.value.expr)
        elif isinstance(expr, UnionOf):
            stack.extend(reversed(expr.members))
    return out


def definition_refs(definition: Definition) -> list[DefKey]:
    """Every definition key a struct's fields or an alias's type refer to."""
    if isinstance(definition, AliasDef):
        return walk_refs(definition.typed)
    out: list[DefKey] = []
    for field in definition.fields:
        out.extend(walk_refs(field.typed))
    return out


def raw_reasons(typed: Typed) -> list[str]:
    """Reasons of every ``msgspec.Raw`` fallback inside a type."""
    out: list[str] = []
    stack: list[TypeExpr] = [typed.expr]
    while stack:
        expr = stack.pop()
        if isinstance(expr, RawJson):
            out.append(expr.reason)
        elif isinstance(expr, ListOf):
            stack.append(expr.item.expr)
        elif isinstance(expr, DictOf):
            stack.append(expr.value.expr)
        elif isinstance(expr, UnionOf):
            stack.extend(reversed(expr.members))
    return out

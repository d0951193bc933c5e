"""Read-only questions about raw schema nodes: what kind of value a node describes, what
alternatives a union has, which properties an object has after ``allOf`` merging, and which
constant values a property allows.

Everything here is a pure function of the :class:`~proxy.codegen.loader.Spec` and a node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from proxy.codegen.loader import Node, Spec, SpecError, child, component_of


class Kind(Enum):
    """What a single (non-union) schema node describes."""

    STRUCT = "struct"  # an object with declared properties
    MAP = "map"  # an object whose values all follow one schema
    FREEFORM = "freeform"  # any JSON object
    ARRAY = "array"
    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    ANY = "any"  # any JSON value
    UNSUPPORTED = "unsupported"  # e.g. allOf over a union


@dataclass(frozen=True, slots=True)
class Leaf:
    """A schema node that is not itself a union; ``named`` when reached through a ``$ref``."""

    pointer: str
    node: Node
    named: bool = False


@dataclass(slots=True)
class Alternatives:
    """The flattened alternatives of a schema: non-null leaves plus whether null is allowed."""

    leaves: list[Leaf] = field(default_factory=list)
    nullable: bool = False
    discriminators: list[str] = field(default_factory=list)

    def add(self, other: Alternatives) -> None:
        """Merge ``other`` into this one, keeping first-seen order and dropping duplicates."""
        seen = {leaf.pointer for leaf in self.leaves}
        for leaf in other.leaves:
            if leaf.pointer not in seen:
                seen.add(leaf.pointer)
                self.leaves.append(leaf)
        self.nullable = self.nullable or other.nullable
        for name in other.discriminators:
            if name not in self.discriminators:
                self.discriminators.append(name)


@dataclass(slots=True)
class MergedObject:
    """Properties of an object schema after merging ``allOf`` parts (later parts win)."""

    properties: dict[str, list[Leaf]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)


_PRIMITIVES: Mapping[str, Kind] = MappingProxyType(
    {"string": Kind.STR, "integer": Kind.INT, "number": Kind.FLOAT, "boolean": Kind.BOOL}
)
_UNION_KEYS = ("oneOf", "anyOf")
#: Keywords that give a schema a shape. A ``oneOf``/``anyOf`` whose members have none of them
#: (only ``required`` lists, say) constrains the object around it without adding alternatives.
_SHAPE_KEYS = frozenset(
    {
        "$ref",
        "$recursiveRef",
        "type",
        "properties",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "nullable",
        "oneOf",
        "anyOf",
        "allOf",
    }
)


def deref(spec: Spec, pointer: str, node: Node) -> tuple[str, Node] | None:
    """The target of a ``$ref`` or ``$recursiveRef`` node, else ``None``."""
    if "$ref" in node:
        target = node["$ref"]
        if not isinstance(target, str) or not target.startswith("#/"):
            raise SpecError(f"unsupported $ref {target!r} at {pointer}")
        return target, spec.node(target)
    if "$recursiveRef" in node:
        # The only use in the spec is "#", meaning the enclosing (anchored) component schema.
        enclosing = component_of(pointer)
        if enclosing is None:
            raise SpecError(f"$recursiveRef outside a component schema at {pointer}")
        return enclosing, spec.node(enclosing)
    return None


# Keywords that say something about a value without shaping it.
_ANNOTATION_KEYS = frozenset(
    {"nullable", "description", "title", "default", "example", "examples", "deprecated",
     "readOnly", "writeOnly"}
)  # fmt: skip


def _annotates(part: object) -> bool:
    return isinstance(part, Mapping) and all(
        key in _ANNOTATION_KEYS or key.startswith("x-") for key in part
    )


def _alias_allof_part(node: Node) -> int | None:
    """In ``allOf: [X]`` or ``allOf: [X, {nullable: true}]`` (no own structure, every other part
    only annotating): the index of X, a reference with extra keywords. None otherwise."""
    parts = node.get("allOf")
    if not isinstance(parts, list) or "properties" in node:
        return None
    shaping = [i for i, part in enumerate(parts) if not _annotates(part)]
    return shaping[0] if len(shaping) == 1 else None


def _is_alias_allof(node: Node) -> bool:
    return _alias_allof_part(node) is not None


def expand(spec: Spec, pointer: str, node: Node, *, deep: bool) -> Alternatives:
    """Flatten ``oneOf``/``anyOf``/type lists/``nullable`` into leaves.

    References to other schemas are leaves, except that with ``deep`` a reference to a
    schema that is itself a union is expanded too.
    """
    return _expand(spec, pointer, node, deep, frozenset())


def _expand(spec: Spec, pointer: str, node: Node, deep: bool, busy: frozenset[str]) -> Alternatives:
    out = Alternatives()
    if node.get("nullable") is True:
        out.nullable = True
    target = deref(spec, pointer, node)
    if target is not None:
        tptr, tnode = target
        if deep and tptr not in busy and is_union(tnode):
            out.add(_expand(spec, tptr, tnode, deep, busy | {tptr}))
        else:
            out.leaves.append(Leaf(tptr, tnode, named=True))
            out.nullable = out.nullable or tnode.get("nullable") is True
        return out
    index = _alias_allof_part(node)
    if index is not None:
        parts = node["allOf"]
        if any(_annotates(p) and p.get("nullable") is True for p in parts):
            out.nullable = True
        out.add(_expand(spec, child(pointer, "allOf", index), parts[index], deep, busy))
        return out
    members = [(key, m) for key in _UNION_KEYS for m in enumerate(_union_members(node, key))]
    if members:
        disc = node.get("discriminator")
        if isinstance(disc, Mapping) and isinstance(disc.get("propertyName"), str):
            out.discriminators.append(disc["propertyName"])
        for key, (i, member) in members:
            out.add(_expand(spec, child(pointer, key, i), member, deep, busy))
        return out
    types = node.get("type")
    if isinstance(types, list):
        for t in types:
            if t == "null":
                out.nullable = True
            else:
                out.leaves.append(Leaf(pointer, {**node, "type": t}))
        return out
    if types == "null":
        out.nullable = True
        return out
    enum = node.get("enum")
    if isinstance(enum, list) and None in enum:
        out.nullable = True
        rest = [v for v in enum if v is not None]
        if rest:
            out.leaves.append(Leaf(pointer, {**node, "enum": rest}))
        return out
    out.leaves.append(Leaf(pointer, node))
    return out


def _union_members(node: Node, key: str) -> list[Any]:
    """The members of a node's ``oneOf``/``anyOf``; none when they only constrain the node."""
    members = node.get(key) or []
    shaped = any(not isinstance(m, Mapping) or _SHAPE_KEYS.intersection(m) for m in members)
    return list(members) if shaped else []


def is_union(node: Node) -> bool:
    """Whether a node has several alternatives (or is a nullable wrapper around one)."""
    if any(_union_members(node, k) for k in _UNION_KEYS):
        return True
    if isinstance(node.get("type"), list):
        return True
    return _is_alias_allof(node)


def merged_object(spec: Spec, pointer: str, node: Node) -> MergedObject:
    """Properties and required names of an object schema, ``allOf`` parts merged in order."""
    out = MergedObject()
    _merge_into(spec, pointer, node, out, frozenset())
    return out


def _merge_into(
    spec: Spec, pointer: str, node: Node, out: MergedObject, busy: frozenset[str]
) -> None:
    target = deref(spec, pointer, node)
    if target is not None:
        tptr, tnode = target
        if tptr not in busy:
            _merge_into(spec, tptr, tnode, out, busy | {tptr})
        return
    for i, part in enumerate(node.get("allOf") or []):
        _merge_into(spec, child(pointer, "allOf", i), part, out, busy)
    for name, prop in (node.get("properties") or {}).items():
        out.properties.setdefault(name, []).append(Leaf(child(pointer, "properties", name), prop))
    out.required.update(r for r in node.get("required") or [] if isinstance(r, str))


def allof_has_union(spec: Spec, pointer: str, node: Node) -> bool:
    """Whether an ``allOf`` (at any depth) combines an object with a union."""
    for i, part in enumerate(node.get("allOf") or []):
        target = deref(spec, child(pointer, "allOf", i), part)
        tnode = target[1] if target else part
        if any(_union_members(tnode, k) for k in _UNION_KEYS):
            return True
        if "allOf" in tnode and allof_has_union(spec, target[0] if target else pointer, tnode):
            return True
    return False


def _enum_kind(values: list[Any]) -> Kind:
    kinds = set()
    for value in values:
        if isinstance(value, bool):
            kinds.add(Kind.BOOL)
        elif isinstance(value, int):
            kinds.add(Kind.INT)
        elif isinstance(value, float):
            kinds.add(Kind.FLOAT)
        elif isinstance(value, str):
            kinds.add(Kind.STR)
        else:
            kinds.add(Kind.ANY)
    if kinds == {Kind.INT, Kind.FLOAT}:
        return Kind.FLOAT
    return kinds.pop() if len(kinds) == 1 else Kind.ANY


def kind_of(spec: Spec, leaf: Leaf) -> Kind:
    """Classify a leaf (a node that :func:`expand` does not split further)."""
    node = leaf.node
    if "allOf" in node:
        if allof_has_union(spec, leaf.pointer, node):
            return Kind.UNSUPPORTED
        merged = merged_object(spec, leaf.pointer, node)
        return Kind.STRUCT if merged.properties else Kind.FREEFORM
    t = node.get("type")
    if t == "object" or (t is None and ("properties" in node or "additionalProperties" in node)):
        if node.get("properties"):
            return Kind.STRUCT
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping) and extra:
            return Kind.MAP
        return Kind.FREEFORM
    if t == "array" or (t is None and "items" in node):
        return Kind.ARRAY
    if isinstance(t, str) and t in _PRIMITIVES:
        return _PRIMITIVES[t]
    if "const" in node:
        return _enum_kind([node["const"]])
    if isinstance(node.get("enum"), list) and node["enum"]:
        return _enum_kind(node["enum"])
    return Kind.ANY


def tag_values(spec: Spec, leaf: Leaf) -> tuple[str, ...] | None:
    """The string constants a property allows (``const`` or ``enum``), else ``None``."""
    node = leaf.node
    target = deref(spec, leaf.pointer, node)
    if target is not None:
        node = target[1]
    if isinstance(node.get("const"), str):
        return (node["const"],)
    enum = node.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        return tuple(dict.fromkeys(enum))
    return None

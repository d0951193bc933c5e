"""Translate schema nodes into the intermediate representation.

:class:`Translator` starts from root schemas and follows references lazily, so only what is
reachable from the roots is translated. Struct definitions are built from a work queue
(which makes reference cycles harmless); union aliases are built on first use.

msgspec's union rules drive the translation of ``oneOf``/``anyOf``:

* at most one of each of str / int / float / bool / array may appear (several string
  alternatives collapse into ``str``, several arrays into one array of the merged items);
* at most one object-like type may appear, unless every object alternative is a struct and
  they can all be told apart by one property holding a string constant (the tag). Such
  unions become tagged structs: one variant per (schema, tag value).
* structs that no property tags become one merged struct holding every member's fields
  (sound because every field is optional). A field the members type differently gets the
  union of their alternatives, translated by these same rules (so two untagged structs there
  merge in turn).

Whatever cannot be expressed becomes ``msgspec.Raw`` with a reason (see :class:`RawJson`).

Nullability: a field is nullable when its schema allows null (``nullable: true``, a ``null``
type or alternative) and, by default, also when the object does not require the property:
the API often sends ``null`` for optional properties the spec does not mark nullable, and a
lenient view must decode them (``optional_is_nullable=False`` follows the spec strictly).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from types import MappingProxyType

from proxy.codegen.loader import Node, Spec, SpecError, child, component_of, split
from proxy.codegen.model import (
    AliasDef,
    Definition,
    DefKey,
    DefRef,
    DictOf,
    FieldDef,
    ListOf,
    Prim,
    PrimKind,
    RawJson,
    StructDef,
    Typed,
    TypeExpr,
    UnionOf,
)
from proxy.codegen.naming import class_name, pascal
from proxy.codegen.schema import (
    Alternatives,
    Kind,
    Leaf,
    MergedObject,
    expand,
    kind_of,
    merged_object,
    tag_values,
)

_PRIM_ORDER = (Kind.STR, Kind.INT, Kind.FLOAT, Kind.BOOL)
_PRIM_NAMES: Mapping[Kind, PrimKind] = MappingProxyType(
    {Kind.STR: "str", Kind.INT: "int", Kind.FLOAT: "float", Kind.BOOL: "bool"}
)
#: Properties tried as union tags after any declared discriminator, in this order; then
#: every other property the alternatives have in common, alphabetically.
_TAG_CANDIDATES = ("type", "role", "object", "event")


class Translator:
    """Builds definitions reachable from the roots it is given."""

    def __init__(self, spec: Spec, *, optional_is_nullable: bool = True) -> None:
        self._spec = spec
        self._optional_is_nullable = optional_is_nullable
        self._defs: dict[DefKey, Definition] = {}
        self._fixed_tags: set[DefKey] = set()
        self._queue: deque[DefKey] = deque()
        self._queued: set[DefKey] = set()
        self._typed: dict[str, Typed] = {}
        self._named: dict[str, Typed] = {}
        self._busy: set[str] = set()
        self._merges: dict[tuple[str, ...], DefKey] = {}
        self._merge_names: dict[DefKey, str] = {}
        self._stand_ins: dict[DefKey, DefKey] = {}

    # -- public -------------------------------------------------------------------------

    def add_root(self, pointer: str) -> DefKey:
        """Translate the component schema at ``pointer``; return the key of its definition."""
        typed = self._named_typed(Leaf(pointer, self._spec.node(pointer), named=True))
        self._drain()
        if not isinstance(typed.expr, DefRef):
            raise SpecError(f"root {pointer} is not an object or a union of objects")
        return typed.expr.key

    def try_root(self, pointer: str) -> DefKey | None:
        """Like :meth:`add_root`, but ``None`` for a schema that is not an object or a union
        of objects (a bare string or array body has no definition of its own)."""
        typed = self._named_typed(Leaf(pointer, self._spec.node(pointer), named=True))
        self._drain()
        return typed.expr.key if isinstance(typed.expr, DefRef) else None

    def definitions(self) -> dict[DefKey, Definition]:
        """All definitions built so far."""
        self._drain()
        return dict(self._defs)

    def fixed_tags(self) -> frozenset[DefKey]:
        """Tagged struct keys whose tag property is required and single-valued.

        Such a variant can stand in for the untagged struct of the same schema.
        """
        return frozenset(self._fixed_tags)

    def stand_ins(self) -> dict[DefKey, DefKey]:
        """Component unions that are one merged struct: the union's key -> the struct's key."""
        return dict(self._stand_ins)

    # -- types ----------------------------------------------------------------------------

    def typed_of(self, pointer: str, node: Node) -> Typed:
        """The type of the schema node at ``pointer`` (cached by pointer)."""
        cached = self._typed.get(pointer)
        if cached is not None:
            return cached
        shallow = expand(self._spec, pointer, node, deep=False)
        if not shallow.leaves:
            result = Typed(Prim("any"))
        elif len(shallow.leaves) == 1 and shallow.leaves[0].named:
            inner = self._named_typed(shallow.leaves[0])
            result = Typed(inner.expr, inner.nullable or shallow.nullable)
        elif len(shallow.leaves) == 1:
            result = Typed(self._single(shallow.leaves[0]), shallow.nullable)
        else:
            result = self._union(expand(self._spec, pointer, node, deep=True), pointer)
        self._typed[pointer] = result
        return result

    def _named_typed(self, leaf: Leaf) -> Typed:
        """The type of a component schema: a struct, a union alias, or an inlined type."""
        pointer = leaf.pointer
        cached = self._named.get(pointer)
        if cached is not None:
            return cached
        if pointer in self._busy:
            # A union that contains itself without a struct in between.
            return Typed(RawJson(f"union that contains itself ({_component(pointer)})"))
        alts = expand(self._spec, pointer, leaf.node, deep=True)
        if len(alts.leaves) == 1 and kind_of(self._spec, alts.leaves[0]) is Kind.STRUCT:
            result = Typed(DefRef(self._schedule(DefKey(alts.leaves[0].pointer))), alts.nullable)
        else:
            self._busy.add(pointer)
            try:
                inner = self._alternatives(alts, pointer)
            finally:
                self._busy.discard(pointer)
            if isinstance(inner.expr, UnionOf) and any(
                isinstance(m, DefRef) for m in inner.expr.members
            ):
                key = DefKey(pointer)
                self._defs[key] = AliasDef(key, base_name(self._spec, pointer), inner)
                result = Typed(DefRef(key))
            else:
                result = inner
                if isinstance(inner.expr, DefRef) and inner.expr.key.members:
                    self._stand_ins[DefKey(pointer)] = inner.expr.key
        self._named[pointer] = result
        return result

    def _alternatives(self, alts: Alternatives, where: str) -> Typed:
        if not alts.leaves:
            return Typed(Prim("any"))
        if len(alts.leaves) == 1:
            leaf = alts.leaves[0]
            if leaf.named:
                inner = self._named_typed(leaf)
                return Typed(inner.expr, inner.nullable or alts.nullable)
            return Typed(self._single(leaf), alts.nullable)
        return self._union(alts, where)

    def _single(self, leaf: Leaf) -> TypeExpr:
        kind = kind_of(self._spec, leaf)
        node = leaf.node
        if kind is Kind.STRUCT:
            return DefRef(self._schedule(DefKey(leaf.pointer)))
        if kind is Kind.MAP:
            return DictOf(
                self.typed_of(
                    child(leaf.pointer, "additionalProperties"), node["additionalProperties"]
                )
            )
        if kind is Kind.FREEFORM:
            return DictOf(Typed(Prim("any")))
        if kind is Kind.ARRAY:
            items = node.get("items")
            if not isinstance(items, Mapping) or not items:
                return ListOf(Typed(Prim("any")))
            return ListOf(self.typed_of(child(leaf.pointer, "items"), items))
        if kind is Kind.UNSUPPORTED:
            return RawJson(f"allOf over a union ({_component(leaf.pointer)})")
        if kind is Kind.ANY:
            return Prim("any")
        if kind is Kind.STR and _is_binary(node):
            return Prim("file")
        return Prim(_prim_name(kind))

    def _union(self, alts: Alternatives, where: str) -> Typed:
        spec = self._spec
        by_kind: dict[Kind, list[Leaf]] = {}
        for leaf in alts.leaves:
            by_kind.setdefault(kind_of(spec, leaf), []).append(leaf)
        if Kind.ANY in by_kind:
            return Typed(Prim("any"))
        if Kind.UNSUPPORTED in by_kind:
            return Typed(RawJson(f"allOf over a union ({_component(where)})"))
        members: list[TypeExpr] = [Prim(_prim_name(k)) for k in _PRIM_ORDER if k in by_kind]
        if by_kind.get(Kind.STR) and all(_is_binary(leaf.node) for leaf in by_kind[Kind.STR]):
            members[0] = Prim("file")  # only file parts among the string alternatives
        arrays = by_kind.get(Kind.ARRAY, [])
        if arrays:
            members.append(self._merged_arrays(arrays, where))
        structs = by_kind.get(Kind.STRUCT, [])
        maps = by_kind.get(Kind.MAP, [])
        freeform = by_kind.get(Kind.FREEFORM, [])
        object_like = len(structs) + len(maps) + len(freeform)
        if object_like and Prim("file") in members:
            # FormFile is a struct too: msgspec cannot tell it from another object.
            return Typed(Prim("any"))
        if object_like:
            if freeform and object_like > len(freeform):
                return Typed(
                    RawJson(f"free-form object beside other objects ({_component(where)})")
                )
            if maps and structs:
                return Typed(RawJson(f"map beside structs ({_component(where)})"))
            if freeform:
                members.append(DictOf(Typed(Prim("any"))))
            elif maps:
                members.append(self._merged_maps(maps, where))
            elif len(structs) == 1:
                members.append(DefRef(self._schedule(DefKey(structs[0].pointer))))
            else:
                tagged = self._tagged(structs, alts.discriminators)
                if tagged is None:
                    members.append(DefRef(self._merged(structs, where, alone=not members)))
                else:
                    members.extend(DefRef(k) for k in tagged)
        if len(members) == 1:
            return Typed(members[0], alts.nullable)
        return Typed(UnionOf(tuple(members)), alts.nullable)

    def _merged_arrays(self, arrays: list[Leaf], where: str) -> TypeExpr:
        if len(arrays) == 1:
            return self._single(arrays[0])
        items = Alternatives()
        for leaf in arrays:
            node = leaf.node.get("items")
            if not isinstance(node, Mapping) or not node:
                return ListOf(Typed(Prim("any")))
            items.add(expand(self._spec, child(leaf.pointer, "items"), node, deep=True))
        return ListOf(self._alternatives(items, where))

    def _merged_maps(self, maps: list[Leaf], where: str) -> TypeExpr:
        if len(maps) == 1:
            return self._single(maps[0])
        values = Alternatives()
        for leaf in maps:
            pointer = child(leaf.pointer, "additionalProperties")
            values.add(expand(self._spec, pointer, leaf.node["additionalProperties"], deep=True))
        return DictOf(self._alternatives(values, where))

    # -- tagged unions -----------------------------------------------------------------------

    def _tagged(self, structs: list[Leaf], discriminators: list[str]) -> list[DefKey] | None:
        """Tagged variant keys for a union of structs, or ``None`` when no property tags them.

        A property can tag the union when every alternative declares it with string
        constants, the constants of different alternatives are disjoint, and every
        alternative requires it (a declared discriminator counts as requiring it).
        """
        spec = self._spec
        merged = [merged_object(spec, s.pointer, s.node) for s in structs]
        common = set.intersection(*(set(m.properties) for m in merged))
        candidates = [*discriminators, *_TAG_CANDIDATES, *sorted(common)]
        for name in dict.fromkeys(candidates):
            if name not in common:
                continue
            keys: list[DefKey] = []
            seen: set[str] = set()
            fixed: list[DefKey] = []
            for leaf, obj in zip(structs, merged, strict=True):
                values = tag_values(spec, obj.properties[name][-1])
                required = name in obj.required
                if values is None or not (required or name in discriminators):
                    break
                if seen.intersection(values):
                    break
                seen.update(values)
                variant_keys = [DefKey(leaf.pointer, name, v) for v in values]
                keys.extend(variant_keys)
                if required and len(values) == 1:
                    fixed.append(variant_keys[0])
            else:
                for key in keys:
                    self._schedule(key)
                self._fixed_tags.update(fixed)
                return keys
        return None

    # -- merged structs ----------------------------------------------------------------------

    def _merged(self, structs: list[Leaf], where: str, *, alone: bool) -> DefKey:
        """The merged struct of untagged ``structs``.

        There is one per list of members, named after the union (at ``where``) that first
        needs it, so names do not depend on how many places use it; ``Object`` is appended
        when that union has other alternatives too, as its alias takes the plain name.
        """
        pointers = tuple(leaf.pointer for leaf in structs)
        key = self._merges.get(pointers)
        if key is None:
            key = self._merges[pointers] = DefKey(where, members=pointers)
            name = base_name(self._spec, where)
            self._merge_names[key] = name if alone else name + "Object"
            self._schedule(key)
        return key

    def _build_merged(self, key: DefKey) -> StructDef:
        spec = self._spec
        objects = [merged_object(spec, p, spec.node(p)) for p in key.members]
        required = set.intersection(*(o.required for o in objects))
        names = dict.fromkeys(name for o in objects for name in o.properties)
        fields: list[FieldDef] = []
        for name in names:
            holders = [o for o in objects if name in o.properties]
            typed = self._merged_field(holders, name, child(key.pointer, "properties", name))
            fields.append(FieldDef(name, self._optional(typed, name in required)))
        return StructDef(key, self._merge_names[key], tuple(fields))

    def _merged_field(self, holders: list[MergedObject], name: str, where: str) -> Typed:
        """One field of a merged struct: the members' common type, else their union."""
        typeds = [self._property_typed(o, name) for o in holders]
        nullable = any(t.nullable for t in typeds)
        if all(t.expr == typeds[0].expr for t in typeds):
            return Typed(typeds[0].expr, nullable)
        alts = Alternatives()
        for obj in holders:
            last = obj.properties[name][-1]
            alts.add(expand(self._spec, last.pointer, last.node, deep=True))
        union = self._alternatives(alts, where)
        return Typed(union.expr, union.nullable or nullable)

    # -- structs ---------------------------------------------------------------------------

    def _schedule(self, key: DefKey) -> DefKey:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.append(key)
        return key

    def _drain(self) -> None:
        while self._queue:
            key = self._queue.popleft()
            self._defs[key] = self._build_struct(key)

    def _build_struct(self, key: DefKey) -> StructDef:
        if key.members:
            return self._build_merged(key)
        node = self._spec.node(key.pointer)
        merged = merged_object(self._spec, key.pointer, node)
        fields: list[FieldDef] = []
        for name in merged.properties:
            if name == key.tag_field:
                continue
            typed = self._property_typed(merged, name)
            fields.append(FieldDef(name, self._optional(typed, name in merged.required)))
        return StructDef(key, base_name(self._spec, key.pointer), tuple(fields))

    def _property_typed(self, merged: MergedObject, name: str) -> Typed:
        """A property's type (the last ``allOf`` part's), nullable if any part allows null."""
        defs = merged.properties[name]
        last = defs[-1]
        typed = self.typed_of(last.pointer, last.node)
        if not typed.nullable and any(self.typed_of(d.pointer, d.node).nullable for d in defs[:-1]):
            return Typed(typed.expr, True)
        return typed

    def _optional(self, typed: Typed, required: bool) -> Typed:
        """By default, a property an object does not require also accepts null."""
        if self._optional_is_nullable and not required and not typed.nullable:
            return Typed(typed.expr, True)
        return typed


def _is_binary(node: Node) -> bool:
    """A ``format: binary`` string: the file part of a multipart form."""
    return node.get("format") == "binary"


def _prim_name(kind: Kind) -> PrimKind:
    name = _PRIM_NAMES.get(kind)
    if name is None:
        raise ValueError(kind)
    return name


def _component(pointer: str) -> str:
    """The name of the component schema a pointer is in (for messages)."""
    segments = split(pointer)
    if segments[:2] == ["components", "schemas"] and len(segments) > 2:
        return segments[2]
    return pointer


def base_name(spec: Spec, pointer: str) -> str:
    """The class name a schema node would get before collisions are resolved.

    Component schemas keep their (sanitized) names. Inline schemas are named after the
    component that contains them plus the PascalCase of each property on the way down;
    union alternatives add the PascalCase of their ``type`` constant (else ``Option<i>``)
    and map values add ``Value``.
    """
    component = component_of(pointer)
    if component is None:
        raise SpecError(f"cannot name a schema outside components: {pointer}")
    segments = split(pointer)
    name = class_name(segments[2])
    rest = segments[3:]
    i = 0
    current = component
    while i < len(rest):
        seg = rest[i]
        if seg in ("properties", "oneOf", "anyOf", "allOf") and i + 1 < len(rest):
            parent = current
            current = child(current, seg, rest[i + 1])
            if seg == "properties":
                name += pascal(rest[i + 1])
            elif seg != "allOf":
                name += _option_suffix(spec, parent, seg, current, rest[i + 1])
            i += 2
            continue
        current = child(current, seg)
        if seg == "additionalProperties":
            name += "Value"
        i += 1
    return name


def _option_suffix(spec: Spec, parent: str, keyword: str, pointer: str, index: str) -> str:
    """Name part for a union alternative: none when it is the only non-null alternative."""
    siblings = spec.node(parent).get(keyword) or []
    if sum(1 for s in siblings if isinstance(s, Mapping) and s.get("type") != "null") == 1:
        return ""
    node = spec.node(pointer)
    props = node.get("properties")
    if isinstance(props, Mapping) and isinstance(props.get("type"), Mapping):
        values = props["type"].get("enum")
        if isinstance(values, list) and len(values) == 1 and isinstance(values[0], str):
            return pascal(values[0])
    return f"Option{index}"

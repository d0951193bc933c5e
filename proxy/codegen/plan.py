"""Turn translated definitions into a plan: final keys, class names and module placement.

* A schema whose only tagged variant has a required, single-valued tag needs no separate
  untagged struct: the tagged variant stands in for it (it decodes the same documents).
  Likewise a component union that is one merged struct is looked up as that struct.
* Names: component schemas keep their names, inline schemas get derived names, tagged
  variants of a schema that needs several classes get the tag value appended. Collisions
  are resolved with numeric suffixes in a fixed order, so names are stable.
* Modules: a definition reachable from one group's roots lives in that group's module;
  one reachable from several lives in the shared module, which therefore never imports a
  group module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from proxy.codegen.groups import SHARED_MODULE
from proxy.codegen.loader import SCHEMAS_POINTER, child, component_of
from proxy.codegen.model import Definition, DefKey, definition_refs
from proxy.codegen.naming import pascal, unique


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the emitter needs: definitions by final key, names and modules."""

    definitions: Mapping[DefKey, Definition]
    aliases: Mapping[DefKey, DefKey]
    names: Mapping[DefKey, str]
    modules: Mapping[DefKey, str]
    roots: Mapping[str, tuple[DefKey, ...]]

    def resolve(self, key: DefKey) -> DefKey:
        """The final key a translated key stands for."""
        return self.aliases.get(key, key)

    def name_of(self, key: DefKey) -> str:
        """The class or alias name of a (possibly collapsed) key."""
        return self.names[self.resolve(key)]

    def module_of(self, key: DefKey) -> str:
        """The module a (possibly collapsed) key is emitted in."""
        return self.modules[self.resolve(key)]

    def lookup_schema(self, schema_name: str) -> DefKey | None:
        """The final key of a component schema's untagged definition, if it was emitted."""
        key = self.resolve(DefKey(child(SCHEMAS_POINTER, schema_name)))
        return key if key in self.definitions else None

    def in_module(self, module: str) -> list[DefKey]:
        """Keys emitted in ``module``, sorted by name."""
        keys = [k for k, m in self.modules.items() if m == module]
        return sorted(keys, key=lambda k: self.names[k])


def make_plan(
    definitions: Mapping[DefKey, Definition],
    fixed_tags: Iterable[DefKey],
    group_roots: Mapping[str, tuple[DefKey, ...]],
    stand_ins: Mapping[DefKey, DefKey] | None = None,
) -> Plan:
    """Collapse, name and place ``definitions`` (``stand_ins``: extra key -> final key)."""
    aliases = {**_collapse(definitions, frozenset(fixed_tags)), **(stand_ins or {})}
    final = {k: d for k, d in definitions.items() if k not in aliases}

    def resolve(key: DefKey) -> DefKey:
        return aliases.get(key, key)

    roots = {module: tuple(resolve(k) for k in keys) for module, keys in group_roots.items()}
    reached: dict[DefKey, set[str]] = {}
    for module, keys in roots.items():
        stack = list(keys)
        seen: set[DefKey] = set()
        while stack:
            key = stack.pop()
            if key in seen:
                continue
            seen.add(key)
            reached.setdefault(key, set()).add(module)
            stack.extend(resolve(k) for k in definition_refs(final[key]))
    # Typing a merged struct's field translates each member's type before their union
    # replaces them; what only those used is left unreached and is not emitted (or named).
    final = {k: d for k, d in final.items() if k in reached}
    modules = {
        key: next(iter(groups)) if len(groups) == 1 else SHARED_MODULE
        for key, groups in reached.items()
    }
    return Plan(final, aliases, _names(final), modules, roots)


def _collapse(
    definitions: Mapping[DefKey, Definition], fixed: frozenset[DefKey]
) -> dict[DefKey, DefKey]:
    by_pointer: dict[str, list[DefKey]] = {}
    for key in definitions:
        by_pointer.setdefault(key.pointer, []).append(key)
    aliases: dict[DefKey, DefKey] = {}
    for pointer, keys in by_pointer.items():
        plain = DefKey(pointer)
        tagged = [k for k in keys if k.tag_field is not None]
        if plain in definitions and len(tagged) == 1 and tagged[0] in fixed:
            aliases[plain] = tagged[0]
    return aliases


def _names(final: Mapping[DefKey, Definition]) -> dict[DefKey, str]:
    per_pointer: dict[str, int] = {}
    for key in final:
        per_pointer[key.pointer] = per_pointer.get(key.pointer, 0) + 1

    def desired(key: DefKey) -> tuple[int, str]:
        base = final[key].base_name
        if key.tag is None or per_pointer[key.pointer] == 1:
            rank = 0 if component_of(key.pointer) == key.pointer else 1
            return rank, base
        return 2, base + pascal(key.tag)

    order = sorted(final, key=lambda k: (desired(k)[0], k))
    taken: set[str] = set()
    names: dict[DefKey, str] = {}
    for key in order:
        name = unique(desired(key)[1], taken)
        taken.add(name)
        names[key] = name
    return names

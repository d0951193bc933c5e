"""Line layout for the few statement shapes the emitter writes.

The generated modules must already be formatted the way ``ruff format`` (line length 100)
formats them, so that regenerating never depends on ruff being installed. This module
reproduces ruff's choices for exactly these shapes:

* ``class Name(base, kw=value, ...):`` headers,
* annotated assignments ``name: <type> = <value>`` where the type is a union of names and
  subscripts and the value is a name or a call,
* ``from module import a, b`` statements,
* calls used as elements of a tuple literal.

A shape it cannot lay out within the line length raises :class:`LayoutError` instead of
writing a line ruff would change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LINE_LENGTH = 100
INDENT = "    "


class LayoutError(Exception):
    """A statement does not fit any of the supported layouts."""


@dataclass(frozen=True, slots=True)
class Name:
    """An atom such as ``str`` or ``msgspec.UnsetType``."""

    text: str


@dataclass(frozen=True, slots=True)
class Sub:
    """A subscript such as ``list[...]`` or ``dict[str, ...]``."""

    head: str
    args: tuple[TypeText, ...]


@dataclass(frozen=True, slots=True)
class Alt:
    """Alternatives joined with ``|``."""

    members: tuple[TypeText, ...]


TypeText = Name | Sub | Alt


@dataclass(frozen=True, slots=True)
class Call:
    """A call with already-rendered arguments (``name="x"``, ``"GET"``, ...)."""

    callee: str
    args: tuple[str, ...]


Value = Name | Call | TypeText


def flat(expr: TypeText | Call) -> str:
    """The one-line rendering of an expression."""
    if isinstance(expr, Name):
        return expr.text
    if isinstance(expr, Sub):
        return f"{expr.head}[{', '.join(flat(a) for a in expr.args)}]"
    if isinstance(expr, Alt):
        return " | ".join(flat(m) for m in expr.members)
    return f"{expr.callee}({', '.join(expr.args)})"


def _fits(line: str) -> bool:
    return len(line) <= LINE_LENGTH


def _is_lone_string(line: str) -> bool:
    """A line holding one string literal (ruff cannot shorten it, so leaves it long)."""
    text = line.strip().removesuffix(",")
    return len(text) >= 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1]


def _check(lines: list[str]) -> list[str]:
    for line in lines:
        if not _fits(line) and not _is_lone_string(line):
            raise LayoutError(f"line too long after layout: {line!r}")
    return lines


def _sub_lines(sub: Sub, indent: str, prefix: str, suffix: str) -> list[str]:
    inner = indent + INDENT
    if len(sub.args) == 1:
        body = type_block(sub.args[0], inner)
    else:
        one = inner + ", ".join(flat(a) for a in sub.args)
        body = [one] if _fits(one) else [inner + flat(a) + "," for a in sub.args]
    return [f"{indent}{prefix}{sub.head}[", *body, f"{indent}]{suffix}"]


def type_block(expr: TypeText, indent: str) -> list[str]:
    """Lines for a type inside brackets or parentheses, starting at ``indent``."""
    one = indent + flat(expr)
    if _fits(one):
        return [one]
    if isinstance(expr, Alt):
        lines: list[str] = []
        for i, member in enumerate(expr.members):
            prefix = "" if i == 0 else "| "
            text = indent + prefix + flat(member)
            if _fits(text) or not isinstance(member, Sub):
                lines.append(text)
            else:
                lines.extend(_sub_lines(member, indent, prefix, ""))
        return lines
    if isinstance(expr, Sub):
        return _sub_lines(expr, indent, "", "")
    return [one]


def call_lines(call: Call, indent: str, head: str, suffix: str = "") -> list[str]:
    """``head + callee(args) + suffix``, split inside the call's parentheses when needed."""
    one = f"{indent}{head}{flat(call)}{suffix}"
    if _fits(one):
        return [one]
    opening = f"{indent}{head}{call.callee}("
    hug = indent + INDENT + ", ".join(call.args)
    if _fits(hug):
        return _check([opening, hug, f"{indent}){suffix}"])
    return _check(
        [opening, *(indent + INDENT + arg + "," for arg in call.args), f"{indent}){suffix}"]
    )


def class_header(name: str, args: Sequence[str]) -> list[str]:
    """``class name(args):``."""
    return call_lines(Call(name, tuple(args)), "", "class ", ":")


def import_from(module: str, names: Sequence[str]) -> list[str]:
    """``from module import names`` (names already sorted)."""
    one = f"from {module} import {', '.join(names)}"
    if _fits(one):
        return [one]
    return _check([f"from {module} import (", *(INDENT + n + "," for n in names), ")"])


def annotated_assignment(indent: str, target: str, annotation: TypeText, value: Value) -> list[str]:
    """``target: annotation = value`` laid out like ruff lays it out."""
    ann = flat(annotation)
    head = f"{indent}{target}: {ann} = "
    one = head + flat(value)
    if _fits(one):
        return [one]
    inner = indent + INDENT
    if isinstance(value, Alt | Sub):
        # The value is a type (a type alias): split inside the value.
        if _fits(head + "("):
            if isinstance(value, Alt):
                return _check([head + "(", *type_block(value, inner), indent + ")"])
            return _check(_sub_lines(value, indent, f"{target}: {ann} = ", ""))
        raise LayoutError(f"cannot lay out alias {target}")
    if isinstance(value, Call) and _fits(f"{head}{value.callee}("):
        return call_lines(value, indent, f"{target}: {ann} = ")
    if _fits(head + "("):
        if _fits(inner + flat(value)):
            return [head + "(", inner + flat(value), indent + ")"]
        if isinstance(value, Call):
            return _check([head + "(", *call_lines(value, inner, ""), indent + ")"])
    # Split the annotation; the value follows the closing parenthesis.
    body = type_block(annotation, inner)
    closing = f"{indent}) = {flat(value)}"
    if _fits(closing) or not isinstance(value, Call):
        return _check([f"{indent}{target}: (", *body, closing])
    return _check([f"{indent}{target}: (", *body, *call_lines(value, indent, ") = ")])

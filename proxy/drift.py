"""Drift report: what stored traffic holds that the generated types do not know.

Each stored exchange's JSON bodies (request, response or error, every SSE event's data) are
walked together with the type the route table names for them, using `msgspec.inspect` to see
each struct's fields, tagged unions, lists and maps. Four kinds of items are reported:

* `field`: an object key the struct at that place does not declare (`Struct.key`);
* `enum`: a string value not among the values the spec lists for that field
  (`proxy.schemas.enums.ENUMS`; location `Struct.field`);
* `tag`: a union tag value (such as `type: "new_item"`) with no member; the location is the
  field holding the union (`Struct.field`) or, for a whole body, `METHOD /v1/template part`;
* `event`: a stream event type with no type (a Responses event `type`, an Assistants SSE
  `event:` name); the location is `METHOD /v1/template`.

Counts are occurrences; the example is the first exchange (lowest id) that shows the item.
Values kept as `msgspec.Raw` or typed `Any` are not looked into.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec
from msgspec import inspect as mi

from proxy.decode import RouteTable, is_json_request
from proxy.exchange import Exchange
from proxy.headers import header_value
from proxy.schemas.enums import ENUMS
from proxy.schemas.errors import ErrorResponse
from proxy.schemas.routes import ROUTES, Route
from proxy.sse import parse_event
from proxy.store.sqlite_file import read_exchanges

KINDS = ("field", "enum", "tag", "event")
_SEQUENCES = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)
# The Assistants stream ends with `event: done` / `data: [DONE]`, which has no type by design.
_UNTYPED_EVENTS = frozenset({"done"})


class DriftError(Exception):
    """The cassette cannot be read."""


class DriftItem(msgspec.Struct, kw_only=True):
    kind: str
    location: str
    value: str | None
    count: int
    example: int


class _Seen:
    __slots__ = ("count", "example")

    def __init__(self, example: int) -> None:
        self.count = 0
        self.example = example


class DriftScanner:
    """Walks exchanges against the generated types; type info is built once per type."""

    def __init__(
        self,
        routes: Iterable[Route] = ROUTES,
        enums: Mapping[tuple[str, str], tuple[str, ...]] = ENUMS,
    ) -> None:
        self._routes = RouteTable(routes)
        self._enums = {key: frozenset(values) for key, values in enums.items()}
        self._infos: dict[Any, mi.Type] = {}
        self._fields: dict[type, dict[str, mi.Field]] = {}
        self._seen: dict[tuple[str, str, str | None], _Seen] = {}
        self._exchange_id = 0

    # -- results ----------------------------------------------------------------------------

    def items(self) -> list[DriftItem]:
        """Every item seen so far, by count (descending), then location, kind and value."""
        items = [
            DriftItem(
                kind=kind, location=location, value=value, count=seen.count, example=seen.example
            )
            for (kind, location, value), seen in self._seen.items()
        ]
        items.sort(key=lambda i: (-i.count, i.location, i.kind, i.value or ""))
        return items

    def _report(self, kind: str, location: str, value: str | None = None) -> None:
        key = (kind, location, value)
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen[key] = _Seen(self._exchange_id)
        seen.count += 1

    # -- exchanges --------------------------------------------------------------------------

    def scan(self, exchange: Exchange) -> None:
        compiled = self._routes.resolve(exchange.method, exchange.path)
        if compiled is None:
            return
        self._exchange_id = exchange.id
        route = compiled.route
        where = f"{route.method} {compiled.template}"
        if route.request is not None and exchange.request_body and is_json_request(exchange):
            self._walk_body(exchange.request_body, route.request, f"{where} request")
        if exchange.status >= 400:
            if _json_response(exchange):
                self._walk_body(
                    exchange.response_body, route.error or ErrorResponse, f"{where} error"
                )
        elif exchange.stream:
            self._scan_stream(exchange, route, where)
        elif route.response is not None and _json_response(exchange):
            self._walk_body(exchange.response_body, route.response, f"{where} response")

    def _scan_stream(self, exchange: Exchange, route: Route, where: str) -> None:
        for event in exchange.events:
            parsed = parse_event(event.data)
            if parsed is None:
                continue
            event_type = route.stream
            if route.events is not None:
                if parsed.event is None:
                    continue
                event_type = route.events.get(parsed.event)
                if event_type is None and parsed.event not in _UNTYPED_EVENTS:
                    self._report("event", where, parsed.event)
            if event_type is None or not parsed.data or parsed.data == "[DONE]":
                continue
            data = parsed.data.encode("utf-8")
            if route.events is not None:
                self._walk_body(data, event_type, f"{where} event:{parsed.event}")
            else:
                self._walk_body(data, event_type, where, stream=True)

    def _walk_body(self, data: bytes, type_: Any, where: str, *, stream: bool = False) -> None:
        try:
            value = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return  # not JSON: the typed view already notes undecodable bodies
        info = self._infos.get(type_)
        if info is None:
            info = self._infos[type_] = mi.type_info(type_)
        self._walk(value, info, where, "event" if stream else "tag")

    # -- the walk -----------------------------------------------------------------------------

    def _walk(self, value: Any, info: mi.Type, where: str, tag_kind: str = "tag") -> None:
        """Walk a decoded JSON value with its type; `where` names the place for messages."""
        if isinstance(info, mi.StructType):
            if isinstance(value, dict):
                self._walk_struct(value, info, where, tag_kind)
        elif isinstance(info, mi.UnionType):
            self._walk_union(value, info, where, tag_kind)
        elif isinstance(info, _SEQUENCES):
            if isinstance(value, list):
                for item in value:
                    self._walk(item, info.item_type, where)
        elif isinstance(info, mi.DictType):
            if isinstance(value, dict):
                for item in value.values():
                    self._walk(item, info.value_type, where)
        elif isinstance(info, mi.TupleType) and isinstance(value, list):
            for item, item_type in zip(value, info.item_types, strict=False):
                self._walk(item, item_type, where)
        # Scalars, Any and msgspec.Raw: nothing to look into.

    def _walk_union(self, value: Any, info: mi.UnionType, where: str, tag_kind: str) -> None:
        if isinstance(value, dict):
            structs = [t for t in info.types if isinstance(t, mi.StructType)]
            tagged = [s for s in structs if s.tag_field is not None]
            if tagged:
                tag_field = tagged[0].tag_field
                tag = value.get(tag_field)
                member = next((s for s in tagged if s.tag == tag), None)
                if member is not None:
                    self._walk_struct(value, member, where, tag_kind)
                elif isinstance(tag, str):
                    self._report(tag_kind, where, tag)
                return
            if structs:
                self._walk_struct(value, structs[0], where, tag_kind)
                return
            maps = [t for t in info.types if isinstance(t, mi.DictType)]
            if maps:
                self._walk(value, maps[0], where)
        elif isinstance(value, list):
            for member_type in info.types:
                if isinstance(member_type, (*_SEQUENCES, mi.TupleType)):
                    self._walk(value, member_type, where)
                    return

    def _walk_struct(
        self, value: dict[str, Any], info: mi.StructType, where: str, tag_kind: str
    ) -> None:
        if info.tag_field is not None and value.get(info.tag_field) != info.tag:
            tag = value.get(info.tag_field)
            if isinstance(tag, str):
                self._report(tag_kind, where, tag)
            return
        name = info.cls.__name__
        fields = self._fields.get(info.cls)
        if fields is None:
            fields = self._fields[info.cls] = {f.encode_name: f for f in info.fields}
        for key, item in value.items():
            if key == info.tag_field:
                continue
            field = fields.get(key)
            location = f"{name}.{key}"
            if field is None:
                self._report("field", location)
                continue
            known = self._enums.get((name, key))
            if known is not None:
                for text in item if isinstance(item, list) else (item,):
                    if isinstance(text, str) and text not in known:
                        self._report("enum", location, text)
            self._walk(item, field.type, location)


def _json_response(exchange: Exchange) -> bool:
    content_type = header_value(exchange.response_headers, "content-type") or ""
    return exchange.content_encoding is None and "json" in content_type.lower()


def drift_report(exchanges: Iterable[Exchange]) -> list[DriftItem]:
    scanner = DriftScanner()
    for exchange in exchanges:
        scanner.scan(exchange)
    return scanner.items()


def check_cassette(path: Path) -> None:
    """Raise `DriftError` unless `path` is an SQLite file with an `exchanges` table.

    Checked read-only: opening it as a store would create a missing file and migrate any
    SQLite database it is given.
    """
    if not path.is_file():
        raise DriftError(f"no cassette at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'exchanges'"
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise DriftError(f"{path}: not a usable cassette ({exc})") from None
    if found is None:
        raise DriftError(f"{path}: not a cassette (no exchanges table)")


def read_cassette(path: Path) -> list[DriftItem]:
    """The drift report of an existing cassette, read without migrating or writing it."""
    check_cassette(path)
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            exchanges = read_exchanges(db)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise DriftError(f"{path}: cannot read exchanges ({exc})") from None
    return drift_report(exchanges)


def render_json(items: list[DriftItem]) -> str:
    return msgspec.json.encode(items).decode("utf-8")


def render_table(items: list[DriftItem]) -> str:
    """A fixed-width table plus a one-line summary by kind."""
    if not items:
        return "no drift: every field, enum value, tag and event type seen is known\n"
    rows = [("COUNT", "KIND", "LOCATION", "VALUE", "EXAMPLE")]
    rows += [
        (str(i.count), i.kind, i.location, "" if i.value is None else i.value, f"#{i.example}")
        for i in items
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    lines = [
        "  ".join([row[0].rjust(widths[0]), *(row[c].ljust(widths[c]) for c in (1, 2, 3)), row[4]])
        for row in rows
    ]
    counts = ", ".join(f"{sum(i.kind == kind for i in items)} {kind}" for kind in KINDS)
    lines += ["", f"{len(items)} items: {counts}"]
    return "\n".join(lines) + "\n"

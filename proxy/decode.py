"""Typed view of exchanges (work in progress: filled in from the generated schemas)."""

from __future__ import annotations

from proxy.exchange import Exchange


class TypedView:
    def describe(self, exchange: Exchange) -> None:
        return None

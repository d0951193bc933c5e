"""Cassettes that several tests share: the recordings none of them used, over the whole session.

A test's own cassette is judged when the test ends. A cassette that several tests name is opened
afresh by each, so what one test leaves is usually another's: a recording is unused only when no
test sharing the cassette used it, which is known once all of them have run. Under pytest-xdist
they run on different workers, so only the controller, merging what each worker saw, can tell.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

# A dataclass, not a msgspec Struct: this module loads with the plugin in every pytest run,
# before (and whether or not) any test uses a cassette.


@dataclass
class SharedUse:
    """One shared cassette over the session, or one worker's part of it."""

    tests: int  # the collected tests that use it
    path: str = ""
    ran: int = 0  # how many of them ran their body
    unused: list[int] | None = None  # ids of the recordings none of them used; None until one ran

    def add(self, path: str, unused: Iterable[int], ran: int = 1) -> None:
        self.path = path
        self.ran += ran
        kept = set(unused) if self.unused is None else set(self.unused).intersection(unused)
        self.unused = sorted(kept)

    @property
    def all_ran(self) -> bool:
        """Only then is a recording no test used really unused (not left for a deselected one)."""
        return self.ran >= self.tests


class SharedCassettes:
    def __init__(self) -> None:
        self.uses: dict[str, SharedUse] = {}

    def collected(self, names: Iterable[str]) -> None:
        """The cassette name of every collected test that uses one: those named more than once
        are shared."""
        counts = Counter(names)
        self.uses = {name: SharedUse(tests=n) for name, n in counts.items() if n > 1}

    def is_shared(self, name: str) -> bool:
        return name in self.uses

    def ran(self, name: str, path: str, unused: Iterable[int]) -> None:
        """A test sharing `name` ran; `unused` are the recordings it did not use."""
        self.uses[name].add(path, unused)

    def to_wire(self) -> dict[str, dict[str, Any]]:
        """What a worker hands the controller (plain data: xdist sends it between processes)."""
        return {name: asdict(use) for name, use in self.uses.items() if use.ran}

    def merge(self, wire: dict[str, dict[str, Any]]) -> None:
        """On the controller: fold in one worker's `to_wire`."""
        for name, raw in wire.items():
            part = SharedUse(**raw)
            use = self.uses.setdefault(name, SharedUse(tests=part.tests))
            use.add(part.path, part.unused or [], ran=part.ran)

    def left_unused(self) -> list[tuple[str, SharedUse]]:
        """The shared cassettes whose tests all ran and left recordings unused, by name."""
        return sorted(
            ((name, use) for name, use in self.uses.items() if use.all_ran and use.unused),
            key=lambda item: item[0],
        )

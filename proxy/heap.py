"""Collector settings for a process that is the proxy and nothing else (`serve`, `run`).

Not for the pytest plugin: there the process is the user's test session, and so is its collector.
"""

from __future__ import annotations

import gc

# Each exchange allocates and soon frees a few hundred tracked objects (decoded structs, headers,
# log fields). At CPython's default of 700 a young-generation pass ran every few exchanges, and
# was a few percent of a recording proxy's CPU; what survives a request is a handful of objects.
YOUNG_GENERATION_THRESHOLD = 20_000


def settle_after_start() -> None:
    """Once the proxy is up: what is alive now (modules, the generated API types, the cassette's
    index) lives as long as the process. Frozen, it is never traversed by a collection again;
    before, each full collection walked all of it (tens of milliseconds with the types loaded)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)

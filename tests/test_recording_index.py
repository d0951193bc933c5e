"""The in-memory index: recorded order per key, repeat-last, and the unused recordings."""

from __future__ import annotations

from proxy.exchange import Outcome
from proxy.recordings import RecordingIndex
from tests.support.exchanges import stored_exchange


def unused_ids(index: RecordingIndex) -> list[int]:
    return [exchange.id for exchange in index.unused()]


def test_recordings_are_served_in_order_then_the_last_repeats() -> None:
    index = RecordingIndex(repeat_last=True)
    first, second = (stored_exchange("/v1/x", b"{}", exchange_id=n) for n in (1, 2))
    index.add(first, "k")
    index.add(second, "k")
    assert unused_ids(index) == [1, 2]

    taken = [index.take("k") for _ in range(3)]

    assert [t.exchange.id if t.exchange else None for t in taken] == [1, 2, 2]
    assert [t.used_up for t in taken] == [False, False, True]
    assert unused_ids(index) == []
    assert index.take("other").exchange is None


def test_used_up_is_a_miss_without_repeat_last() -> None:
    index = RecordingIndex(repeat_last=False)
    index.add(stored_exchange("/v1/x", b"{}", exchange_id=1), "k")
    assert index.take("k").exchange is not None
    again = index.take("k")
    assert (again.exchange, again.used_up, again.replayed, again.recorded) == (None, True, 1, 1)


def test_unused_counts_keys_separately_and_auto_recordings_as_served() -> None:
    index = RecordingIndex(repeat_last=True)
    for n, key in enumerate(["a", "a", "a", "b"], start=1):
        index.add(stored_exchange("/v1/x", b"{}", exchange_id=n), key)
    index.take("a")
    assert unused_ids(index) == [2, 3, 4]  # two of "a", one of "b"

    # auto mode: a miss under "a" is recorded for the live request, which moves past the rest
    index.add(stored_exchange("/v1/x", b"{}", exchange_id=5), "a", consumed=True)
    assert unused_ids(index) == [4]
    index.add(stored_exchange("/v1/x", b"{}", exchange_id=6), "c", consumed=True)
    assert unused_ids(index) == [4]
    index.take("b")
    assert unused_ids(index) == []
    assert len(index) == 6


def test_incomplete_recordings_are_not_indexed() -> None:
    index = RecordingIndex(repeat_last=True)
    for outcome in Outcome:
        if outcome is not Outcome.COMPLETE:
            partial = stored_exchange("/v1/x", b"{}", exchange_id=1)
            partial.outcome = outcome
            index.add(partial, "k")
    assert (unused_ids(index), len(index), index.take("k").exchange) == ([], 0, None)


def test_a_stream_its_client_left_is_indexed() -> None:
    """Replayed, it gives the client the events it had when it left."""
    index = RecordingIndex(repeat_last=True)
    left = stored_exchange("/v1/x", b"{}", exchange_id=1)
    left.outcome, left.stream = Outcome.CLIENT_DISCONNECTED, True
    index.add(left, "k")
    assert index.take("k").exchange is left

"""Two writers on one cassette file (pytest-xdist workers sharing a cassette, two servers): each
hands out ids from what the file held when it opened, so both start at the same id. Every
exchange must still be stored, none replaced, each writer's in its own order."""

from __future__ import annotations

import asyncio
from pathlib import Path

from proxy.store import CassetteStore
from proxy.store.sqlite_file import read_contents
from tests.support.exchanges import stored_exchange


async def _open_writer(path: Path) -> CassetteStore:
    store, _ = await CassetteStore.open(path)
    store.start()
    return store


def _submit(store: CassetteStore, request: bytes, events: list[bytes] | None = None) -> int:
    exchange_id = store.allocate_id()
    store.submit(
        stored_exchange("/v1/chat/completions", request, exchange_id=exchange_id, events=events)
    )
    return exchange_id


def test_writers_that_opened_together_keep_every_exchange(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"

    async def scenario() -> tuple[list[int], list[int]]:
        alice, bob = await _open_writer(path), await _open_writer(path)
        given_alice = [
            _submit(alice, b'{"who": "alice", "n": 1}', [b"data: a1\n\n"]),
            _submit(alice, b'{"who": "alice", "n": 2}'),
        ]
        given_bob = [
            _submit(bob, b'{"who": "bob", "n": 1}', [b"data: b1\n\n"]),
            _submit(bob, b'{"who": "bob", "n": 2}', [b"data: b2\n\n"]),
        ]
        # Whichever batch commits second finds its ids taken.
        await asyncio.gather(alice.close(), bob.close())
        return given_alice, given_bob

    given_alice, given_bob = asyncio.run(scenario())
    assert given_alice == given_bob == [1, 2]  # the clash this test is about

    stored = read_contents(path, load=True).exchanges
    by_body = {e.request_body: e for e in stored}
    assert sorted(by_body) == sorted(
        [
            b'{"who": "alice", "n": 1}',
            b'{"who": "alice", "n": 2}',
            b'{"who": "bob", "n": 1}',
            b'{"who": "bob", "n": 2}',
        ]
    )
    assert len({e.id for e in stored}) == 4
    # Each writer's exchanges keep their order, and their events stay with them.
    for who in (b"alice", b"bob"):
        first = by_body[b'{"who": "%s", "n": 1}' % who]
        second = by_body[b'{"who": "%s", "n": 2}' % who]
        assert first.id < second.id
        assert [ev.data for ev in first.events] == [b"data: %s1\n\n" % who[:1]]
    assert [ev.data for ev in by_body[b'{"who": "bob", "n": 2}'].events] == [b"data: b2\n\n"]
    assert by_body[b'{"who": "alice", "n": 2}'].events == []


def test_a_writer_renumbered_once_hands_out_free_ids_afterwards(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"

    async def scenario() -> int:
        alice, bob = await _open_writer(path), await _open_writer(path)
        for n in range(3):
            _submit(alice, b'{"alice": %d}' % n)
        await alice.flush()
        _submit(bob, b'{"bob": 0}')
        await bob.flush()  # renumbered past alice's 1..3
        later = _submit(bob, b'{"bob": 1}')
        await bob.close()
        await alice.close()
        return later

    later = asyncio.run(scenario())
    stored = read_contents(path, load=True).exchanges
    assert [e.id for e in stored] == [1, 2, 3, 4, 5]
    assert later == 5
    assert [e.request_body for e in stored][3:] == [b'{"bob": 0}', b'{"bob": 1}']

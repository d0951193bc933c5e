"""Header bytes that are not UTF-8 (a latin-1 `é`) are stored losslessly and replayed as recorded,
and no exchange the cassette writer cannot store stops it from storing the ones after it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from proxy.config import load_config
from proxy.exchange import Exchange
from proxy.logs import make_logger
from proxy.server import RunningProxy, start_proxy
from proxy.store import CassetteStore
from proxy.store.sqlite_file import read_contents
from tests.support.exchanges import stored_exchange

UPSTREAM_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Served-By: caf\xe9\r\n"
    b"X-Request-Id: req_caf\xe9\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
)


async def raw_upstream() -> tuple[asyncio.Server, str]:
    """An upstream answering every request with a response header holding a latin-1 byte."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(UPSTREAM_ANSWER)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def send(proxy: RunningProxy, request: bytes) -> bytes:
    """One raw HTTP/1.1 exchange (aiohttp's client cannot send a header byte that is not UTF-8)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def header_bytes(answer: bytes, name: bytes) -> bytes | None:
    """The value of response header `name` (lower case) as it came over the wire."""
    head = answer.partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.lower() == name:
            return value.strip()
    return None


async def test_non_utf8_header_bytes_are_stored_and_replayed(tmp_path: Path) -> None:
    upstream, url = await raw_upstream()
    cassette = tmp_path / "latin1.db"
    log = make_logger("json", "error")
    flags = {"upstream": url, "cassette": str(cassette), "port": 0}
    request = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-User: caf\xe9\r\nConnection: close\r\n\r\n"
    later = b"GET /v1/models?later=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    recorder = await start_proxy(load_config(None, {}, {**flags, "mode": "record"}), log)
    try:
        recorded = await send(recorder, request)
        await send(recorder, later)
    finally:
        await recorder.stop()
        upstream.close()

    stored = read_contents(cassette, load=True).exchanges
    assert [e.query for e in stored] == ["", "later=1"]  # the writer outlived the first one
    # The byte is kept as the string aiohttp made of it (surrogateescape), so nothing is lost.
    assert ("x-user", "caf\udce9") in stored[0].request_headers
    assert ("x-served-by", "caf\udce9") in stored[0].response_headers
    assert stored[0].upstream_request_id == "req_caf\\xe9"  # its column is plain text

    replayer = await start_proxy(load_config(None, {}, {**flags, "mode": "replay"}), log)
    try:
        replayed = await send(replayer, request)
    finally:
        await replayer.stop()
    assert replayed.startswith(b"HTTP/1.1 200")
    # The same bytes as when it was recorded (aiohttp writes the header the same way both times).
    assert header_bytes(replayed, b"x-served-by") == header_bytes(recorded, b"x-served-by")


async def test_an_exchange_that_cannot_be_stored_does_not_stop_the_writer(tmp_path: Path) -> None:
    """Any failure, not only SQLite's: the others of its batch and every later batch are kept."""
    path = tmp_path / "survives.db"
    store, _ = await CassetteStore.open(path)
    errors: list[tuple[str, list[int]]] = []

    def describe(exchange: Exchange) -> None:
        if exchange.request_body == b'{"n": 2}':
            raise RuntimeError("a bug in describing this one")

    def on_error(exc: Exception, batch: Sequence[Exchange]) -> None:
        errors.append((str(exc), [e.id for e in batch]))

    store.start(before_write=describe, on_error=on_error)

    def submit(n: int) -> None:
        exchange_id = store.allocate_id()
        store.submit(stored_exchange("/v1/embeddings", b'{"n": %d}' % n, exchange_id=exchange_id))

    for n in (1, 2, 3):  # one batch
        submit(n)
    await asyncio.wait_for(store.flush(), 10)  # a dead writer would never get there
    submit(4)  # a later batch
    await asyncio.wait_for(store.close(), 10)

    bodies = [e.request_body for e in read_contents(path, load=True).exchanges]
    assert bodies == [b'{"n": 1}', b'{"n": 3}', b'{"n": 4}']
    assert errors == [("a bug in describing this one", [2])]
    assert store.failed_ids == [2]

"""One HTTP/1.1 exchange over a plain socket: for requests no HTTP client will send (an
absolute-form target, header bytes that are not UTF-8, repeated `Connection` headers)."""

from __future__ import annotations

import socket


def raw_exchange(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send `request` (which should ask for `Connection: close`) to loopback `port` and return
    everything the server sends until it closes the connection."""
    received: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            received.append(chunk)
    return b"".join(received)


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]

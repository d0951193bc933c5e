"""The pytest plugin's session URL: one OPENAI_BASE_URL, published before conftest.py files load.

Clients built at import time (an application's module-level `OpenAI()`, often imported by a root
conftest.py) read OPENAI_BASE_URL once, before any test's cassette exists. With
`--cassette-session-url` the plugin binds a loopback port as soon as pytest has parsed its options,
points OPENAI_BASE_URL at it (and, in replay, gives an unset OPENAI_API_KEY a placeholder, since the
SDK refuses to build a client without one), and later serves the proxy on that very socket; the
proxy routes that URL to the running test's cassette.
"""

from __future__ import annotations

import os
import socket

import pytest

PLACEHOLDER_KEY = "sk-cassette-proxy-replay-placeholder"


class SessionUrl:
    """A bound (not yet listening) loopback socket and the environment it replaced."""

    def __init__(self, sock: socket.socket, saved_env: dict[str, str | None]) -> None:
        self.socket = sock
        self._saved_env = saved_env

    @classmethod
    def publish(cls, replaying: bool) -> SessionUrl:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        env = {"OPENAI_BASE_URL": f"http://127.0.0.1:{sock.getsockname()[1]}/v1"}
        if replaying and not os.environ.get("OPENAI_API_KEY"):
            env["OPENAI_API_KEY"] = PLACEHOLDER_KEY
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        return cls(sock, saved)

    def restore(self) -> None:
        """Put the environment back and close the socket (closed already if the proxy used it)."""
        self.socket.close()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()


def wanted(config: pytest.Config) -> bool:
    """Whether `--cassette-session-url` (or the ini's `cassette_session_url`) is on. Works on the
    early config too: it reads the options pytest has parsed so far."""
    option = getattr(config.known_args_namespace, "cassette_session_url", None)
    if option is None:
        option = bool(config.getini("cassette_session_url"))
    return bool(option)


def runs_tests(config: pytest.Config) -> bool:
    """False for the pytest-xdist controller: its workers run the tests, each with its own proxy
    and its own session URL. (It still publishes one, so that conftest.py files it imports can
    build their clients.)"""
    if hasattr(config, "workerinput"):
        return True
    return not getattr(config.option, "numprocesses", None)

"""Starting the real proxy: in-process on a LoopThread, or as a `python -m proxy serve` subprocess."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx2

import proxy
from proxy.config import load_config
from proxy.logs import make_logger
from proxy.server import RunningProxy, start_proxy
from tests.support.loop_thread import LoopThread

# The checkout whose `proxy` package this process imported: subprocesses run the same code.
REPO = Path(proxy.__file__).resolve().parent.parent


class InProcessProxy:
    def __init__(self, loop: LoopThread, running: RunningProxy, cassette: Path) -> None:
        self._loop = loop
        self._running: RunningProxy | None = running
        self.url = running.url
        self.port = running.port
        self.cassette = cassette

    @property
    def base_url(self) -> str:
        """What an SDK takes as base_url (the OpenAI paths carry /v1)."""
        return self.url + "/v1"

    @property
    def running(self) -> bool:
        return self._running is not None

    def stop(self) -> None:
        """Graceful stop: in-flight requests finish, then the cassette is flushed and closed."""
        if self._running is not None:
            running, self._running = self._running, None
            self._loop.run(running.stop())

    async def astop(self) -> None:
        if self._running is not None:
            running, self._running = self._running, None
            await self._loop.arun(running.stop())


class ProxyFactory:
    """Starts proxies on the servers' loop; whatever is still running at teardown is stopped."""

    def __init__(self, loop: LoopThread) -> None:
        self._loop = loop
        self._started: list[InProcessProxy] = []

    def start(
        self,
        mode: str,
        upstream: str,
        cassette: Path,
        config_file: Path | None = None,
        **flags: Any,
    ) -> InProcessProxy:
        """Start a proxy (blocking; for sync tests)."""
        running = self._loop.run(self._start(mode, upstream, cassette, config_file, flags))
        return self._track(running, cassette)

    async def astart(
        self,
        mode: str,
        upstream: str,
        cassette: Path,
        config_file: Path | None = None,
        **flags: Any,
    ) -> InProcessProxy:
        """Start a proxy from an async test (its own loop keeps running meanwhile)."""
        running = await self._loop.arun(self._start(mode, upstream, cassette, config_file, flags))
        return self._track(running, cassette)

    @staticmethod
    async def _start(
        mode: str, upstream: str, cassette: Path, config_file: Path | None, flags: dict[str, Any]
    ) -> RunningProxy:
        config = load_config(
            config_file,
            {},
            {"mode": mode, "upstream": upstream, "cassette": str(cassette), "port": 0, **flags},
        )
        return await start_proxy(config, make_logger("json", "warning"))

    def _track(self, running: RunningProxy, cassette: Path) -> InProcessProxy:
        proxy = InProcessProxy(self._loop, running, cassette)
        self._started.append(proxy)
        return proxy

    def stop_all(self) -> None:
        for started in self._started:
            started.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """An http URL on loopback where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def clean_env() -> dict[str, str]:
    """The environment for a proxy subprocess: no CASSETTE_PROXY_* leaking in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASSETTE_PROXY_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def proxy_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "proxy", *args]


class ProxyProcess:
    """`python -m proxy serve …` in a subprocess, its output in files (no pipe can fill up)."""

    def __init__(self, args: Sequence[str], workdir: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.stdout_path = workdir / "proxy.stdout"
        self.stderr_path = workdir / "proxy.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                proxy_command(*args), cwd=workdir, env=clean_env(), stdout=out, stderr=err
            )

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def wait_healthy(self, timeout: float = 30.0) -> dict[str, Any]:
        """Poll /_proxy/health until it answers (the process may take a moment to import)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"proxy exited early with {self.process.returncode}: {self.stderr()}"
                )
            try:
                response = httpx2.get(self.url + "/_proxy/health", timeout=2.0, trust_env=False)
                if response.status_code == 200:
                    return dict(response.json())
            except httpx2.TransportError as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError(f"proxy not healthy after {timeout}s ({last!r}): {self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read a cassette with plain sqlite3 (read-only; works while the proxy has it open)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return list(connection.execute(sql, params))
    finally:
        connection.close()


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `predicate` until true: for state with no event to await (e.g. rows reaching disk)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)

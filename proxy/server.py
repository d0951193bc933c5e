"""Running the application: an AppRunner with graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
import socket

from aiohttp import web

from proxy.app import build_app
from proxy.config import Config
from proxy.heap import settle_after_start
from proxy.logs import Logger


class CannotListen(Exception):
    """The proxy's socket could not be bound or listened on (`error` says why)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class RunningProxy:
    """A started proxy; `port` is the bound one (useful with port 0)."""

    def __init__(self, runner: web.AppRunner, site: web.BaseSite, host: str, port: int) -> None:
        self.runner = runner
        self.site = site
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish within the grace period, flush, close."""
        await self.runner.cleanup()


async def start_proxy(
    config: Config, log: Logger, sock: socket.socket | None = None, *, follow_active: bool = False
) -> RunningProxy:
    """Start serving on `config.server`'s host and port, or on `sock` when given: a socket bound
    earlier (the pytest plugin publishes its URL before the proxy starts). `follow_active`: API
    paths outside /_c/ are served from the active named cassette (the plugin's session URL)."""
    app = build_app(config, log, follow_active=follow_active)
    runner = web.AppRunner(
        app,
        # A client that goes away cancels its handler, which cancels the upstream request.
        handler_cancellation=True,
        # aiohttp waits this long for in-flight handlers, cancels their request bodies (which a
        # relay or a timed replay no longer reads), waits as long again, then cancels them: half
        # the grace each, so a stream is cut once `shutdown_grace` has passed, not twice that.
        shutdown_timeout=config.server.shutdown_grace / 2,
        access_log=None,
    )
    await runner.setup()
    site: web.BaseSite = (
        web.TCPSite(runner, config.server.host, config.server.port)
        if sock is None
        else web.SockSite(runner, sock)
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise CannotListen(exc) from exc
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    port = sockets[0].getsockname()[1] if sockets else config.server.port
    return RunningProxy(runner, site, config.server.host, port)


async def serve_forever(config: Config, log: Logger) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    proxy = await start_proxy(config, log)
    settle_after_start()
    log.info(
        "listening",
        url=proxy.url,
        mode=config.server.mode,
        cassette=config.server.cassette,
        upstream=config.upstream.url,
    )
    try:
        await stop.wait()
    finally:
        log.info("shutting down", grace_s=config.server.shutdown_grace)
        await proxy.stop()
        log.info("stopped")

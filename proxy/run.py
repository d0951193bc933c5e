"""`cassette-proxy run -- CMD ARGS…`: any program, in any language, through a cassette.

The proxy starts on a free port, the child gets `OPENAI_BASE_URL` pointing at it, and when the
child exits the cassette is flushed and a summary (replayed, recorded, misses with their
explanations) goes to stderr. The exit code is the child's.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from proxy.cassette import SessionStats
from proxy.config import Config
from proxy.keys import CASSETTE
from proxy.logs import Logger
from proxy.server import start_proxy

REPLAY_PLACEHOLDER_KEY = "sk-cassette-proxy-replay-placeholder"


async def run_child(
    config: Config,
    log: Logger,
    command: Sequence[str],
    environ: Mapping[str, str],
    report: TextIO = sys.stderr,
) -> int:
    proxy = await start_proxy(config, log)
    env = dict(environ)
    env["OPENAI_BASE_URL"] = proxy.url + "/v1"
    if config.server.mode == "replay" and not env.get("OPENAI_API_KEY"):
        env["OPENAI_API_KEY"] = REPLAY_PLACEHOLDER_KEY  # SDKs refuse to start without one
    try:
        child = await asyncio.create_subprocess_exec(*command, env=env)
    except OSError as exc:
        await proxy.stop()
        print(
            f"cassette-proxy run: cannot start {command[0]!r}: {exc.strerror or exc}", file=report
        )
        return 127
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # The child decides what an interrupt means; the proxy waits for it to finish.
        loop.add_signal_handler(sig, child.send_signal, sig)
    try:
        code = await child.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        stats = proxy.runner.app[CASSETTE].stats
        await proxy.stop()
    print(summary(config, stats), file=report)
    return code if code >= 0 else 128 - code


def summary(config: Config, stats: SessionStats) -> str:
    misses = len(stats.misses)
    lines = [
        f"cassette-proxy run: {config.server.cassette} ({config.server.mode}): "
        f"{stats.replayed} replayed, {stats.recorded} recorded, "
        f"{misses} miss{'es' if misses != 1 else ''}"
    ]
    lines += [f"  miss: {message}" for message in stats.misses]
    return "\n".join(lines)

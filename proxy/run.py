"""`cassette-proxy run -- CMD ARGS…`: any program, in any language, through a cassette.

The proxy starts on a free port, the child gets `OPENAI_BASE_URL` pointing at it, and when the
child exits the cassette is flushed and a summary (replayed, recorded, misses with their
explanations) goes to stderr. The exit code is the child's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from proxy.cassette import SessionStats
from proxy.config import Config
from proxy.heap import settle_after_start
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
    settle_after_start()
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
    # The child decides what a signal means; the proxy waits for it to finish. Left to their
    # default, SIGHUP or SIGQUIT would end `run` and orphan the child on a dead proxy port.
    for sig in (*TERMINAL_SIGNALS, signal.SIGTERM):
        loop.add_signal_handler(sig, _pass_on, child, sig)
    try:
        code = await child.wait()
    finally:
        for sig in (*TERMINAL_SIGNALS, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        stats = proxy.runner.app[CASSETTE].stats
        await proxy.stop()
    print(summary(config, stats), file=report)
    return code if code >= 0 else 128 - code


def _pass_on(child: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Hand a signal on, unless a terminal may have sent it: Ctrl-C, Ctrl-\\ and a hang-up go to
    the whole foreground process group, the child included, and a second one would cut short
    what the child does on the first (a Python child's clean-up gets a second KeyboardInterrupt)."""
    if sig not in TERMINAL_SIGNALS or not _in_terminal_foreground():
        child.send_signal(sig)


TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)


def _in_terminal_foreground() -> bool:
    """Whether this process's group is the foreground group of its controlling terminal."""
    try:
        terminal = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False  # no controlling terminal: no Ctrl-C from one either
    try:
        return os.tcgetpgrp(terminal) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(terminal)


def summary(config: Config, stats: SessionStats) -> str:
    misses = len(stats.misses)
    unreplayable = (
        f", {len(stats.unreplayable)} stored but not replayable" if stats.unreplayable else ""
    )
    lines = [
        f"cassette-proxy run: {config.server.cassette} ({config.server.mode}): "
        f"{stats.replayed} replayed, {stats.recorded} recorded{unreplayable}, "
        f"{misses} miss{'es' if misses != 1 else ''}"
    ]
    lines += [f"  not replayable: {what}" for what in stats.unreplayable]
    lines += [f"  miss: {message}" for message in stats.misses]
    return "\n".join(lines)

"""`cassette-proxy run -- CMD ARGS…`: any program, in any language, through a cassette.

The proxy starts on a free port, the child gets `OPENAI_BASE_URL` pointing at it, and when the
child exits the cassette is flushed and a summary (replayed, recorded, misses with their
explanations) goes to stderr. The exit code is the child's.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        _tell(report, f"cassette-proxy run: cannot start {command[0]!r}: {exc.strerror or exc}")
        return 127
    loop = asyncio.get_running_loop()
    foreground_at_start = _in_terminal_foreground()
    # The child decides what a signal means; the proxy waits for it to finish. Left to their
    # default, SIGHUP or SIGQUIT would end `run` and orphan the child on a dead proxy port.
    for sig in HANDLED_SIGNALS:
        loop.add_signal_handler(sig, _pass_on, child, sig, foreground_at_start)
    try:
        code = await child.wait()
        # The child is gone; a signal now (a second Ctrl-C while a stream drains) must not cut
        # the flush short: the proxy is stopping already, within its grace.
        grace = config.server.shutdown_grace
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, _already_stopping, report, sig, grace)
        stats = proxy.runner.app[CASSETTE].stats
    finally:
        await proxy.stop()
        for sig in HANDLED_SIGNALS:
            loop.remove_signal_handler(sig)
    _tell(report, summary(config, stats))
    return code if code >= 0 else 128 - code


def _pass_on(
    child: asyncio.subprocess.Process, sig: signal.Signals, foreground_at_start: bool
) -> None:
    """Hand a signal on, unless a terminal may have sent it: Ctrl-C, Ctrl-\\ and a hang-up go to
    the whole foreground process group, the child included, and a second one would cut short
    what the child does on the first (a Python child's clean-up gets a second KeyboardInterrupt)."""
    if sig in TERMINAL_SIGNALS and _terminal_may_have_sent(sig, foreground_at_start):
        return
    child.send_signal(sig)


def _already_stopping(report: TextIO, sig: signal.Signals, grace: float) -> None:
    _tell(
        report,
        f"cassette-proxy run: {sig.name} while stopping: the command has exited; requests still "
        f"in flight get up to server.shutdown_grace ({grace:g} s), then the cassette is flushed",
    )


def _tell(report: TextIO, text: str) -> None:
    """Write to the user, unless their terminal is gone (hung up): then no one is there to read
    it, and `run` still ends with the child's exit code."""
    with contextlib.suppress(OSError):
        print(text, file=report, flush=True)


TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)
HANDLED_SIGNALS = (*TERMINAL_SIGNALS, signal.SIGTERM)


def _terminal_may_have_sent(sig: signal.Signals, foreground_at_start: bool) -> bool:
    if _in_terminal_foreground():
        return True
    # A hang-up detaches the session from its terminal before the handler runs, so the terminal
    # can no longer be asked. The kernel tells only the session's leader: a shell leading it
    # passes the hang-up to its jobs, the child included (and the kernel again to the foreground
    # group once the shell is gone); `run` leading its own session is the only one told.
    return (
        sig == signal.SIGHUP
        and foreground_at_start
        and not _has_terminal()
        and os.getsid(0) != os.getpid()
    )


def _has_terminal() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY))
    except OSError:
        return False
    return True


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

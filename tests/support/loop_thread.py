"""An asyncio event loop running in a background thread.

Servers (the fake upstream, in-process proxies) live on this loop, so a test can drive them with the
blocking `openai.OpenAI` client from the main thread, or with `openai.AsyncOpenAI` from its own loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0


class LoopThread:
    def __init__(self, name: str = "test-servers") -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def start(self) -> LoopThread:
        self._thread.start()
        if not self._ready.wait(DEFAULT_TIMEOUT):
            raise RuntimeError("the background event loop did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()
        # Let whatever was cancelled at stop() finish unwinding before the loop closes.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
        """Run `coro` on the background loop and block until it returns (or raises)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run() called from its own loop: it would deadlock")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def arun(self, coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
        """Await `coro` running on the background loop, from another event loop."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(DEFAULT_TIMEOUT)

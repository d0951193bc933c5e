"""Named cassettes behind one server: `/_c/<name>/v1/…` is served from `DIR/<name>.db`.

Each name gets its own Cassette — index, sequence numbers, mode and writer — so parallel tests
never take each other's recordings. Names may hold `/` for folders; a name that would leave DIR
is refused.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

from proxy.cassette import Cassette
from proxy.config import Config, Mode
from proxy.decode import TypedView
from proxy.logs import Logger
from proxy.store import StoreError
from proxy.store.sqlite_file import drop_recordings

NAMED_PREFIX = "/_c/"
# Whether a recording's maker (a pytest node id, or None) is one whose recordings a drop takes.
Owned = Callable[[str | None], bool]
# The first segment of an API path: what follows the cassette name.
API_ROOTS = ("/v1/", "/openai/")
# So no part of a cassette name may be one of them: the name would end there.
API_ROOT_PARTS = frozenset(root.strip("/") for root in API_ROOTS)
_PATHS_KEPT = 10_000
# What each `/`-separated part of a cassette name may hold, and how long it may be: with `.db`
# and SQLite's `-journal` a file name stays far below the usual limit of 255 bytes.
NAME_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]+")
MAX_SEGMENT = 200


class BadCassetteName(ValueError):
    """A cassette name that is empty, unsafe or escapes the cassette directory."""


def split_named_path(raw_path: str) -> tuple[str, str] | None:
    """`/_c/a/b/v1/models?x=1` → (`a/b`, `/v1/models?x=1`); None when no API path follows."""
    rest = raw_path[len(NAMED_PREFIX) :]
    cut = min((i for i in (rest.find(root) for root in API_ROOTS) if i > 0), default=-1)
    if cut < 0:
        return None
    return rest[:cut], rest[cut:]


class NamedCassettes:
    def __init__(self, directory: Path, config: Config, view: TypedView, log: Logger) -> None:
        self.directory = directory.resolve()
        self._config = config
        self._view = view
        self._log = log
        self._open: dict[str, Cassette] = {}
        self._modes: dict[str, Mode] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Checked once per name: resolving walks every folder of the path, and a pytest session
        # asks for each test's cassette several times.
        self._paths: dict[str, Path] = {}
        # The pytest plugin's session URL: API paths outside /_c/ are served from the cassette
        # of the test now running (see `set_mode(active=True)`), and refused between tests.
        self.active: str | None = None
        # Cassettes taken out of use, closing once the requests still using them are over: the
        # task that closes each, and the cassette's name.
        self._retiring: dict[asyncio.Task[None], tuple[str, Cassette]] = {}
        # Old recordings dropped again once a retiring cassette has written its last exchanges.
        self._late_drops: set[asyncio.Task[None]] = set()

    def path_for(self, name: str) -> Path:
        path = self._paths.get(name)
        if path is None:
            if len(self._paths) >= _PATHS_KEPT:  # a server fed endless names stays bounded
                self._paths.clear()
            path = self._paths[name] = self._checked_path(name)
        return path

    def _checked_path(self, name: str) -> Path:
        parts = name.split("/")
        if not name or any(p in ("", ".", "..") for p in parts):
            raise BadCassetteName(
                f"cassette name {name!r} is not a relative name like 'suite/test'"
            )
        if not all(NAME_SEGMENT.fullmatch(p) for p in parts):
            # Anything else is percent-encoded by some client on its way here, or is not a valid
            # file name on some system a cassette kept in git is checked out on.
            raise BadCassetteName(
                f"cassette name {name!r} may hold only ASCII letters, digits, '_', '.' and '-', "
                "with '/' between folders"
            )
        if reserved := [p for p in parts if p in API_ROOT_PARTS]:
            raise BadCassetteName(
                f"cassette name {name!r} has a part {reserved[0]!r}: in /_c/<name>/v1/... the "
                "name ends where /v1/ or /openai/ begins; rename that part"
            )
        if len(max(parts, key=len)) > MAX_SEGMENT:
            raise BadCassetteName(
                f"cassette name {name!r} has a part longer than {MAX_SEGMENT} characters"
            )
        path = (self.directory / (name + ".db")).resolve()
        if not path.is_relative_to(self.directory):
            raise BadCassetteName(f"cassette name {name!r} leaves the cassette directory")
        return path

    async def get(self, name: str) -> Cassette:
        """The open cassette for `name`, opened on first use in its mode (default: the server's)."""
        cassette = self._open.get(name)
        if cassette is not None:
            return cassette
        path = self.path_for(name)
        async with self._locks.setdefault(name, asyncio.Lock()):
            cassette = self._open.get(name)
            if cassette is None:
                mode = self._modes.get(name, self._config.server.mode)
                cassette = await Cassette.open(path, mode, self._config, self._view, self._log)
                for retiring_name, retiring in self._retiring.values():
                    if retiring_name == name:
                        # Its requests arrived first: their ids stay below this cassette's.
                        cassette.store.allocate_from(retiring.store.next_id + retiring.in_flight)
                self._open[name] = cassette
        return cassette

    async def set_mode(
        self,
        name: str,
        mode: Mode,
        *,
        drop_before: float | None = None,
        recorder: str | None = None,
        owned: Owned | None = None,
        active: bool = False,
    ) -> Cassette:
        """Switch a cassette's mode (reopened, so replay sees everything recorded so far).

        `drop_before` (a Unix time) deletes the recordings made before it first: the admin API's
        `fresh` passes now, pytest's rewrite the session's start, so that tests sharing a
        cassette keep what the others re-recorded in the same session. `recorder` (a pytest node
        id) marks what the cassette records as that test's; `owned` limits the drop to the
        recordings whose maker it accepts (see `drop_recordings`). `active`: unnamed API paths
        are served from this cassette from now on (the pytest plugin's session URL).
        """
        path = self.path_for(name)
        async with self._locks.setdefault(name, asyncio.Lock()):
            current = self._open.pop(name, None)
            if current is not None:
                await self._retire(name, current)
            if drop_before is not None:
                await asyncio.to_thread(drop_recordings, path, drop_before, owned)
                self._drop_again_when_retired(name, path, drop_before, owned)
            self._modes[name] = mode
        cassette = await self.get(name)
        cassette.recorder = recorder
        if active:
            self.active = name
        return cassette

    async def deactivate(self, name: str) -> None:
        """Stop serving unnamed API paths from `name`, then `release` it."""
        if self.active == name:
            self.active = None
        await self.release(name)

    def opened(self, name: str) -> Cassette | None:
        """The cassette `name` if it is open now (it holds this session's stats and index)."""
        return self._open.get(name)

    async def release(self, name: str) -> None:
        """Close one cassette (flushing its writes); the next request reopens it in its mode."""
        async with self._locks.setdefault(name, asyncio.Lock()):
            current = self._open.pop(name, None)
            if current is not None:
                await self._retire(name, current)

    async def _retire(self, name: str, cassette: Cassette) -> None:
        """Close a cassette taken out of use. One still serving a request (a stream the client
        has not finished, or has left) stays open until that is over, so what it records is
        stored, not lost. When this returns, every exchange that has ended is on disk.

        The closing runs as a task of its own, tracked from the start: a caller cancelled here
        (an admin client hanging up) cannot leave the cassette open with no one to close it.
        """
        closing = asyncio.create_task(cassette.close_when_settled())
        self._retiring[closing] = (name, cassette)
        closing.add_done_callback(self._retiring.pop)
        await asyncio.shield(cassette.store.flush() if cassette.in_flight else closing)

    def _drop_again_when_retired(
        self, name: str, path: Path, before: float, owned: Owned | None
    ) -> None:
        """Recordings started before `before` that a retiring cassette of `name` is still to
        write: dropped once it has written them."""
        for closing, (retiring_name, _) in self._retiring.items():
            if retiring_name == name:
                drop = asyncio.create_task(self._drop_after(closing, path, before, owned))
                self._late_drops.add(drop)
                drop.add_done_callback(self._late_drops.discard)

    async def _drop_after(
        self, closing: asyncio.Task[None], path: Path, before: float, owned: Owned | None
    ) -> None:
        await asyncio.shield(closing)
        try:
            await asyncio.to_thread(drop_recordings, path, before, owned)
        except StoreError as exc:
            self._log.error("cannot drop old recordings", cassette=str(path), error=str(exc))

    def summary(self) -> list[dict[str, object]]:
        return [
            {"name": name, "mode": c.mode, "path": str(c.path), "exchanges": c.exchange_count}
            for name, c in sorted(self._open.items())
        ]

    async def close(self) -> None:
        for cassette in self._open.values():
            await cassette.close()
        self._open.clear()
        # By now the server has ended every request: these finish as soon as they are awaited.
        await asyncio.gather(*self._retiring, *self._late_drops)

"""pytest plugin: each test gets its own named cassette behind one in-process proxy per session.

Mark a test with `@pytest.mark.cassette` (optionally `@pytest.mark.cassette("name")`) or ask for the
`cassette` fixture: for the test's duration `OPENAI_BASE_URL` points at
`http://127.0.0.1:<port>/_c/<name>/v1`, served from `<cassette dir>/<name>.db` (default
`cassettes/<test module path>/<test name>.db` under the rootdir). One proxy per session (per xdist
worker) runs on a background thread with its own event loop, so sync and async clients both work.

With `--cassette-session-url` (ini `cassette_session_url = true`) `OPENAI_BASE_URL` is set once, at
start-up, to `http://127.0.0.1:<port>/v1`, and that URL serves the cassette of whichever test is
running: clients created at import time (an application's module-level client) or shared between
tests are recorded and replayed too. A request sent there while no test with a cassette runs is
refused with an explanation.

`--cassette-mode=replay|record|auto|rewrite` (default replay). A replay miss fails the test with the
proxy's explanation (nearest recording, differing JSON path); recordings a test did not use are
listed in the terminal summary, and fail the test under `--cassette-strict`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from proxy.pytest_session_url import PLACEHOLDER_KEY, SessionUrl, runs_tests, wanted
from proxy.pytest_shared import SharedCassettes

if TYPE_CHECKING:
    from proxy.config import Config, Mode
    from proxy.named import NamedCassettes
    from proxy.server import RunningProxy

# The proxy's own modules (aiohttp's server, the cassette store) are imported when a test first
# asks for a cassette, so that a pytest run that uses none pays nothing for the plugin.

T = TypeVar("T")

MODES = ("replay", "record", "auto", "rewrite")
_UNUSED_PROPERTY = "cassette_proxy_unused"
_STATE = pytest.StashKey["_PluginState"]()
_SESSION_URL = pytest.StashKey[SessionUrl]()
_USE = pytest.StashKey["Cassette"]()
# Misses and unused recordings when the cassette was released; misses seen by the call's report
# and whether the call passed.
_FINAL = pytest.StashKey[tuple[list[str], list[tuple[int, str | None]]]]()
_CALL_SEEN = pytest.StashKey[tuple[int, bool]]()
_TIMEOUT = 60.0
_ENV_PREFIX = "CASSETTE_PROXY_"
# Seconds the session's end waits for streams still running (see `_PluginState.start`).
_END_OF_SESSION_GRACE = 3.0
# The plugin's options for the settings `serve` takes as flags: what a config error names.
_OPTION_NAMES = {"mode": "--cassette-mode", "upstream": "--cassette-upstream"}
# The controller's start time, handed to xdist workers: rewrite drops what came before it.
_SESSION_STARTED = "cassette_proxy_session_started"
# What an xdist worker reports of the cassettes several tests share.
_SHARED_OUTPUT = "cassette_proxy_shared"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cassette-proxy", "record/replay OpenAI traffic with cassette-proxy")
    group.addoption(
        "--cassette-mode",
        choices=MODES,
        default=None,
        help="replay (default: never reaches the network), record (append), auto (replay hits, "
        "record misses) or rewrite (drop a cassette's recordings from before this run the first "
        "time a test uses it, and record afresh)",
    )
    group.addoption(
        "--cassette-dir",
        default=None,
        help="directory of the tests' cassettes, relative to the rootdir (default: cassettes)",
    )
    group.addoption(
        "--cassette-upstream",
        default=None,
        help="upstream URL when recording (default: the proxy's configuration)",
    )
    group.addoption(
        "--cassette-strict",
        action="store_true",
        default=None,
        help="fail a test that leaves recordings of its cassette unused",
    )
    group.addoption(
        "--cassette-session-url",
        action="store_true",
        default=None,
        help="set OPENAI_BASE_URL for the whole session, from start-up, to one URL serving the "
        "running test's cassette (covers clients created at import time or shared by tests)",
    )
    parser.addini("cassette_dir", "cassette-proxy: directory of the tests' cassettes", default="")
    parser.addini("cassette_mode", "cassette-proxy: default --cassette-mode", default="")
    parser.addini(
        "cassette_strict", "cassette-proxy: fail tests leaving recordings unused", type="bool"
    )
    parser.addini(
        "cassette_session_url",
        "cassette-proxy: one OPENAI_BASE_URL for the session, serving the running test's cassette",
        type="bool",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cassette(name=None): give the test its own cassette-proxy cassette "
        "(OPENAI_BASE_URL points at it); `name` overrides the default <module>/<test> name",
    )
    mode = config.getoption("cassette_mode") or config.getini("cassette_mode") or "replay"
    if mode not in MODES:
        raise pytest.UsageError(f"cassette_mode must be one of {', '.join(MODES)}, not {mode!r}")
    directory = config.getoption("cassette_dir") or config.getini("cassette_dir") or "cassettes"
    strict = config.getoption("cassette_strict")
    if strict is None:
        strict = bool(config.getini("cassette_strict"))
    config.pluginmanager.register(_UnusedSummary(), "cassette-proxy-unused-summary")
    state = _PluginState(
        mode=mode,
        directory=(config.rootpath / directory).resolve(),
        upstream=config.getoption("cassette_upstream"),
        strict=strict,
        session_url=config.stash.get(_SESSION_URL, None),
        session_started=_session_started(config),
    )
    config.stash[_STATE] = state
    if state.upstream is not None or any(name.startswith(_ENV_PREFIX) for name in os.environ):
        # Checked now, once: found by the first test, it would fail every test with a traceback.
        with tempfile.TemporaryDirectory(prefix="cassette-proxy-") as scratch:
            state.load_config(Path(scratch))
    if state.follows_active and runs_tests(config):
        # Listening from now on: a request between tests gets the proxy's explanation, not a
        # refused connection.
        state.start()


def _session_started(config: pytest.Config) -> float:
    """When the whole run started: the xdist controller's time in a worker, else now."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    return float(workerinput.get(_SESSION_STARTED, time.time()))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, on the controller: every worker drops recordings from before the same time."""
    state = node.config.stash.get(_STATE, None)
    if state is not None:
        node.workerinput[_SESSION_STARTED] = state.session_started


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """`--cassette-session-url`: publish OPENAI_BASE_URL before conftest.py files are imported."""
    if wanted(early_config):
        mode = getattr(early_config.known_args_namespace, "cassette_mode", None)
        mode = mode or early_config.getini("cassette_mode") or "replay"
        early_config.stash[_SESSION_URL] = SessionUrl.publish(replaying=mode == "replay")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.stop()
    elif (session_url := config.stash.get(_SESSION_URL, None)) is not None:
        session_url.restore()  # configure stopped at a usage error before the state existed


@dataclass
class Cassette:
    """What the `cassette` fixture gives a test."""

    name: str
    path: Path
    mode: str
    base_url: str  # http://127.0.0.1:<port>/_c/<name>/v1: an SDK's base_url


class _LoopThread:
    """An event loop on a daemon thread: the proxy lives there, the tests talk to it over HTTP."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="cassette-proxy", daemon=True
        )
        self._thread.start()
        ready.wait(_TIMEOUT)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(_TIMEOUT)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(_TIMEOUT)


class _PluginState:
    """The session's proxy: started by the first test that uses a cassette, or when pytest
    configures with the session URL."""

    def __init__(
        self,
        mode: str,
        directory: Path,
        upstream: str | None,
        strict: bool,
        session_url: SessionUrl | None,
        session_started: float,
    ) -> None:
        self.mode = mode
        self.directory = directory
        self.upstream = upstream
        self.strict = strict
        self._thread: _LoopThread | None = None
        self._running: RunningProxy | None = None
        self._named: NamedCassettes | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        # --cassette-session-url: the socket bound at start-up, the environment it replaced.
        self._session_url = session_url
        self.session_started = session_started
        self.shared = SharedCassettes()
        # Rewrite drops each test's old recordings from a cassette once: tests sharing it keep
        # each other's, including what they re-recorded earlier in the session.
        self._rewritten: set[tuple[str, str]] = set()
        # The tests collected (before -k or -m deselect any), and the test files collected
        # whole: a recording made by a test of such a file that was not collected is by a test
        # that is gone (renamed, removed), and belongs to whichever test uses the cassette now.
        self._collected: frozenset[str] = frozenset()
        self._whole_files: frozenset[str] = frozenset()

    @property
    def follows_active(self) -> bool:
        """Whether the session URL is served: API paths outside /_c/ go to the running test."""
        return self._session_url is not None

    def drop_before(self, name: str, test: str) -> float | None:
        """Under rewrite, the first time `test` uses cassette `name` this session: when the
        session began (its recordings from before then are dropped)."""
        if self.mode != "rewrite" or (name, test) in self._rewritten:
            return None
        self._rewritten.add((name, test))
        return self.session_started

    def collected(self, items: list[pytest.Item], partly_selected: set[str]) -> None:
        self._collected = frozenset(item.nodeid for item in items)
        files = {nodeid.partition("::")[0] for nodeid in self._collected}
        self._whole_files = frozenset(files - partly_selected)

    def owned_by(self, test: str) -> Callable[[str | None], bool]:
        """Whether a recording, by its maker, is `test`'s to re-record and answer for: its own,
        one no test is known to have made, or one a test that is gone made."""
        collected, whole_files = self._collected, self._whole_files

        def owned(maker: str | None) -> bool:
            if maker is None or maker == test:
                return True
            return maker not in collected and maker.partition("::")[0] in whole_files

        return owned

    @property
    def server_mode(self) -> Mode:
        return "record" if self.mode == "rewrite" else self.mode  # type: ignore[return-value]

    def load_config(self, scratch: Path) -> Config:
        """The proxy's configuration: the config file and CASSETTE_PROXY_* variables `serve`
        reads, under the plugin's options; a mistake in them is a usage error of the run."""
        from proxy.config import ConfigError, load_config

        config_path = os.environ.get("CASSETTE_PROXY_CONFIG")
        try:
            return load_config(
                Path(config_path) if config_path else None,
                os.environ,
                {
                    "mode": self.server_mode,
                    "upstream": self.upstream,
                    # The server's own (unnamed) cassette, which the plugin never uses.
                    "cassette": str(scratch / "unnamed.db"),
                    "cassette_dir": str(self.directory),
                    "host": "127.0.0.1",
                    "port": 0,
                },
                flag_names=_OPTION_NAMES,
            )
        except ConfigError as exc:
            raise pytest.UsageError(f"cassette-proxy: config error: {exc}") from None

    def start(self) -> tuple[str, NamedCassettes]:
        if self._running is not None and self._named is not None:
            return self._running.url, self._named
        import msgspec

        from proxy.keys import NAMED
        from proxy.logs import make_logger
        from proxy.server import start_proxy

        self._scratch = tempfile.TemporaryDirectory(prefix="cassette-proxy-")
        config = self.load_config(Path(self._scratch.name))
        # Streams still running when the session ends were left by tests that are over: they
        # get a short grace, not the server's, which would hold up the end of the run.
        grace = min(config.server.shutdown_grace, _END_OF_SESSION_GRACE)
        config = msgspec.structs.replace(
            config, server=msgspec.structs.replace(config.server, shutdown_grace=grace)
        )
        log = make_logger(config.logging.format, "error", sys.__stderr__)
        self._thread = _LoopThread()
        sock = self._session_url.socket if self._session_url is not None else None
        self._running = self._thread.run(
            start_proxy(config, log, sock, follow_active=self.follows_active)
        )
        self._named = self._running.runner.app[NAMED]
        return self._running.url, self._named

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._thread is not None
        return self._thread.run(coro)

    def stop(self) -> None:
        try:
            if self._thread is not None:
                if self._running is not None:
                    self._thread.run(self._running.stop())
                    self._running = None
                self._thread.stop()
                self._thread = None
        finally:
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None
            if self._session_url is not None:
                self._session_url.restore()


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
# Longer parts of a default name are cut (and told apart by their digest).
_NAME_PART_KEPT = 120


def default_name(item: pytest.Item) -> str:
    """`tests/test_chat.py::TestX::test_y` → `tests/test_chat/TestX.test_y`.

    A part holding other characters than letters, digits, `_`, `.` and `-` has them replaced by
    `_` and gets a digest of what it was (`test_y[a b]` → `test_y_a_b_-1f0c2a9e`), so that ids
    differing only there (`[Hi!]`, `[Hi?]`) keep cassettes of their own; so does a long one,
    and a part named `v1` or `openai` (`tests/openai/` → `tests/openai-<digest>/`), which would
    end the name in the cassette's URL.
    """
    file_part, _, rest = item.nodeid.partition("::")
    module = file_part.removesuffix(".py")
    segments = [_name_part(s) for s in module.split("/") if s not in ("", ".", "..")]
    return "/".join([*segments, _name_part(rest.replace("::", ".") or "test")])


def _name_part(text: str) -> str:
    from proxy.named import API_ROOT_PARTS  # not at import: pytest loads this plugin everywhere

    cleaned = _UNSAFE.sub("_", text)
    # `v1` and `openai` would end the name in the cassette's URL (tests/openai/test_chat.py).
    kept = text not in (".", "..") and text not in API_ROOT_PARTS
    if cleaned == text and len(text) <= _NAME_PART_KEPT and kept:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned[:_NAME_PART_KEPT]}-{digest}"


def _cassette_name(item: pytest.Item) -> str:
    marker = item.get_closest_marker("cassette")
    if marker is not None:
        name = marker.args[0] if marker.args else marker.kwargs.get("name")
        if name:
            return str(name).removesuffix(".db")
    return default_name(item)


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Cassette]:
    """This test's cassette: `OPENAI_BASE_URL` points at it for the test's duration."""
    from proxy.cassette import cassette_exists
    from proxy.named import BadCassetteName
    from proxy.store import StoreError

    state: _PluginState = request.config.stash[_STATE]
    item = request.node
    name = _cassette_name(item)
    root, named = state.start()
    try:
        path = named.path_for(name)
    except BadCassetteName as exc:
        problem = str(exc)  # failed outside the handler: pytest would print the chain too
    else:
        problem = ""
    if problem:
        pytest.fail(f"cassette-proxy: {problem}", pytrace=False)
    mode: Mode = state.server_mode
    try:
        missing = mode == "replay" and not cassette_exists(path)
    except StoreError as exc:
        pytest.fail(f"cassette-proxy: {exc}", pytrace=False)
    if missing:
        pytest.fail(
            f"cassette-proxy: no cassette {path} to replay for this test; record it with "
            "--cassette-mode=record (or auto)",
            pytrace=False,
        )
    drop_before = state.drop_before(name, item.nodeid)
    try:
        state.run(
            named.set_mode(
                name,
                mode,
                drop_before=drop_before,
                recorder=item.nodeid,
                owned=state.owned_by(item.nodeid),
                active=state.follows_active,
            )
        )
    except StoreError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(f"cassette-proxy: {problem}", pytrace=False)
    use = Cassette(name=name, path=path, mode=state.mode, base_url=f"{root}/_c/{name}/v1")
    item.stash[_USE] = use
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_BASE_URL", use.base_url)
        if mode == "replay" and not os.environ.get("OPENAI_API_KEY"):
            patch.setenv("OPENAI_API_KEY", PLACEHOLDER_KEY)
        try:
            yield use
        finally:
            # What the test and its fixtures' teardown did with the cassette, read as it is
            # released (which flushes the test's recordings to disk); judged in the teardown report.
            item.stash[_FINAL] = state.run(_outcome_and_release(named, name))


@pytest.fixture(autouse=True)
def _cassette_marker(request: pytest.FixtureRequest) -> None:
    """A test marked `@pytest.mark.cassette` gets the `cassette` fixture without asking for it."""
    if request.node.get_closest_marker("cassette") is not None:
        request.getfixturevalue("cassette")


async def _outcome_and_release(
    named: NamedCassettes, name: str
) -> tuple[list[str], list[tuple[int, str | None]]]:
    """The misses and unused recordings (id, the test that made it) of a test's cassette, read
    on the proxy's loop; then the cassette is freed (one round trip for both)."""
    misses = _misses_so_far(named, name)
    current = named.opened(name)
    unused = (
        [(exchange.id, exchange.recorded_by) for exchange in current.index.unused()]
        if current is not None and current.mode != "record"
        else []
    )
    await (named.deactivate(name) if named.active == name else named.release(name))
    return misses, unused


def _misses_so_far(named: NamedCassettes, name: str) -> list[str]:
    """The misses of a test's cassette, read from the test's thread without a round trip to the
    proxy's loop (a test pays one per phase otherwise). The proxy notes a miss before it answers
    the request, so every request the test has had an answer to is counted; looking up the dict
    and copying the list are each one step under the GIL, so the copy is never half-made."""
    current = named.opened(name)
    return list(current.stats.misses) if current is not None else []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    if _USE not in item.stash or call.when == "setup":
        return
    report: pytest.TestReport = outcome.get_result()
    if call.when == "call":
        _judge_call(item, call, report)
    elif _FINAL in item.stash:
        _judge_teardown(item, report)


def _judge_call(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """A replay miss fails the test with the proxy's explanation, even if the client's error
    was caught."""
    state: _PluginState = item.config.stash[_STATE]
    _, named = state.start()
    misses = _misses_so_far(named, item.stash[_USE].name)
    item.stash[_CALL_SEEN] = (len(misses), report.passed)
    if misses:
        raised = ""
        if call.excinfo is not None:
            text = call.excinfo.exconly()
            if any(miss in text for miss in misses):  # the SDK's message repeats the proxy's
                text = call.excinfo.typename
            raised = f"\n\n(the client raised {text})"
        report.outcome = "failed"
        report.longrepr = "\n".join(misses) + raised
        item.stash[_CALL_SEEN] = (len(misses), False)


def _judge_teardown(item: pytest.Item, report: pytest.TestReport) -> None:
    """Once the fixtures are torn down (their requests count too): misses they caused, and the
    recordings the test left unused."""
    if _CALL_SEEN not in item.stash:
        return  # set-up failed or skipped the test: that report says what went wrong
    state: _PluginState = item.config.stash[_STATE]
    use = item.stash[_USE]
    misses, unused = item.stash[_FINAL]
    seen, call_passed = item.stash[_CALL_SEEN]
    if late := misses[seen:]:
        report.outcome = "failed"
        report.longrepr = "\n".join(late) + "\n\n(sent while the test's fixtures were torn down)"
        return
    if not call_passed:
        return  # a test that did not get to the end leaves recordings unused for its own reasons
    if state.shared.is_shared(use.name):
        # Judged when the session ends: what this test left may be another test's.
        state.shared.ran(use.name, str(use.path), [recording for recording, _ in unused])
        return
    # Recordings other tests made (sharing the cassette, but not run now) are theirs to use.
    owned = state.owned_by(item.nodeid)
    unused = [(recording, by) for recording, by in unused if owned(by)]
    if unused:
        description = f"{len(unused)} recording(s) in {use.path} not used"
        report.user_properties.append((_UNUSED_PROPERTY, description))
        if state.strict and report.passed:
            report.outcome = "failed"
            report.longrepr = (
                f"cassette-proxy: {description} by this test (--cassette-strict); "
                "re-record it with --cassette-mode=rewrite"
            )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Which cassettes several tests share: their unused recordings are judged per session.
    Counted before `-k` or `-m` deselect any, so that a cassette shared with a test left out is
    not judged by the tests that ran."""
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.collected(items, _partly_selected_files(config))
        state.shared.collected(
            _cassette_name(item)
            for item in items
            if item.get_closest_marker("cassette") is not None
            or "cassette" in getattr(item, "fixturenames", ())
        )


def _partly_selected_files(config: pytest.Config) -> set[str]:
    """Test files (as in node ids) that the command line selects only some tests of
    (`tests/test_a.py::test_one`): their other tests were not collected, yet are not gone."""
    files = set()
    for arg in config.args:
        path, selects_part, _ = arg.partition("::")
        if selects_part:
            with contextlib.suppress(ValueError):
                full = (config.invocation_params.dir / path).resolve()
                files.add(full.relative_to(config.rootpath).as_posix())
    return files


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    workeroutput: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller judges
        workeroutput[_SHARED_OUTPUT] = state.shared.to_wire()
    elif state.strict and state.shared.left_unused() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist, on the controller: a worker's share of the shared cassettes' use."""
    state = node.config.stash.get(_STATE, None)
    output = getattr(node, "workeroutput", None) or {}
    if state is not None and _SHARED_OUTPUT in output:
        state.shared.merge(output[_SHARED_OUTPUT])


class _UnusedSummary:
    """Collects the unused-recording notes of every report (xdist workers' too) for the summary."""

    def __init__(self) -> None:
        self.notes: dict[tuple[str, str], None] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in getattr(report, "user_properties", ()):
            if key == _UNUSED_PROPERTY:
                self.notes[(report.nodeid, str(value))] = None

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        state: _PluginState | None = terminalreporter.config.stash.get(_STATE, None)
        shared = state.shared.left_unused() if state is not None else []
        if not self.notes and not shared:
            return
        terminalreporter.section("cassette-proxy: unused recordings")
        for nodeid, description in self.notes:
            terminalreporter.write_line(f"{nodeid}: {description}")
        for name, use in shared:
            terminalreporter.write_line(
                f"{use.path}: {len(use.unused or ())} recording(s) not used by any of the "
                f"{use.tests} tests sharing cassette {name!r}"
                + (" (--cassette-strict: the run fails)" if state and state.strict else "")
            )
        terminalreporter.write_line(
            "(--cassette-strict fails such tests; --cassette-mode=rewrite re-records them)"
        )

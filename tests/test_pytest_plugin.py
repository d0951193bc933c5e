"""The pytest plugin, end to end: an example suite run by pytest in a fresh process.

The fake upstream runs here, on the `servers` loop; the example suite (a separate pytest process)
records through the plugin's in-process proxy, then replays with the upstream stopped.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.loop_thread import LoopThread

pytest_plugins = ["pytester"]

EXAMPLE = textwrap.dedent(
    """
    import json

    import openai
    import pytest

    MODEL = "gpt-4o-mini"
    TOOLS = [{"type": "function", "function": {"name": "search", "description": "search",
              "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]


    @pytest.mark.cassette
    def test_chat():
        reply = openai.OpenAI().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content.startswith("You said: hello")


    @pytest.mark.cassette
    def test_chat_stream():
        stream = openai.OpenAI().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "stream me"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text.startswith("You said: stream me")


    @pytest.mark.cassette
    def test_tools():
        reply = openai.OpenAI().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "find cats"}], tools=TOOLS
        )
        call = reply.choices[0].message.tool_calls[0]
        assert call.function.name == "search"
        assert json.loads(call.function.arguments)["query"] == "find cats"


    @pytest.mark.cassette
    def test_embeddings():
        result = openai.OpenAI().embeddings.create(model="text-embedding-3-small", input="cats")
        assert len(result.data[0].embedding) == 8


    @pytest.mark.cassette("shared/async_chat")
    async def test_async_chat():
        client = openai.AsyncOpenAI()
        reply = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "async hello"}]
        )
        assert reply.choices[0].message.content.startswith("You said: async hello")


    async def test_async_stream_with_fixture(cassette):
        assert cassette.mode in ("record", "replay")
        client = openai.AsyncOpenAI(base_url=cassette.base_url)
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "async stream"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text.startswith("You said: async stream")
        assert cassette.path.name == "test_async_stream_with_fixture.db"
    """
)

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "CASSETTE_PROXY_CONFIG",
        "CASSETTE_PROXY_MODE",
        "CASSETTE_PROXY_UPSTREAM",
        "CASSETTE_PROXY_CASSETTE_DIR",
    ]:
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(test_example=EXAMPLE)
    return pytester


def only(suite: pytest.Pytester, **modules: str) -> None:
    """Replace the example suite with these test modules (and their helpers)."""
    (suite.path / "test_example.py").unlink()
    suite.makepyfile(**modules)


def with_key(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str
) -> pytest.RunResult:
    """Run the suite with an API key set, as when recording against the real API."""
    with monkeypatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", "sk-record-key")
        return suite.runpytest_subprocess(*args)


def run_against(
    upstream: FakeOpenAI,
    suite: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    *args: str,
) -> pytest.RunResult:
    """Run the suite in `mode` (record, rewrite…) against the fake upstream, with a key."""
    return with_key(
        suite, monkeypatch, f"--cassette-mode={mode}", f"--cassette-upstream={upstream.url}", *args
    )


def record(suite: pytest.Pytester, upstream: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_against(upstream, suite, monkeypatch, "record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_record_then_replay_offline(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record(suite, upstream, monkeypatch)
    seen = upstream.request_count
    assert seen == 6
    cassettes = suite.path / "cassettes"
    assert (cassettes / "test_example" / "test_chat.db").exists()
    assert (cassettes / "shared" / "async_chat.db").exists()

    servers.run(upstream.stop())
    # Default mode is replay; no API key in the environment.
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    assert upstream.request_count == seen
    result.stdout.no_fnmatch_line("*unused recordings*")


def test_changed_request_fails_with_the_differing_path(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record(suite, upstream, monkeypatch)
    servers.run(upstream.stop())
    suite.makepyfile(
        test_example=EXAMPLE.replace('"content": "hello"}', '"content": "hello there"}')
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_chat _*",
            "cassette-proxy replay miss: no recording in cassette *test_chat.db matches "
            "POST /v1/chat/completions. Nearest is exchange #*"
            'body.messages[[]0[]].content: "hello there" != "hello"*',
        ]
    )


def test_xdist_replays_the_same_suite(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("xdist")
    record(suite, upstream, monkeypatch)
    servers.run(upstream.stop())
    result = suite.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*2 workers*"])


UNUSED = textwrap.dedent(
    """
    import openai
    import pytest

    @pytest.mark.cassette
    def test_models():
        client = openai.OpenAI()
        assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
        if CALL_TWICE:
            assert client.models.retrieve("gpt-4.1").id == "gpt-4.1"
    """
)


def test_unused_recordings_reported_and_strict_fails(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only(suite, test_unused="CALL_TWICE = True\n" + UNUSED)
    with monkeypatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", "sk-record-key")
        patch.setenv("CASSETTE_PROXY_UPSTREAM", upstream.url)  # the same settings as `serve`
        suite.runpytest_subprocess("--cassette-mode=record").assert_outcomes(passed=1)
    assert upstream.request_count == 2
    servers.run(upstream.stop())
    suite.makepyfile(test_unused="CALL_TWICE = False\n" + UNUSED)

    lenient = suite.runpytest_subprocess("-n", "2")  # the workers' notes reach the summary
    lenient.assert_outcomes(passed=1)
    lenient.stdout.fnmatch_lines(
        [
            "*cassette-proxy: unused recordings*",
            "test_unused.py::test_models: 1 recording(s) in *test_models.db not used",
        ]
    )

    strict = suite.runpytest_subprocess("--cassette-strict")
    # Judged once the fixtures are torn down, since their requests count too: a teardown error.
    strict.assert_outcomes(passed=1, errors=1)
    strict.stdout.fnmatch_lines(["*1 recording(s) in *test_models.db not used*--cassette-strict*"])


TEARDOWN_CALL = textwrap.dedent(
    """
    import openai
    import pytest

    @pytest.fixture
    def model_checked_after():
        yield
        assert openai.OpenAI().models.retrieve(AFTER).id == AFTER

    @pytest.mark.cassette
    def test_models(model_checked_after):
        assert openai.OpenAI().models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    """
)


def test_requests_from_fixture_teardown_are_matched_and_counted(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only(suite, test_td='AFTER = "gpt-4.1"\n' + TEARDOWN_CALL)
    recorded = run_against(upstream, suite, monkeypatch, "record")
    recorded.assert_outcomes(passed=1)
    servers.run(upstream.stop())
    # The teardown's request used the second recording: nothing is left unused.
    suite.runpytest_subprocess("--cassette-strict").assert_outcomes(passed=1)
    suite.makepyfile(test_td='AFTER = "gpt-5"\n' + TEARDOWN_CALL)
    changed = suite.runpytest_subprocess()
    changed.assert_outcomes(passed=1, errors=1)
    changed.stdout.fnmatch_lines(
        [
            "*cassette-proxy replay miss*GET /v1/models/gpt-5*",
            "*sent while the test's fixtures were torn down*",
        ]
    )


SHARED = textwrap.dedent(
    """
    import time

    import openai
    import pytest


    def ask(question):
        reply = openai.OpenAI(max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        assert reply.choices[0].message.content.startswith("You said: " + question)
        time.sleep(PAUSE)  # under -n 2 both tests have the cassette open at once


    @pytest.mark.cassette("shared/login")
    def test_alice():
        ask("login as alice")


    @pytest.mark.cassette("shared/login")
    def test_bob():
        ask("login as bob")
    """
)


def test_tests_sharing_a_cassette_keep_each_others_recordings(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("xdist")
    only(suite, test_shared="PAUSE = 1.0\n" + SHARED)
    cassette = suite.path / "cassettes" / "shared" / "login.db"
    for args in (  # two workers writing one file, then rewrites by two workers and by one
        ["-n", "2", "--cassette-mode=record"],
        ["-n", "2", "--cassette-mode=rewrite"],
        ["--cassette-mode=rewrite"],
    ):
        run = with_key(suite, monkeypatch, *args, f"--cassette-upstream={upstream.url}")
        run.assert_outcomes(passed=2)
        bodies = sorted(json.loads(b)["messages"][0]["content"] for b in _request_bodies(cassette))
        assert bodies == ["login as alice", "login as bob"], args
    assert upstream.request_count == 6
    servers.run(upstream.stop())

    # Each test leaves the other's recording unused: neither test is at fault, nor the session.
    strict = suite.runpytest_subprocess("-n", "2", "--cassette-strict")
    strict.assert_outcomes(passed=2)
    assert strict.ret == 0
    strict.stdout.no_fnmatch_line("*unused recordings*")


def test_one_test_of_a_shared_cassette_run_alone_minds_only_its_own_recordings(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chosen by node id (or file, as a CI shard does), a test is the only one to name the
    cassette in the run: strict judges only its own recordings, and rewrite re-records only them."""
    only(suite, test_shared="PAUSE = 0\n" + SHARED)
    cassette = suite.path / "cassettes" / "shared" / "login.db"
    run_against(upstream, suite, monkeypatch, "record").assert_outcomes(passed=2)
    alone = "test_shared.py::test_alice"
    run_against(upstream, suite, monkeypatch, "rewrite", alone).assert_outcomes(passed=1)
    bodies = sorted(json.loads(b)["messages"][0]["content"] for b in _request_bodies(cassette))
    assert bodies == ["login as alice", "login as bob"]  # bob's recording kept
    with sqlite3.connect(cassette) as db:
        assert sorted(db.execute("SELECT recorded_by FROM exchanges")) == [
            ("test_shared.py::test_alice",),
            ("test_shared.py::test_bob",),
        ]
    servers.run(upstream.stop())
    suite.runpytest_subprocess("--cassette-strict", alone).assert_outcomes(passed=1)
    suite.runpytest_subprocess("--cassette-strict").assert_outcomes(passed=2)


def test_a_recording_no_test_sharing_the_cassette_used_fails_strict(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only(suite, test_shared="PAUSE = 0\n" + SHARED)
    recorded = run_against(upstream, suite, monkeypatch, "record")
    recorded.assert_outcomes(passed=2)
    servers.run(upstream.stop())
    suite.makepyfile(test_shared="PAUSE = 0\n" + SHARED.replace('ask("login as bob")', "pass"))

    for args in (["--cassette-strict"], ["-n", "2", "--cassette-strict"]):
        strict = suite.runpytest_subprocess(*args)
        strict.assert_outcomes(passed=2)  # no test is at fault; the run is
        assert strict.ret == pytest.ExitCode.TESTS_FAILED, args
        strict.stdout.fnmatch_lines(
            [
                "*cassette-proxy: unused recordings*",
                "*login.db: 1 recording(s) not used by any of the 2 tests sharing cassette "
                "'shared/login' (--cassette-strict: the run fails)",
            ]
        )
    # Without every test sharing it, nothing can be said of the cassette.
    partial = suite.runpytest_subprocess("--cassette-strict", "-k", "alice")
    partial.assert_outcomes(passed=1, deselected=1)
    assert partial.ret == 0


NAMES = textwrap.dedent(
    """
    import openai
    import pytest

    LONG = "Summarise in one sentence: " + "lorem ipsum dolor sit amet " * 12


    @pytest.mark.cassette
    @pytest.mark.parametrize("question", ["Hi!", "Hi?", LONG], ids=["Hi!", "Hi?", LONG])
    def test_ask(question, cassette):
        reply = openai.OpenAI(max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        assert reply.choices[0].message.content.startswith("You said: " + question)


    @pytest.mark.cassette("login flow")
    def test_named_with_a_space():
        pass
    """
)


def test_every_test_id_gets_a_cassette_of_its_own(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only(suite, test_names=NAMES)
    recorded = run_against(upstream, suite, monkeypatch, "record")
    # Ids differing only in punctuation, and one too long for a file name, each get their own.
    recorded.assert_outcomes(passed=3, errors=1)
    names = sorted(p.name for p in (suite.path / "cassettes" / "test_names").iterdir())
    assert len(names) == 3
    assert all(len(name) < 140 and name.startswith("test_ask_") for name in names), names
    # A name no client can send unencoded is refused when the test starts, saying why.
    recorded.stdout.fnmatch_lines(
        ["*cassette name 'login flow' may hold only ASCII letters, digits, '_', '.' and '-'*"]
    )

    servers.run(upstream.stop())
    replay = suite.runpytest_subprocess("--cassette-strict")
    replay.assert_outcomes(passed=3, errors=1)


def test_replay_without_a_cassette_says_how_to_record(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-k", "test_embeddings")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*no cassette *test_embeddings.db to replay*--cassette-mode=record*"]
    )


def test_cassette_dir_option_and_rewrite(
    suite: pytest.Pytester, upstream: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-record-key")
    args = ["-k", "test_chat and not stream", f"--cassette-upstream={upstream.url}"]
    suite.runpytest_subprocess("--cassette-dir=tapes", "--cassette-mode=record", *args)
    path: Path = suite.path / "tapes" / "test_example" / "test_chat.db"
    assert path.exists()
    # rewrite starts over (record would append): strict replay afterwards finds nothing unused
    suite.runpytest_subprocess("--cassette-dir=tapes", "--cassette-mode=rewrite", *args)
    assert upstream.request_count == 2
    result = suite.runpytest_subprocess("--cassette-dir=tapes", "--cassette-strict", *args)
    result.assert_outcomes(passed=1)


# An application that builds its clients when imported, before any test's cassette exists.
APP = textwrap.dedent(
    """
    import openai

    CLIENT = openai.OpenAI(max_retries=0)
    ASYNC_CLIENT = openai.AsyncOpenAI(max_retries=0)


    def ask(question):
        reply = CLIENT.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        return reply.choices[0].message.content


    async def ask_streamed(question):
        stream = await ASYNC_CLIENT.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    """
)

SESSION_SUITE = textwrap.dedent(
    """
    import openai
    import pytest

    import app


    def test_without_a_cassette():  # first, before any test has opened a cassette
        with pytest.raises(openai.BadRequestError) as raised:
            app.ask("first question")
        assert "no test with a cassette was running" in str(raised.value)


    @pytest.mark.cassette
    def test_first():
        assert app.ask("first question").startswith("You said: first question")


    @pytest.mark.cassette
    def test_second():
        assert app.ask("second question").startswith("You said: second question")
        assert app.ask("second question, again").startswith("You said: second question, again")


    @pytest.mark.cassette
    async def test_streamed():
        assert (await app.ask_streamed("streamed")).startswith("You said: streamed")
    """
)


def _request_bodies(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT request_body FROM exchanges ORDER BY id")]


def test_session_url_covers_clients_built_at_import_time(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The root conftest imports the application, so its clients exist before pytest configures.
    only(suite, app=APP, test_session=SESSION_SUITE, conftest="import app\n")
    recorded = with_key(
        suite,
        monkeypatch,
        "--cassette-session-url",
        "--cassette-mode=record",
        f"--cassette-upstream={upstream.url}",
    )
    recorded.assert_outcomes(passed=4)
    # Each test's requests are in its own cassette; the one sent outside a test went nowhere.
    assert upstream.request_count == 4
    cassettes = suite.path / "cassettes" / "test_session"
    bodies = {p.stem: [json.loads(b)["messages"][0]["content"] for b in _request_bodies(p)]
              for p in cassettes.glob("*.db")}  # fmt: skip
    assert bodies == {
        "test_first": ["first question"],
        "test_second": ["second question", "second question, again"],
        "test_streamed": ["streamed"],
    }

    servers.run(upstream.stop())
    suite.makeini(INI + "cassette_session_url = true\n")
    for args in ([], ["-n", "2"] if importlib.util.find_spec("xdist") else []):
        replayed = suite.runpytest_subprocess("-p", "no:cacheprovider", *args)
        replayed.assert_outcomes(passed=4)


def test_a_usage_error_leaves_the_environment_as_it_was(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session URL is published before options are checked: a bad option must not leave
    OPENAI_BASE_URL pointing at a proxy that never starts (an in-process run shares os.environ)."""
    import os

    monkeypatch.setenv("OPENAI_BASE_URL", "http://example.invalid/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    suite.makeini(INI + "cassette_mode = sideways\ncassette_session_url = true\n")
    result = suite.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cassette_mode must be one of*not 'sideways'*"])
    assert os.environ["OPENAI_BASE_URL"] == "http://example.invalid/v1"
    assert "OPENAI_API_KEY" not in os.environ


def test_a_config_mistake_is_one_usage_error_not_a_traceback_per_test(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (suite.path / "bad.toml").write_text("[server]\nprot = 1\n")
    monkeypatch.setenv("CASSETTE_PROXY_CONFIG", str(suite.path / "bad.toml"))
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: cassette-proxy: config error: *unknown key `server.prot`*"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    monkeypatch.delenv("CASSETTE_PROXY_CONFIG")
    result = suite.runpytest_subprocess("--cassette-upstream=ftp://x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*config error: --cassette-upstream: bad value for `upstream.url`*"]
    )


def test_a_cassette_that_cannot_be_opened_is_explained_once(suite: pytest.Pytester) -> None:
    only(suite, test_lfs="import pytest\n\n@pytest.mark.cassette\ndef test_pointer():\n    pass\n")
    pointer = suite.path / "cassettes" / "test_lfs" / "test_pointer.db"
    pointer.parent.mkdir(parents=True)
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 8192\n")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "it is a Git LFS pointer: fetch the cassette with `git lfs pull`" in output
    # Once in the error (the short summary repeats it), never chained, never with the path twice.
    assert "During handling" not in output
    assert output.split("short test summary")[0].count("not a usable cassette") == 1, output
    assert not [line for line in output.splitlines() if line.count("test_pointer.db") > 1]


LEFT_STREAMING = textwrap.dedent(
    """
    import openai
    import pytest

    @pytest.mark.cassette
    def test_reads_the_first_event_only():
        stream = openai.OpenAI(max_retries=0).chat.completions.create(
            model="slow-stream", messages=[{"role": "user", "content": "left"}],
            stream=True, max_completion_tokens=200,
        )
        assert next(iter(stream)).choices[0].delta.content == "tick0 "
        pytest.left_open = stream  # neither read to its end nor closed
    """
)


def test_a_stream_a_test_left_running_holds_up_the_session_end_only_briefly(
    suite: pytest.Pytester, upstream: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    only(suite, test_left=LEFT_STREAMING)
    began = time.monotonic()
    result = run_against(upstream, suite, monkeypatch, "record")
    took = time.monotonic() - began
    result.assert_outcomes(passed=1)
    # The upstream streams for 40 s; the server's default grace alone is 30 s.
    assert took < 20, f"the session took {took:.1f}s to end"
    cassette = suite.path / "cassettes" / "test_left" / "test_reads_the_first_event_only.db"
    with sqlite3.connect(cassette) as db:
        assert list(db.execute("SELECT complete, outcome FROM exchanges")) == [(0, "shutdown")]


SETUP_CALL = textwrap.dedent(
    """
    import openai
    import pytest

    @pytest.fixture
    def warmed(cassette):
        openai.OpenAI(base_url=cassette.base_url, max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": WARM_UP}]
        )

    def test_uses_warm(warmed):
        pass
    """
)


def test_a_miss_in_a_fixtures_set_up_is_one_error(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only(suite, test_setup='WARM_UP = "warm up"\n' + SETUP_CALL)
    recorded = run_against(upstream, suite, monkeypatch, "record")
    recorded.assert_outcomes(passed=1)
    servers.run(upstream.stop())
    suite.makepyfile(test_setup='WARM_UP = "warm up again"\n' + SETUP_CALL)
    result = suite.runpytest_subprocess()
    result.assert_outcomes(errors=1)  # at set-up only, not again at teardown
    result.stdout.fnmatch_lines(["*ERROR at setup of test_uses_warm*", "*replay miss*"])
    result.stdout.no_fnmatch_line("*sent while the test's fixtures were torn down*")


RENAMED = textwrap.dedent(
    """
    import openai
    import pytest

    @pytest.mark.cassette("named/login")
    def test_NAME():
        assert openai.OpenAI().models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    """
)


def test_a_renamed_test_takes_over_what_its_old_name_recorded(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its old recordings go on rewrite and count as its own under strict: no test is left to
    own them, and replayed first they would hide what the test re-recorded."""
    only(suite, test_renamed=RENAMED.replace("NAME", "login"))
    run_against(upstream, suite, monkeypatch, "record").assert_outcomes(passed=1)
    suite.makepyfile(test_renamed=RENAMED.replace("NAME", "sign_in"))
    run_against(upstream, suite, monkeypatch, "rewrite").assert_outcomes(passed=1)
    with sqlite3.connect(suite.path / "cassettes" / "named" / "login.db") as db:
        assert list(db.execute("SELECT recorded_by FROM exchanges")) == [
            ("test_renamed.py::test_sign_in",)
        ]
    servers.run(upstream.stop())
    suite.runpytest_subprocess("--cassette-strict").assert_outcomes(passed=1)


def test_a_test_folder_named_openai_or_v1_gets_a_cassette_of_its_own(
    suite: pytest.Pytester,
    upstream: FakeOpenAI,
    servers: LoopThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In /_c/<name>/v1/... a name part `openai` or `v1` would end the name there.
    (suite.path / "test_example.py").unlink()
    chat = textwrap.dedent(
        """
        import openai
        import pytest

        @pytest.mark.cassette
        def test_hello():
            reply = openai.OpenAI().chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
            )
            assert reply.choices[0].message.content.startswith("You said: hello")

        @pytest.mark.cassette("shared/openai/chat")
        def test_named_by_hand():
            pass
        """
    )
    for folder in ("openai", "v1"):
        (suite.path / "tests" / folder).mkdir(parents=True)
        (suite.path / "tests" / folder / f"test_{folder}_chat.py").write_text(chat)
    recorded = run_against(upstream, suite, monkeypatch, "record")
    recorded.assert_outcomes(passed=2, errors=2)
    recorded.stdout.fnmatch_lines(["*cassette name 'shared/openai/chat' has a part 'openai'*"])
    made = sorted(str(p.relative_to(suite.path / "cassettes")) for p in suite.path.rglob("*.db"))
    assert [p.split("-")[0] for p in made] == ["tests/openai", "tests/v1"], made
    assert made[0].endswith("/test_openai_chat/test_hello.db"), made
    assert made[1].endswith("/test_v1_chat/test_hello.db"), made

    servers.run(upstream.stop())
    suite.runpytest_subprocess("-k", "hello").assert_outcomes(passed=2, deselected=2)

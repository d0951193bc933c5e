"""Replay the same 200-call pytest suite with our plugin and with VCR.py + pytest-recording.

Generates two copies of a suite (50 tests x 4 openai SDK calls: chat, streamed chat with usage,
embeddings, a tool call), records both against the fake OpenAI upstream of the tests, stops it, then
replays each copy in its own pytest process, alternating over several rounds, and reports the median
wall times and their ratio. Needs the `bench` extra (vcrpy, pytest-recording).

    pip install -e '.[bench]' && python bench/pytest_replay_bench.py [--rounds 3] [--tests 50]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLS_PER_TEST = 4
API_KEY = "sk-bench-0000000000000000000000"

CALLS = """
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look something up.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["query"],
            },
        },
    }
]


def calls(client: openai.OpenAI, n: int) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"plain question {n}"}]
    )
    assert f"plain question {n}" in (reply.choices[0].message.content or "")
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"streamed question {n}"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert f"streamed question {n}" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    vectors = client.embeddings.create(model="text-embedding-3-small", input=f"embed text {n}")
    assert len(vectors.data[0].embedding) > 0
    tool = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"tool question {n}"}],
        tools=TOOLS,
    )
    tool_calls = tool.choices[0].message.tool_calls
    assert tool_calls and tool_calls[0].function.name == "lookup"
"""

VCR_CONFTEST = """
import pytest


@pytest.fixture(scope="module")
def vcr_config():
    return {
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "filter_headers": ["authorization"],
    }
"""


def suite(tests: int, marker: str, client: str) -> str:
    """A test module of `tests` tests, each marked with `marker` and making CALLS_PER_TEST calls."""
    head = "import openai\nimport pytest\n" + CALLS
    body = "".join(
        f"\n\n@pytest.mark.{marker}\ndef test_case_{i:03d}() -> None:\n    calls({client}, {i})\n"
        for i in range(tests)
    )
    return head + body


def write_suites(tmp: Path, tests: int, upstream: str) -> tuple[Path, Path]:
    ours, vcr = tmp / "ours", tmp / "vcr"
    for directory in (ours, vcr):
        directory.mkdir()
        (directory / "pytest.ini").write_text("[pytest]\n")
    (ours / "test_suite.py").write_text(suite(tests, "cassette", "openai.OpenAI(max_retries=0)"))
    client = f"openai.OpenAI(base_url={upstream + '/v1'!r}, api_key={API_KEY!r}, max_retries=0)"
    (vcr / "test_suite.py").write_text(suite(tests, "vcr", client))
    (vcr / "conftest.py").write_text(textwrap.dedent(VCR_CONFTEST).lstrip())
    return ours, vcr


def base_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "CASSETTE_PROXY_", "PYTEST_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def pytest_run(cwd: Path, args: list[str], env: dict[str, str], tests: int) -> float:
    """Run pytest in `cwd`; the wall time in seconds. Exits if any test did not pass."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or not re.search(rf"\b{tests} passed\b", done.stdout):
        sys.exit(f"pytest {' '.join(args)} in {cwd} failed ({done.returncode}):\n{done.stdout}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tests", type=int, default=50, help="tests per suite (4 calls each)")
    parser.add_argument(
        "--embedding-dimensions",
        type=int,
        default=1536,
        help="size of the upstream's embeddings (default: text-embedding-3-small's 1536, the "
        "size the corpus's real embeddings have; the tests' fake answers 8)",
    )
    parser.add_argument(
        "--reply-words",
        type=int,
        default=0,
        help="words added to each chat answer (and so chunks to each streamed one)",
    )
    args = parser.parse_args()
    missing = [m for m in ("vcr", "pytest_recording") if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"missing {', '.join(missing)}: pip install -e '.[bench]' (vcrpy, pytest-recording)",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.path.insert(0, str(ROOT))
    from tests.support.fake_openai import FakeOpenAI
    from tests.support.loop_thread import LoopThread

    calls = args.tests * CALLS_PER_TEST
    with tempfile.TemporaryDirectory(prefix="pytest-replay-bench-") as tmp:
        loop = LoopThread(name="fake-upstream").start()
        fake = FakeOpenAI()
        fake.embedding_dimensions = args.embedding_dimensions
        fake.reply_words = args.reply_words
        try:
            upstream = loop.run(fake.start())  # binds a free loopback port
            ours, vcr = write_suites(Path(tmp), args.tests, upstream)
            record_env = {**base_env(), "OPENAI_API_KEY": API_KEY}
            for directory, record_args in (
                (ours, ["--cassette-mode=record", f"--cassette-upstream={upstream}"]),
                (vcr, ["--record-mode=once"]),
            ):
                before = fake.request_count
                pytest_run(directory, record_args, record_env, args.tests)
                if fake.request_count - before != calls:
                    sys.exit(
                        f"recording {directory.name}: upstream saw "
                        f"{fake.request_count - before} requests, expected {calls}"
                    )
            recorded = fake.request_count
        finally:
            loop.run(fake.stop())
            loop.stop()

        replay_env = base_env()  # no key: neither replay needs one
        variants = {
            "cassette-proxy": (ours, ["--cassette-mode=replay"]),
            "VCR.py": (vcr, ["--record-mode=none"]),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (directory, replay_args) in variants.items():
                times[name].append(pytest_run(directory, replay_args, replay_env, args.tests))
        if fake.request_count != recorded:
            sys.exit(f"the upstream received {fake.request_count - recorded} requests in replay")

    med = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"pytest replay of {args.tests} tests x {CALLS_PER_TEST} calls = {calls} openai SDK calls "
        f"with {args.embedding_dimensions}-dimension embeddings (wall time per pytest process, "
        f"median of {args.rounds} rounds; upstream stopped, 0 requests reached it, all tests "
        "passed):"
    )
    for name, value in med.items():
        rounds = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"  {name:15s} {value:6.2f} s   (rounds: {rounds})")
    ratio = med["VCR.py"] / med["cassette-proxy"]
    print(f"VCR.py / cassette-proxy = {ratio:.2f}")
    if ratio >= 1:
        print(f"ours is {ratio:.2f}x faster")
    else:
        print(f"ours is {1 / ratio:.2f}x slower")


if __name__ == "__main__":
    main()

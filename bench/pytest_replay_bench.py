"""Replay the same 200-call pytest suite with our plugin and with VCR.py + pytest-recording.

For each suite shape (calls per test: 1, 4 and 20 by default, so 200, 50 and 10 tests, each test
building its own client; and 1 call per test through one module-level client, `1:shared`, which our
plugin serves with `--cassette-session-url`), generates two copies of the suite (the calls cycle
through chat, streamed chat with usage, embeddings and a tool call), records both against the fake
OpenAI upstream of the tests, stops it, then replays each copy in its own pytest process,
alternating over several rounds, and reports the median wall times and their ratio per shape.
Needs the `bench` extra (vcrpy, pytest-recording).

    pip install -e '.[bench]' && python bench/pytest_replay_bench.py [--rounds 5] [--per-test 1,4,20,1:shared]
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


def plain(client: openai.OpenAI, n: int) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"plain question {n}"}]
    )
    assert f"plain question {n}" in (reply.choices[0].message.content or "")


def streamed(client: openai.OpenAI, n: int) -> None:
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


def embedded(client: openai.OpenAI, n: int) -> None:
    vectors = client.embeddings.create(model="text-embedding-3-small", input=f"embed text {n}")
    assert len(vectors.data[0].embedding) > 0


def tool(client: openai.OpenAI, n: int) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"tool question {n}"}],
        tools=TOOLS,
    )
    tool_calls = reply.choices[0].message.tool_calls
    assert tool_calls and tool_calls[0].function.name == "lookup"


KINDS = (plain, streamed, embedded, tool)


def calls(client: openai.OpenAI, first: int, count: int) -> None:
    # `count` calls, cycling through the four kinds from call number `first` on.
    for n in range(first, first + count):
        KINDS[n % len(KINDS)](client, n)
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


def suite(tests: int, per_test: int, marker: str, client: str, shared: bool) -> str:
    """A test module of `tests` tests, each marked with `marker` and making `per_test` calls,
    each with a client of its own or, when `shared`, all with one built when the module loads."""
    head = "import openai\nimport pytest\n" + CALLS
    if shared:
        head += f"\n\nCLIENT = {client}\n"
        client = "CLIENT"
    body = "".join(
        f"\n\n@pytest.mark.{marker}\ndef test_case_{i:03d}() -> None:\n"
        f"    calls({client}, {i * per_test}, {per_test})\n"
        for i in range(tests)
    )
    return head + body


def write_suites(tmp: Path, shape: Shape, upstream: str) -> tuple[Path, Path]:
    ours, vcr = tmp / "ours", tmp / "vcr"
    for directory in (ours, vcr):
        directory.mkdir(parents=True)
        (directory / "pytest.ini").write_text("[pytest]\n")
    # OPENAI_BASE_URL comes from the plugin; for a client built at import, its session URL.
    (ours / "pytest.ini").write_text(
        f"[pytest]\ncassette_session_url = {str(shape.shared).lower()}\n"
    )
    ours_client = "openai.OpenAI(max_retries=0)"
    (ours / "test_suite.py").write_text(
        suite(shape.tests, shape.per_test, "cassette", ours_client, shape.shared)
    )
    client = f"openai.OpenAI(base_url={upstream + '/v1'!r}, api_key={API_KEY!r}, max_retries=0)"
    (vcr / "test_suite.py").write_text(
        suite(shape.tests, shape.per_test, "vcr", client, shape.shared)
    )
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


class Shape:
    """One suite shape measured: its wall times per variant."""

    def __init__(self, spec: str, calls: int) -> None:
        count, _, kind = spec.partition(":")
        if kind not in ("", "shared"):
            sys.exit(f"--per-test {spec!r}: expected N or N:shared")
        self.per_test = int(count)
        self.shared = kind == "shared"
        self.tests = calls // self.per_test
        self.times: dict[str, list[float]] = {"cassette-proxy": [], "VCR.py": []}

    @property
    def label(self) -> str:
        return f"{self.tests} x {self.per_test}" + (" shared" if self.shared else "")

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    @property
    def ratio(self) -> float:
        """The median over the rounds of VCR.py's time over ours: each round's two runs are
        back to back, so a slower spell of the machine weighs on both sides of its ratio."""
        return statistics.median(
            vcr / ours
            for vcr, ours in zip(self.times["VCR.py"], self.times["cassette-proxy"], strict=True)
        )


def measure(shape: Shape, tmp: Path, args: argparse.Namespace) -> None:
    """Record both copies of the suite, stop the upstream, replay each copy `args.rounds` times."""
    from tests.support.fake_openai import FakeOpenAI
    from tests.support.loop_thread import LoopThread

    calls = shape.tests * shape.per_test
    loop = LoopThread(name="fake-upstream").start()
    fake = FakeOpenAI()
    fake.embedding_dimensions = args.embedding_dimensions
    fake.reply_words = args.reply_words
    try:
        upstream = loop.run(fake.start())  # binds a free loopback port
        where = tmp / f"x{shape.per_test}{'-shared' if shape.shared else ''}"
        ours, vcr = write_suites(where, shape, upstream)
        record_env = {**base_env(), "OPENAI_API_KEY": API_KEY}
        for directory, record_args in (
            (ours, ["--cassette-mode=record", f"--cassette-upstream={upstream}"]),
            (vcr, ["--record-mode=once"]),
        ):
            before = fake.request_count
            pytest_run(directory, record_args, record_env, shape.tests)
            if fake.request_count - before != calls:
                sys.exit(
                    f"recording {directory}: upstream saw "
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
    for number in range(args.rounds):
        # Who goes first alternates, so neither side always runs on a machine the other warmed.
        order = list(variants) if number % 2 == 0 else list(reversed(variants))
        for name in order:
            directory, replay_args = variants[name]
            shape.times[name].append(pytest_run(directory, replay_args, replay_env, shape.tests))
    if fake.request_count != recorded:
        sys.exit(f"the upstream received {fake.request_count - recorded} requests in replay")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="openai SDK calls per suite")
    parser.add_argument(
        "--per-test",
        default="1,4,20,1:shared",
        help="comma-separated calls per test, one suite shape each; N:shared for one client "
        "built at import and shared by the tests (default: 1,4,20,1:shared)",
    )
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
    shapes = [Shape(spec, args.calls) for spec in args.per_test.split(",")]
    with tempfile.TemporaryDirectory(prefix="pytest-replay-bench-") as tmp:
        for shape in shapes:
            measure(shape, Path(tmp), args)

    print(
        f"pytest replay of {args.calls} openai SDK calls, {args.embedding_dimensions}-dimension "
        f"embeddings; wall time per pytest process, median of {args.rounds} rounds (the ratio: "
        "median of the rounds' ratios); upstream stopped, 0 requests reached it, all tests passed:"
    )
    print(f"{'tests x calls':>21s} {'cassette-proxy':>15s} {'VCR.py':>9s} {'VCR.py / ours':>14s}")
    for shape in shapes:
        print(
            f"{shape.label:>21s} {shape.median('cassette-proxy'):13.2f} s"
            f" {shape.median('VCR.py'):7.2f} s {shape.ratio:13.2f}x"
        )
    for shape in shapes:
        for name, values in shape.times.items():
            rounds = ", ".join(f"{t:.2f}" for t in values)
            print(f"  {shape.label}, {name}: {rounds}")


if __name__ == "__main__":
    main()

"""Side-by-side load benchmark of cassette-proxy against bare aiohttp peers.

Servers are pinned to CPU 0 and wrk to CPU 1; every configuration is measured in the same run.
Each round starts every server afresh and measures them taking turns in one-second windows; the
ratios are taken within a round and their median over the rounds is reported (with every round's
value).

    python bench/run_bench.py [--rounds 5] [--duration 5]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUEST_BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something short."}]}
)
WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = {json.dumps(REQUEST_BODY)}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-0000000000000000000000"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


def spawn(stack: ExitStack, args: list[str], ready_url: str) -> None:
    proc = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(lambda: (proc.terminate(), proc.wait(10)))
    wait_ready(ready_url)


def wrk(url: str, script: Path, connections: int, duration: float) -> tuple[float, float]:
    """(requests/s, p50 latency in ms)."""
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert p50 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} error responses\n{out}")
    return rps, float(p50.group(1)) * scale


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        raise SystemExit("needs wrk and taskset: apt-get install -y wrk util-linux")

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT)
        rounds = [measure_round(Path(tmp), script, args, n) for n in range(args.rounds)]

    def median(name: str, measure: str) -> float:
        return statistics.median(r[measure][name] for r in rounds)

    print(
        f"requests/s ({args.connections} connections) and p50 latency (1 connection), "
        f"median of {args.rounds} rounds, each with freshly started servers:"
    )
    for name in ("upstream", "forwarder", "record", "replay"):
        latency = f"{median(name, 'p50'):7.3f} ms" if name != "replay" else ""
        print(f"  {name:10s} {median(name, 'rps'):10.0f} {latency}")
    print()
    ratios = (
        ("replay rps / bare aiohttp server rps", "replay_ratio", ">= 0.60"),
        ("record added p50 latency (ms)", "added_p50", "<= 0.5"),
        ("record rps / bare aiohttp forwarder rps", "record_ratio", ">= 0.80"),
    )
    for label, key, target in ratios:
        values = [r["derived"][key] for r in rounds]
        spread = ", ".join(f"{v:.3f}" for v in values)
        print(
            f"{label:42s} = {statistics.median(values):6.3f}   (target {target}; rounds: {spread})"
        )


def interleaved(
    targets: dict[str, str], measure: Callable[[str], float], args: argparse.Namespace
) -> dict[str, list[float]]:
    """`measure` of every target in one-second windows, `args.duration` each, taking turns."""
    windows: dict[str, list[float]] = {name: [] for name in targets}
    order = list(targets)
    for turn in range(max(1, round(args.duration))):
        for name in order if turn % 2 == 0 else reversed(order):
            windows[name].append(measure(targets[name]))
    return windows


def measure_round(
    tmp: Path, script: Path, args: argparse.Namespace, number: int
) -> dict[str, dict[str, float]]:
    """One round: every server started afresh (a process's speed varies by several percent from
    one start to the next), each measured in turn; the ratios are taken within the round."""
    with ExitStack() as stack:
        ports = {name: free_port() for name in ("upstream", "forwarder", "record", "replay")}
        up = f"http://127.0.0.1:{ports['upstream']}"
        spawn(
            stack, [str(HERE / "peers.py"), "upstream", "--port", str(ports["upstream"])], up + "/"
        )
        spawn(
            stack,
            [
                str(HERE / "peers.py"),
                "forwarder",
                "--port",
                str(ports["forwarder"]),
                "--upstream",
                up,
            ],
            f"http://127.0.0.1:{ports['forwarder']}/",
        )
        proxy = ["-m", "proxy", "serve", "--upstream", up, "--log-format", "json"]
        replay_cassette = tmp / f"replay-{number}.db"
        with ExitStack() as seeding:  # one recording of the benchmark request, then flushed
            seed_port = free_port()
            seed_url = f"http://127.0.0.1:{seed_port}"
            spawn(
                seeding,
                [*proxy, "--port", str(seed_port), "--cassette", str(replay_cassette)],
                seed_url + "/_proxy/health",
            )
            urllib.request.urlopen(
                urllib.request.Request(
                    seed_url + "/v1/chat/completions",
                    data=REQUEST_BODY.encode(),
                    headers={"Content-Type": "application/json"},
                )
            ).read()
        record_cassette = tmp / f"record-{number}.db"
        for mode, cassette in (("record", record_cassette), ("replay", replay_cassette)):
            spawn(
                stack,
                [*proxy, "--mode", mode, "--port", str(ports[mode]), "--cassette", str(cassette)],
                f"http://127.0.0.1:{ports[mode]}/_proxy/health",
            )
        path = "/v1/chat/completions"
        targets = {name: f"http://127.0.0.1:{port}{path}" for name, port in ports.items()}
        for url in targets.values():
            wrk(url, script, args.connections, 1)  # warm-up
        # The servers take turns in one-second windows, the order reversed every other pass, so
        # a slower spell of the (shared, noisy) machine falls on all of them alike.
        rps_windows = interleaved(
            targets, lambda url: wrk(url, script, args.connections, 1)[0], args
        )
        latency_targets = {name: url for name, url in targets.items() if name != "replay"}
        p50_windows = interleaved(latency_targets, lambda url: wrk(url, script, 1, 1)[1], args)
        rps = {name: statistics.mean(values) for name, values in rps_windows.items()}
        p50 = {name: statistics.median(values) for name, values in p50_windows.items()}
    derived = {
        "replay_ratio": rps["replay"] / rps["upstream"],
        "added_p50": p50["record"] - p50["upstream"],
        "record_ratio": rps["record"] / rps["forwarder"],
    }
    return {"rps": rps, "p50": p50, "derived": derived}


if __name__ == "__main__":
    main()

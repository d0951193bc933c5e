"""Side-by-side load benchmark of cassette-proxy against bare aiohttp peers.

Servers are pinned to CPU 0 and wrk to CPU 1; every configuration is measured in the same run,
interleaved over several rounds, and only ratios between them are reported.

    python bench/run_bench.py [--rounds 3] [--duration 5]
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        raise SystemExit("needs wrk and taskset: apt-get install -y wrk util-linux")

    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT)
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
        replay_cassette = Path(tmp) / "replay.db"
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
        for mode, cassette in (("record", Path(tmp) / "record.db"), ("replay", replay_cassette)):
            spawn(
                stack,
                [*proxy, "--mode", mode, "--port", str(ports[mode]), "--cassette", str(cassette)],
                f"http://127.0.0.1:{ports[mode]}/_proxy/health",
            )

        path = "/v1/chat/completions"
        targets = {
            name: f"http://127.0.0.1:{ports[name]}{path}"
            for name in ("upstream", "forwarder", "record", "replay")
        }
        rps: dict[str, list[float]] = {name: [] for name in targets}
        p50: dict[str, list[float]] = {name: [] for name in ("upstream", "forwarder", "record")}
        for name in targets:  # warm-up
            wrk(targets[name], script, args.connections, 1)
        for _ in range(args.rounds):
            for name, url in targets.items():
                rps[name].append(wrk(url, script, args.connections, args.duration)[0])
            for name in p50:
                p50[name].append(wrk(targets[name], script, 1, args.duration)[1])

    med = {name: statistics.median(values) for name, values in rps.items()}
    lat = {name: statistics.median(values) for name, values in p50.items()}
    print(f"requests/s (median of {args.rounds} rounds, {args.connections} connections):")
    for name, value in med.items():
        print(f"  {name:10s} {value:10.0f}")
    print(
        f"p50 latency at 1 connection: direct {lat['upstream']:.3f} ms, "
        f"bare forwarder {lat['forwarder']:.3f} ms, record {lat['record']:.3f} ms"
    )
    print()
    ratios = (
        ("replay rps / bare aiohttp server rps", med["replay"] / med["upstream"], ">= 0.60"),
        ("record added p50 latency (ms)", lat["record"] - lat["upstream"], "<= 0.5"),
        ("record rps / bare aiohttp forwarder rps", med["record"] / med["forwarder"], ">= 0.80"),
    )
    for label, value, target in ratios:
        print(f"{label:42s} = {value:6.3f}   (target {target})")


if __name__ == "__main__":
    main()

"""`cassette-proxy run -- CMD`: signals reach the child once, and a busy port is a clear error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.proxies import REPO, clean_env, closed_port_url

# Counts the interrupts it gets for a while, then exits with that count.
CHILD = """
import signal, sys, time
seen = []
signal.signal(signal.SIGINT, lambda *_: seen.append("INT"))
signal.signal(signal.SIGTERM, lambda *_: seen.append("TERM"))
signal.signal(signal.SIGHUP, lambda *_: seen.append("HUP"))
open(sys.argv[1], "w").close()
deadline = time.monotonic() + 2
while time.monotonic() < deadline:
    time.sleep(0.02)
print("child saw", ",".join(seen) or "nothing", flush=True)
sys.exit(len(seen))
"""

# Runs the rest of its arguments as the leader of a new session whose controlling terminal is
# its stdin, as a shell in a terminal window does.
IN_A_TERMINAL = (
    "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


def _run_command(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "proxy", "run", "--cassette", str(tmp_path / "c.db"),
        "--mode", "record", "--upstream", closed_port_url(), *extra,
        "--", sys.executable, "-c", CHILD, str(tmp_path / "ready"),
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = clean_env()
    env["PYTHONPATH"] = str(REPO)
    return env


def _wait_ready(tmp_path: Path) -> None:
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.02)


def test_ctrl_c_in_a_terminal_reaches_the_child_once(tmp_path: Path) -> None:
    main, terminal = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", IN_A_TERMINAL, *_run_command(tmp_path)],
            stdin=terminal, stdout=terminal, stderr=terminal, env=_env(),
        )  # fmt: skip
        _wait_ready(tmp_path)
        os.write(main, b"\x03")  # Ctrl-C: the terminal signals its whole foreground group
        code = process.wait(timeout=60)
        output = _drain(main)
    finally:
        os.close(terminal)
        os.close(main)
    assert "child saw INT\r\n" in output, output
    assert code == 1, output


def test_signals_sent_to_run_alone_are_passed_on(tmp_path: Path) -> None:
    process = subprocess.Popen(
        _run_command(tmp_path),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_ready(tmp_path)
    process.send_signal(signal.SIGINT)  # as `kill -INT <pid>` or a supervisor sends it
    time.sleep(0.3)
    process.send_signal(signal.SIGHUP)  # by default it would end `run`, orphaning the child
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert out == "child saw INT,HUP,TERM\n", err
    assert process.returncode == 3
    assert "cassette-proxy run:" in err  # the summary, after the child ended


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            _run_command(tmp_path, "--port", str(port)),
            env=_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "ready").exists()  # the child never ran


def _drain(fd: int) -> str:
    chunks = []
    os.set_blocking(fd, False)
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and terminals")


def test_the_summary_does_not_count_an_unreachable_upstream_as_recorded(tmp_path: Path) -> None:
    # Recording with the upstream down stores the proxy's own 502, which replay will not serve.
    post = (
        "import os, urllib.request, urllib.error\n"
        "request = urllib.request.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions',"
        " data=b'{\"model\": \"m\"}', headers={'content-type': 'application/json'})\n"
        "try:\n    urllib.request.urlopen(request)\n"
        "except urllib.error.HTTPError as error:\n    print(error.code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "run", "--cassette", str(tmp_path / "c.db"),
         "--mode", "record", "--upstream", closed_port_url(), "--", sys.executable, "-c", post],
        env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "502"
    assert "0 replayed, 0 recorded, 1 stored but not replayable, 0 misses" in done.stderr
    assert "not replayable: POST /v1/chat/completions: upstream_unreachable (" in done.stderr

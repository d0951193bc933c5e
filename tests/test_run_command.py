"""`cassette-proxy run -- CMD`: signals reach the child once, and a busy port is a clear error."""

from __future__ import annotations

import os
import pty
import select
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI
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


def _run_command(tmp_path: Path, *extra: str, child: str = CHILD) -> list[str]:
    """`run` of a Python `child` given the paths it marks `ready` and writes what it `seen`."""
    return [
        sys.executable, "-m", "proxy", "run", "--cassette", str(tmp_path / "c.db"),
        "--mode", "record", "--upstream", closed_port_url(), *extra,
        "--", sys.executable, "-c", child, str(tmp_path / "ready"), str(tmp_path / "seen"),
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


# Counts the hang-ups it gets, into a file: after a hang-up its terminal is gone.
HUP_CHILD = """
import signal, sys, time
seen = []
signal.signal(signal.SIGHUP, lambda *_: seen.append("HUP"))
open(sys.argv[1], "w").close()
deadline = time.monotonic() + 2
while time.monotonic() < deadline:
    time.sleep(0.02)
open(sys.argv[2], "w").write(",".join(seen))
"""


def test_a_terminal_hang_up_reaches_the_child_once(tmp_path: Path) -> None:
    # The hang-up detaches the session from its terminal before `run` can ask the terminal who
    # is in its foreground; `run` still must not send a second one.
    command = _run_command(tmp_path, child=HUP_CHILD)
    main, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", IN_A_TERMINAL, *command],
        stdin=terminal, stdout=terminal, stderr=terminal, env=_env(),
    )  # fmt: skip
    try:
        _wait_ready(tmp_path)
    finally:
        os.close(terminal)
        os.close(main)  # the terminal window closes
    code = process.wait(timeout=60)
    assert (tmp_path / "seen").read_text() == "HUP"
    assert code == 0  # the child's, though the summary had no terminal left to go to


def test_a_signal_while_run_stops_still_flushes_and_reports(
    tmp_path: Path, upstream: FakeOpenAI
) -> None:
    # The child leaves a stream behind; `run` waits for it within the grace, and a Ctrl-C or
    # SIGTERM then must not kill it before the cassette is flushed and the summary printed.
    upstream.slow_interval = 0.3
    reader = tmp_path / "reader.py"
    reader.write_text(
        "import json, os, urllib.request\n"
        "body = {'model': 'slow-stream', 'stream': True, 'max_tokens': 8,\n"
        "        'messages': [{'role': 'user', 'content': 'hi'}]}\n"
        "request = urllib.request.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions',\n"
        "    data=json.dumps(body).encode(), headers={'content-type': 'application/json',\n"
        "    'authorization': 'Bearer ' + os.environ['OPENAI_API_KEY']})\n"
        "urllib.request.urlopen(request).read()\n"
    )
    leaves_a_stream = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, {str(reader)!r}])\n"
        "time.sleep(0.8)\n"
        "open(sys.argv[1], 'w').close()\n"
    )
    cassette = tmp_path / "c.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "run", "--cassette", str(cassette), "--mode", "record",
         "--upstream", upstream.url, "--", sys.executable, "-c", leaves_a_stream,
         str(tmp_path / "ready")],
        env={**_env(), "OPENAI_API_KEY": "sk-test"}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_ready(tmp_path)
    time.sleep(0.5)  # the child has exited; the stream runs on for about 1.5 s
    process.send_signal(signal.SIGINT)
    time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err  # the child's code
    assert "Traceback" not in err, err
    assert "SIGINT while stopping" in err
    assert "1 recorded" in err  # the summary
    with sqlite3.connect(cassette) as db:
        assert db.execute("SELECT outcome FROM exchanges").fetchall() == [("complete",)]


# Says who sent each hang-up it gets: `run` (its parent) or anyone else.
HUP_SENDERS_CHILD = """
import os, signal, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
open(sys.argv[1], "w").close()
senders = []
deadline = time.monotonic() + 3
while time.monotonic() < deadline:
    info = signal.sigtimedwait({signal.SIGHUP}, 0.05)
    if info:
        senders.append("run" if info.si_pid == os.getppid() else "other")
open(sys.argv[2], "w").write(",".join(senders))
"""


def test_a_hang_up_of_a_shells_terminal_is_not_passed_on_by_run(tmp_path: Path) -> None:
    # In an interactive shell's terminal the shell passes the hang-up to its jobs: a third
    # one from `run` would cut short what the child does on the first.
    command = _run_command(tmp_path, child=HUP_SENDERS_CHILD)
    pid, main = pty.fork()
    if pid == 0:  # the shell in the terminal window
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], _env())
    try:
        os.write(main, shlex.join(command).encode() + b"\n")
        deadline = time.monotonic() + 60
        while not (tmp_path / "ready").exists():
            assert time.monotonic() < deadline, "the child never started"
            if select.select([main], [], [], 0.05)[0]:
                os.read(main, 65536)  # the terminal shows what the shell echoes
    finally:
        os.close(main)  # the terminal window closes
        os.waitpid(pid, 0)
    deadline = time.monotonic() + 60
    while not (tmp_path / "seen").exists():
        assert time.monotonic() < deadline, "the child never finished"
        time.sleep(0.05)
    time.sleep(0.1)
    senders = (tmp_path / "seen").read_text().split(",")
    assert "other" in senders and "run" not in senders, senders


def _replay_missing(tmp_path: Path, cassette: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", "run", "--cassette", str(cassette), "--mode", "replay",
         "--", sys.executable, "-c", "open(__import__('sys').argv[1], 'w').close()",
         str(tmp_path / "ready")],
        env={**_env(), **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_cassette_folder_from_the_environment_does_not_excuse_a_mistyped_cassette(
    tmp_path: Path,
) -> None:
    # `run` serves only --cassette; a cassette_dir set for `serve` must not turn a typo into
    # a replay of nothing where every request misses and the child's 0 is the exit code.
    done = _replay_missing(
        tmp_path, tmp_path / "typo.db", CASSETTE_PROXY_CASSETTE_DIR=str(tmp_path / "named")
    )
    assert done.returncode == 1, done.stderr
    assert "typo.db: no such cassette to replay" in done.stderr
    assert not (tmp_path / "ready").exists()


def test_a_cassette_path_that_cannot_be_looked_at_is_named_as_the_problem(tmp_path: Path) -> None:
    done = _replay_missing(tmp_path, tmp_path / ("x" * 300) / "c.db")  # a name too long
    assert done.returncode == 1, done.stderr
    assert "cannot open the cassette (File name too long)" in done.stderr
    assert "cannot listen" not in done.stderr
    assert "Traceback" not in done.stderr

"""`cassette-proxy run -- CMD`: a Node.js program using the npm `openai` package records and replays."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.proxies import REPO, clean_env, closed_port_url

SCRIPT = """
const OpenAI = require("openai");
(async () => {
  const client = new OpenAI({ maxRetries: 0 });
  const out = {};
  const reply = await client.chat.completions.create({
    model: "gpt-4o-mini", messages: [{ role: "user", content: "hello from node" }],
  });
  out.text = reply.choices[0].message.content;
  out.usage = reply.usage;
  const stream = await client.chat.completions.create({
    model: "gpt-4o-mini", messages: [{ role: "user", content: "stream from node" }],
    stream: true, stream_options: { include_usage: true },
  });
  const parts = [];
  for await (const chunk of stream) {
    if (chunk.choices.length) parts.push(chunk.choices[0].delta.content || "");
    else out.streamUsage = chunk.usage;
  }
  out.stream = parts.join("");
  const embedding = await client.embeddings.create({ model: "text-embedding-3-small", input: "node" });
  out.dimensions = embedding.data[0].embedding.length;
  console.log(JSON.stringify(out));
})().catch((error) => { console.error(String(error)); process.exit(3); });
"""


@pytest.fixture(scope="module")
def node_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the npm `openai` package installed from the registry, and the script."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the any-language test")
    folder = tmp_path_factory.mktemp("node")
    try:
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "openai@4"],
            cwd=folder,
            check=True,
            capture_output=True,
            timeout=300,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"npm could not install the openai package: {exc}")
    (folder / "script.js").write_text(SCRIPT)
    return folder


def run(
    folder: Path, cassette: Path, mode: str, upstream: str, key: str | None
) -> tuple[int, str, str]:
    env = clean_env()
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    if key:
        env["OPENAI_API_KEY"] = key
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "run", "--cassette", str(cassette), "--mode", mode,
         "--upstream", upstream, "--", "node", "script.js"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


def test_node_script_records_then_replays_with_the_upstream_down(
    node_project: Path, upstream: FakeOpenAI, tmp_path: Path, api_key: str
) -> None:
    cassette = tmp_path / "node.db"
    code, recorded, report = run(node_project, cassette, "record", upstream.url, api_key)
    assert code == 0, report
    assert "0 replayed, 3 recorded, 0 misses" in report
    seen = upstream.request_count
    assert seen == 3

    # replay: the upstream address is closed and no key is given (a placeholder is set)
    code, replayed, report = run(node_project, cassette, "replay", closed_port_url(), None)
    assert code == 0, report
    assert "3 replayed, 0 recorded, 0 misses" in report
    assert json.loads(replayed) == json.loads(recorded)
    assert json.loads(recorded)["stream"] and json.loads(recorded)["dimensions"] > 0
    assert upstream.request_count == seen


def test_a_miss_is_explained_in_the_summary_and_the_exit_code_is_the_childs(
    node_project: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.db"
    run(node_project, empty, "record", closed_port_url(), "sk-x")  # creates the file, 502s
    code, _, report = run(node_project, empty, "replay", closed_port_url(), None)
    assert code == 3  # the script's own exit code
    assert "1 miss" in report and "miss: cassette-proxy replay miss" in report

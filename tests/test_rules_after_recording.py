"""Matching rules apply to recordings made before the rules changed."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.support.clients import sync_client
from tests.support.fake_openai import FakeOpenAI
from tests.support.proxies import ProxyFactory, closed_port_url


def ask(base_url: str, api_key: str, user: str) -> str | None:
    with sync_client(base_url, api_key, max_retries=0) as client:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], user=user
        )
    return reply.choices[0].message.content


def test_ignore_path_added_after_recording_matches_old_recordings(
    tmp_path: Path, upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = proxies.start("record", upstream.url, cassette)
    recorded = ask(recorder.base_url, api_key, user="alice")
    recorder.stop()

    strict = proxies.start("replay", closed_port_url(), cassette)
    with pytest.raises(openai.BadRequestError, match=r"body\.user"):
        ask(strict.base_url, api_key, user="bob")
    strict.stop()

    config = tmp_path / "lenient.toml"
    config.write_text('[matching]\nignore_json_paths = ["body.user"]\n')
    lenient = proxies.start("replay", closed_port_url(), cassette, config_file=config)
    assert ask(lenient.base_url, api_key, user="bob") == recorded

"""Shared fixtures: a background loop for servers, the fake upstream, proxies, an API key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.loop_thread import LoopThread
from tests.support.proxies import ProxyFactory


@pytest.fixture(scope="session")
def servers() -> Iterator[LoopThread]:
    """One event loop in a background thread, hosting the fake upstream and in-process proxies."""
    loop = LoopThread().start()
    yield loop
    loop.stop()


@pytest.fixture
def upstream(servers: LoopThread) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    servers.run(fake.start())
    yield fake
    servers.run(fake.stop())


@pytest.fixture
def proxies(servers: LoopThread) -> Iterator[ProxyFactory]:
    factory = ProxyFactory(servers)
    yield factory
    factory.stop_all()


@pytest.fixture
def api_key() -> str:
    return "sk-test-" + uuid.uuid4().hex


@pytest.fixture
def cassette(tmp_path: Path) -> Path:
    return tmp_path / "cassette.db"

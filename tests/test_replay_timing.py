"""Replay timing: none, original (recorded TTFB and gaps between events) and a speed factor.

Durations are only compared with each other, as ratios to the recorded ones, never to a constant.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.support.clients import sync_client
from tests.support.fake_openai import FakeOpenAI
from tests.support.proxies import ProxyFactory, closed_port_url

REQUEST = {
    "model": "slow-stream",
    "messages": [{"role": "user", "content": "timed"}],
    "stream": True,
    "max_completion_tokens": 5,
}


def arrival_gaps(base_url: str, api_key: str) -> list[float]:
    """Seconds between the request and each chunk's arrival, as the SDK client sees them."""
    started = time.monotonic()
    arrivals: list[float] = []
    with (
        sync_client(base_url, api_key, max_retries=0) as client,
        client.chat.completions.create(**REQUEST) as stream,  # type: ignore[call-overload]
    ):
        for _ in stream:
            arrivals.append(time.monotonic() - started)
    return arrivals


def test_replay_timing_none_original_and_factor(
    upstream: FakeOpenAI, proxies: ProxyFactory, cassette: Path, api_key: str
) -> None:
    recorder = proxies.start("record", upstream.url, cassette)
    arrival_gaps(recorder.base_url, api_key)
    recorder.stop()
    with sqlite3.connect(cassette) as db:
        (exchange_id,) = db.execute("SELECT id FROM exchanges").fetchone()
        offsets = [
            row[0]
            for row in db.execute(
                "SELECT offset_ms FROM sse_events WHERE exchange_id = ? ORDER BY idx",
                (exchange_id,),
            )
        ]
    recorded_s = offsets[-1] / 1000
    assert len(offsets) >= 5 and recorded_s > 0

    gone = closed_port_url()
    runs: dict[str, float] = {}
    for timing in ("none", "original", "2"):
        replayer = proxies.start("replay", gone, cassette, replay_timing=timing)
        runs[timing] = arrival_gaps(replayer.base_url, api_key)[-1]
        replayer.stop()

    # original keeps the recorded pacing (never faster than recorded), a factor of 2 halves it,
    # and none does not wait at all.
    assert runs["original"] >= recorded_s * 0.95
    assert recorded_s * 0.45 <= runs["2"] < runs["original"]
    assert runs["none"] < recorded_s * 0.25

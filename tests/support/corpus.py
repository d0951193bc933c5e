"""The shared corpus of real recorded OpenAI exchanges, read from ../shared (never copied here)."""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec
import pytest

CORPUS_DIR = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "openai"


class CorpusMessage(msgspec.Struct):
    headers: dict[str, str]
    body: str | None = None
    body_b64: str | None = None
    method: str = ""
    path: str = ""
    query: str = ""
    status: int = 0

    def body_bytes(self) -> bytes:
        if self.body_b64 is not None:
            return base64.b64decode(self.body_b64)
        return (self.body or "").encode("utf-8")


class CorpusExchange(msgspec.Struct):
    id: str
    request: CorpusMessage
    response: CorpusMessage
    notes: str | None = None


def read_corpus(directory: Path = CORPUS_DIR) -> list[CorpusExchange]:
    """Every exchange of the corpus at `directory`, in file order."""
    decoder = msgspec.json.Decoder(CorpusExchange)
    return [
        decoder.decode(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]


def load_corpus() -> list[CorpusExchange]:
    """Every exchange in file order; skips the calling test when ../shared/corpus is absent."""
    if not CORPUS_DIR.is_dir():
        pytest.skip(f"corpus not found at {CORPUS_DIR} (../shared/corpus beside the repo)")
    return read_corpus()

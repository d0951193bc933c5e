"""Decode throughput of the corpus responses: our msgspec structs against the openai SDK's models.

Takes the successful responses of the corpus (`../shared/corpus/openai`) whose operation has an
obvious pydantic counterpart in the official `openai` SDK (chat completions and their stream
chunks, Responses and their stream events, embeddings, models, legacy completions, moderations,
images), keeps the bodies that both sides accept, and decodes exactly the same bytes with
`msgspec.json.Decoder(type)` (the type the route table gives the operation: `route.response`, or
`route.stream` for each SSE event's data) and with `Model.model_validate_json` (a
`pydantic.TypeAdapter` for the SDK's union of Responses stream events). Both sides are measured in
the same run, alternating over several rounds; the ratio reported is the median over the rounds.

    python bench/decode_bench.py [--rounds 5] [--min-seconds 0.25]

Exits 2 when `../shared/corpus` (beside the repo) is absent.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
import pydantic
from openai.pagination import SyncPage
from openai.types import (
    Completion,
    CreateEmbeddingResponse,
    ImagesResponse,
    Model,
    ModerationCreateResponse,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from proxy.decode import RouteTable
from proxy.schemas.routes import ROUTES
from proxy.sse import SseSplitter, is_event_stream, parse_event

if TYPE_CHECKING:
    from tests.support.corpus import CorpusExchange

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT.parent / "shared" / "corpus" / "openai"
EXIT_NO_CORPUS = 2
TARGET = 5.0
MB = 1_000_000
UNION_CATEGORY = "response event"  # validated by pydantic as an undiscriminated union
TIMES = "\u00d7"  # the multiplication sign, written as an escape for ruff (RUF001)

Decode = Callable[[bytes], Any]
Work = list[tuple[Decode, bytes]]  # one side's decode calls over one category's bodies


class Counterpart(NamedTuple):
    category: str
    sdk_type: Any


# (operationId, whether the body is an SSE event's data) -> category and the SDK's pydantic type.
COUNTERPARTS: Mapping[tuple[str, bool], Counterpart] = {
    ("createChatCompletion", False): Counterpart("chat completion", ChatCompletion),
    ("getChatCompletion", False): Counterpart("chat completion", ChatCompletion),
    ("updateChatCompletion", False): Counterpart("chat completion", ChatCompletion),
    ("createChatCompletion", True): Counterpart("chat chunk", ChatCompletionChunk),
    ("createResponse", False): Counterpart("response", Response),
    ("getResponse", False): Counterpart("response", Response),
    ("cancelResponse", False): Counterpart("response", Response),
    ("createResponse", True): Counterpart("response event", ResponseStreamEvent),
    ("getResponse", True): Counterpart("response event", ResponseStreamEvent),
    ("createEmbedding", False): Counterpart("embeddings", CreateEmbeddingResponse),
    ("retrieveModel", False): Counterpart("models", Model),
    ("listModels", False): Counterpart("models", SyncPage[Model]),
    ("createCompletion", False): Counterpart("completion", Completion),
    ("createCompletion", True): Counterpart("completion", Completion),
    ("createModeration", False): Counterpart("moderation", ModerationCreateResponse),
    ("createImage", False): Counterpart("images", ImagesResponse),
    ("createImageEdit", False): Counterpart("images", ImagesResponse),
    ("createImageVariation", False): Counterpart("images", ImagesResponse),
}


def event_data(body: bytes) -> Iterator[bytes]:
    """The data of each SSE event of a stream body, without `[DONE]` and comment-only events."""
    splitter = SseSplitter()
    for raw in [*splitter.feed(body), splitter.flush()]:
        event = parse_event(raw) if raw else None
        if event is not None and event.data and event.data != "[DONE]":
            yield event.data.encode("utf-8")


# -- selecting the bodies ------------------------------------------------------------------------


class Body(NamedTuple):
    category: str
    data: bytes
    ours: Decode
    theirs: Decode


class Decoders:
    """One msgspec decoder and one pydantic validator per type, built on first use."""

    def __init__(self) -> None:
        self._ours: dict[Any, Decode] = {}
        self._theirs: dict[Any, Decode] = {}

    def ours(self, type_: Any) -> Decode:
        if type_ not in self._ours:
            self._ours[type_] = msgspec.json.Decoder(type_).decode
        return self._ours[type_]

    def theirs(self, type_: Any) -> Decode:
        if type_ not in self._theirs:
            if isinstance(type_, type) and issubclass(type_, pydantic.BaseModel):
                self._theirs[type_] = type_.model_validate_json
            else:
                self._theirs[type_] = pydantic.TypeAdapter(type_).validate_json
        return self._theirs[type_]


class Selection(NamedTuple):
    bodies: list[Body]
    sdk_rejects: dict[str, int]
    ours_rejects: dict[str, int]


def candidate_bodies(corpus: Sequence[CorpusExchange], decoders: Decoders) -> Iterator[Body]:
    """Every successful response body (or stream event data) with an SDK counterpart."""
    table = RouteTable(ROUTES)
    for exchange in corpus:
        response = exchange.response
        compiled = table.resolve(exchange.request.method, exchange.request.path)
        if compiled is None or response.status >= 400 or not (response.body or response.body_b64):
            continue
        route, content_type = compiled.route, response.headers.get("content-type", "")
        stream = is_event_stream(content_type)
        counterpart = COUNTERPARTS.get((route.operation_id, stream))
        ours_type = route.stream if stream else route.response
        if counterpart is None or ours_type is None or not (stream or "json" in content_type):
            continue
        body = response.body_bytes()
        ours, theirs = decoders.ours(ours_type), decoders.theirs(counterpart.sdk_type)
        for data in event_data(body) if stream else [body]:
            yield Body(counterpart.category, data, ours, theirs)


def accepts(decode: Decode, data: bytes) -> bool:
    try:
        decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, pydantic.ValidationError):
        return False
    return True


def select(corpus: Sequence[CorpusExchange]) -> Selection:
    """The candidate bodies both sides decode, and how many each side rejected per category."""
    selection = Selection([], {}, {})
    for body in candidate_bodies(corpus, Decoders()):
        if not accepts(body.ours, body.data):
            selection.ours_rejects[body.category] = selection.ours_rejects.get(body.category, 0) + 1
        elif not accepts(body.theirs, body.data):
            selection.sdk_rejects[body.category] = selection.sdk_rejects.get(body.category, 0) + 1
        else:
            selection.bodies.append(body)
    return selection


# -- measuring -----------------------------------------------------------------------------------


def seconds_per_pass(work: Work, min_seconds: float) -> float:
    """Decode every body of `work` over and over for at least `min_seconds`; time per pass."""
    gc.collect()
    passes = 0
    start = time.perf_counter()
    while True:
        for decode, data in work:
            decode(data)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / passes


class Category(NamedTuple):
    name: str
    bodies: int
    size: int
    ours: Work
    theirs: Work


def categories(bodies: Sequence[Body]) -> list[Category]:
    names = sorted({body.category for body in bodies})
    found = []
    for name in names:
        mine = [body for body in bodies if body.category == name]
        found.append(
            Category(
                name,
                len(mine),
                sum(len(body.data) for body in mine),
                [(body.ours, body.data) for body in mine],
                [(body.theirs, body.data) for body in mine],
            )
        )
    return found


class Timing(NamedTuple):
    """Seconds per pass over one category, per round: msgspec's and pydantic's."""

    ours: list[float]
    theirs: list[float]


def measure(cats: Sequence[Category], rounds: int, min_seconds: float) -> dict[str, Timing]:
    """Each round times every category on both sides, msgspec first in even rounds."""
    timings = {cat.name: Timing([], []) for cat in cats}
    for round_ in range(rounds):
        for cat in cats:
            timing = timings[cat.name]
            sides = [(cat.ours, timing.ours), (cat.theirs, timing.theirs)]
            for work, into in sides if round_ % 2 == 0 else reversed(sides):
                into.append(seconds_per_pass(work, min_seconds))
        print(f"  round {round_ + 1}/{rounds} done", file=sys.stderr, flush=True)
    return timings


# -- reporting -----------------------------------------------------------------------------------


class Row(NamedTuple):
    name: str
    bodies: int
    size: int
    rejects: int
    ours: list[float]  # seconds per pass, per round
    theirs: list[float]

    def throughput(self, side: list[float]) -> tuple[float, float]:
        """Bodies/s and MB/s at the median round."""
        seconds = statistics.median(side)
        return self.bodies / seconds, self.size / MB / seconds

    def ratio(self) -> float:
        return statistics.median(t / o for o, t in zip(self.ours, self.theirs, strict=True))

    def line(self) -> str:
        ours_n, ours_mb = self.throughput(self.ours)
        theirs_n, theirs_mb = self.throughput(self.theirs)
        return (
            f"{self.name:<16}{self.bodies:>7}{self.size / 1000:>9.1f}{self.rejects:>8}"
            f"{ours_n:>12,.0f}{ours_mb:>9.1f}{theirs_n:>12,.0f}{theirs_mb:>9.1f}"
            f"{self.ratio():>8.2f}{TIMES}"
        )


def rows(
    cats: Sequence[Category], timings: Mapping[str, Timing], rejects: Mapping[str, int]
) -> list[Row]:
    return [Row(c.name, c.bodies, c.size, rejects.get(c.name, 0), *timings[c.name]) for c in cats]


def total(name: str, parts: Sequence[Row]) -> Row:
    """The sum of `parts` as one row: one pass over all their bodies, round by round."""
    rounds = range(len(parts[0].ours))
    return Row(
        name,
        sum(r.bodies for r in parts),
        sum(r.size for r in parts),
        sum(r.rejects for r in parts),
        [sum(r.ours[i] for r in parts) for i in rounds],
        [sum(r.theirs[i] for r in parts) for i in rounds],
    )


def report(table: Sequence[Row], selection: Selection, rounds: int, min_seconds: float) -> None:
    everything = total("total", table)
    without_union = total("total w/o events", [r for r in table if r.name != UNION_CATEGORY])
    print(
        f"\ndecode throughput, median of {rounds} rounds "
        f"(each side ≥ {min_seconds:g} s per category per round)"
    )
    print(
        f"{'category':<16}{'bodies':>7}{'KB':>9}{'SDK-rej':>8}"
        f"{'msgspec/s':>12}{'MB/s':>9}{'pydantic/s':>12}{'MB/s':>9}{'ratio':>9}"
    )
    for row in [*table, everything, without_union]:
        print(row.line())
    print(
        f"\nskipped: {everything.rejects} bodies the SDK models reject, "
        f"{sum(selection.ours_rejects.values())} bodies our structs reject"
    )
    print(
        f"msgspec / pydantic decode throughput = {everything.ratio():.2f}{TIMES} "
        f"(target ≥ {TARGET:g}{TIMES})"
    )
    print(
        f"  without {UNION_CATEGORY}s: {without_union.ratio():.2f}{TIMES} (the SDK's "
        "ResponseStreamEvent union has no pydantic discriminator: pydantic tries its members)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=0.25, help="per category and side")
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(
            f"decode_bench: corpus not found at {args.corpus} (../shared/corpus beside the repo); "
            "nothing to measure",
            file=sys.stderr,
        )
        return EXIT_NO_CORPUS
    sys.path.insert(0, str(ROOT))
    from tests.support.corpus import read_corpus  # the tests' reader of the same files

    selection = select(read_corpus(args.corpus))
    cats = categories(selection.bodies)
    timings = measure(cats, args.rounds, args.min_seconds)
    table = rows(cats, timings, selection.sdk_rejects)
    report(table, selection, args.rounds, args.min_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

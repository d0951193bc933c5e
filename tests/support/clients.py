"""Official-SDK clients pointed at a proxy, with every HTTP response's headers logged.

The log is filled by httpx event hooks, so it sees each response the SDK receives (retries included)
without touching what the SDK does with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

TIMEOUT = 30.0


@dataclass
class Seen:
    method: str
    path: str
    status: int
    headers: dict[str, str]


@dataclass
class HttpLog:
    requests: int = 0
    responses: list[Seen] = field(default_factory=list)

    def on_request(self, request: httpx2.Request) -> None:
        self.requests += 1

    def on_response(self, response: httpx2.Response) -> None:
        request = response.request
        self.responses.append(
            Seen(request.method, request.url.path, response.status_code, dict(response.headers))
        )

    async def aon_request(self, request: httpx2.Request) -> None:
        self.on_request(request)

    async def aon_response(self, response: httpx2.Response) -> None:
        self.on_response(response)

    def sources(self) -> set[str | None]:
        """The distinct values of `x-cassette-proxy` seen."""
        return {seen.headers.get("x-cassette-proxy") for seen in self.responses}


def sync_client(
    base_url: str, api_key: str, *, max_retries: int = 2, log: HttpLog | None = None
) -> openai.OpenAI:
    hooks: dict[str, list[Callable[..., Any]]] = (
        {"request": [log.on_request], "response": [log.on_response]} if log else {}
    )
    http = openai.DefaultHttpxClient(event_hooks=hooks, trust_env=False, timeout=TIMEOUT)
    return openai.OpenAI(
        base_url=base_url, api_key=api_key, max_retries=max_retries, http_client=http
    )


def async_client(
    base_url: str, api_key: str, *, max_retries: int = 2, log: HttpLog | None = None
) -> openai.AsyncOpenAI:
    hooks: dict[str, list[Callable[..., Any]]] = (
        {"request": [log.aon_request], "response": [log.aon_response]} if log else {}
    )
    http = openai.DefaultAsyncHttpxClient(event_hooks=hooks, trust_env=False, timeout=TIMEOUT)
    return openai.AsyncOpenAI(
        base_url=base_url, api_key=api_key, max_retries=max_retries, http_client=http
    )

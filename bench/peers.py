"""The baselines the benchmark measures cassette-proxy against.

`upstream`: a bare aiohttp server answering every request with the same ~700-byte chat completion.
`forwarder`: a bare aiohttp reverse proxy (one ClientSession, no recording) in front of an upstream.
"""

from __future__ import annotations

import argparse

import aiohttp
from aiohttp import web

CHAT_COMPLETION = (
    b'{"id":"chatcmpl-bench0001","object":"chat.completion","created":1732400000,'
    b'"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"Benchmarks measure what they measure: this reply is a fixed seventy-word answer '
    b"that stands in for a short chat completion, long enough to look like real traffic and short "
    b'enough that the proxy, not the network, is what the numbers describe.","refusal":null,'
    b'"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":24,'
    b'"completion_tokens":52,"total_tokens":76,"prompt_tokens_details":{"cached_tokens":0,'
    b'"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default",'
    b'"system_fingerprint":"fp_bench"}'
)


def upstream_app() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(
            body=CHAT_COMPLETION,
            content_type="application/json",
            headers={"x-request-id": "req_bench", "openai-processing-ms": "1"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def forwarder_app(upstream: str) -> web.Application:
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app[session_key] = aiohttp.ClientSession(auto_decompress=False)
        yield
        await app[session_key].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        async with request.app[session_key].request(
            request.method, upstream + request.raw_path, headers=headers, data=body or None
        ) as resp:
            out = web.StreamResponse(status=resp.status, headers=resp.headers.copy())
            out.headers.pop("Transfer-Encoding", None)
            await out.prepare(request)
            async for chunk in resp.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("upstream", "forwarder"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", default="")
    args = parser.parse_args()
    app = upstream_app() if args.role == "upstream" else forwarder_app(args.upstream)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()

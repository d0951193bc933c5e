"""A fake OpenAI API on loopback: the far side of the proxy, and the only thing the tests fake.

It checks what the SDK sends the way the real API does (a bearer key, JSON or multipart bodies, the
fields each endpoint needs) and answers deterministically from the request, with realistic headers:
a unique `x-request-id` per response, `openai-processing-ms`, `openai-version`, content types.
JSON answers are gzip-compressed for clients that accept it, as api.openai.com does; streams are not.

Special models trigger special behaviour:
    "rate-limited"  → 429 rate_limit_exceeded      "server-error" → 500 server_error
    "counter"       → chat content is "answer N" for the Nth "counter" call (answers differ)
    "slow-stream"   → a chat stream with one event every `slow_interval` seconds; the handler logs
                      when it wrote each event and whether the client side went away (SlowStreamLog)
GET /v1/models/does-not-exist (any unknown model) → 404 model_not_found.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import re
import secrets
import struct
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from aiohttp import web

MODELS = {
    "gpt-4o-mini": 1721172741,
    "gpt-4.1": 1744316542,
    "text-embedding-3-small": 1705948997,
    "whisper-1": 1677532384,
    "tts-1": 1681940951,
}
EMBEDDING_DIMENSIONS = 8
SPEECH_SIZE = 6000


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class SlowStreamLog:
    """What the slow-stream handler did, readable from any thread."""

    prompt: str
    events_planned: int
    write_times: list[float] = field(
        default_factory=list
    )  # time.monotonic() just before each write
    cancelled: bool = False
    finished: bool = False
    ended: threading.Event = field(default_factory=threading.Event)  # finished or cancelled


class FakeOpenAI:
    """An aiohttp app behaving like api.openai.com for what the SDK sends; start() on a loop."""

    slow_interval = 0.2

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self.bearer_tokens: set[str] = set()
        self.counter_calls = 0
        self.slow_streams: dict[str, SlowStreamLog] = {}
        self.retry_after_ms: int | None = None  # sent on 429/500 when set
        self.gzip_json = True  # compress JSON answers for clients that accept gzip
        # Small by default to keep test cassettes small; text-embedding-3-small's is 1536.
        self.embedding_dimensions = EMBEDDING_DIMENSIONS
        self.reply_words = 0  # extra words after each chat answer: real answers are longer
        # Seconds a slow stream waits between its `[DONE]` and the end of its body.
        self.done_linger = 0.0
        self._token = secrets.token_hex(3)
        self._responses = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ----------------------------------------------------------------- lifecycle

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._log_request], client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_post("/v1/chat/completions", self._chat)
        r.add_post("/v1/responses", self._responses_create)
        r.add_post("/v1/embeddings", self._embeddings)
        r.add_get("/v1/models", self._models)
        r.add_get("/v1/models/{model}", self._model)
        r.add_post("/v1/audio/speech", self._speech)
        r.add_post("/v1/audio/transcriptions", self._transcription)
        r.add_post("/v1/files", self._files)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def request_count(self) -> int:
        return len(self.requests)

    # ----------------------------------------------------------------- plumbing

    @web.middleware
    async def _log_request(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(SeenRequest(request.method, request.path, headers, body))
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme != "Bearer" or not token.strip():
            return self._error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
                "missing_api_key",
            )
        self.bearer_tokens.add(token.strip())
        response: web.StreamResponse = await handler(request)
        accepted = request.headers.get("Accept-Encoding", "")
        if (
            self.gzip_json
            and isinstance(response, web.Response)
            and response.content_type == "application/json"
            and "gzip" in accepted
            and isinstance(response.body, bytes)
        ):
            # Like api.openai.com: JSON answers are compressed when the client accepts it.
            response.body = gzip.compress(response.body, mtime=0)
            response.headers["Content-Encoding"] = "gzip"
            response.headers["Vary"] = "Accept-Encoding"
        return response

    def _headers(self, content_type: str) -> dict[str, str]:
        self._responses += 1
        return {
            "content-type": content_type,
            "x-request-id": f"req_{self._token}{self._responses:06d}",
            "openai-processing-ms": str(17 + self._responses % 50),
            "openai-version": "2020-10-01",
            "openai-organization": "user-fake",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
        }

    def _json(
        self, payload: Any, status: int = 200, extra: dict[str, str] | None = None
    ) -> web.Response:
        headers = self._headers("application/json")
        headers.update(extra or {})
        return web.Response(status=status, body=json.dumps(payload).encode(), headers=headers)

    def _error(
        self, status: int, message: str, type_: str, param: str | None, code: str | None
    ) -> web.Response:
        extra = {}
        if status in (429, 500) and self.retry_after_ms is not None:
            extra["retry-after-ms"] = str(self.retry_after_ms)
        body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        return self._json(body, status, extra)

    async def _json_body(
        self, request: web.Request, *required: str
    ) -> dict[str, Any] | web.Response:
        if request.content_type != "application/json":
            return self._error(
                400, f"Invalid content type {request.content_type!r}: expected application/json",
                "invalid_request_error", None, None,
            )  # fmt: skip
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            return self._error(
                400, f"We could not parse the JSON body of your request. ({exc})",
                "invalid_request_error", None, None,
            )  # fmt: skip
        if not isinstance(body, dict):
            return self._error(400, "Expected a JSON object", "invalid_request_error", None, None)
        for name in required:
            if name not in body:
                return self._error(
                    400, f"Missing required parameter: '{name}'.",
                    "invalid_request_error", name, "missing_required_parameter",
                )  # fmt: skip
        return body

    def _special_model(self, model: str) -> web.Response | None:
        if model == "rate-limited":
            return self._error(
                429, "Rate limit reached for requests on model 'rate-limited'. Please try again.",
                "requests", None, "rate_limit_exceeded",
            )  # fmt: skip
        if model == "server-error":
            return self._error(
                500, "The server had an error while processing your request. Sorry about that!",
                "server_error", None, "server_error",
            )  # fmt: skip
        return None

    # ----------------------------------------------------------------- chat

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._json_body(request, "model", "messages")
        if isinstance(body, web.Response):
            return body
        model = body["model"]
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return self._error(
                400, "'messages' must be a non-empty array", "invalid_request_error",
                "messages", "invalid_type",
            )  # fmt: skip
        special = self._special_model(model)
        if special is not None:
            return special
        prompt = _text_of(messages[-1].get("content"))
        digest = _digest(messages)
        if model == "counter":
            self.counter_calls += 1
            content = f"answer {self.counter_calls}"
        else:
            content = f"You said: {prompt} [{digest[:8]}]" + _filler(self.reply_words, digest)
        tools = body.get("tools") or []
        tool_call: dict[str, Any] | None = None
        if tools and body.get("tool_choice") != "none":
            function = tools[0]["function"]
            arguments = json.dumps({"query": prompt, "limit": len(messages) + 2, "tag": digest[:6]})
            tool_call = {"id": f"call_{digest[:24]}", "type": "function",
                         "function": {"name": function["name"], "arguments": arguments}}  # fmt: skip
        usage = _chat_usage(
            messages, content if tool_call is None else tool_call["function"]["arguments"]
        )
        completion_id = f"chatcmpl-{digest[:29]}"
        created = int(time.time())
        if model == "slow-stream" and body.get("stream"):
            return await self._slow_stream(request, body, prompt, completion_id, created)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._chat_stream(
                request, model, completion_id, created, content, tool_call, usage, include_usage
            )
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None,
                                   "annotations": []}  # fmt: skip
        if tool_call is not None:
            message["content"] = None
            message["tool_calls"] = [tool_call]
        return self._json(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": _dated(model),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": "tool_calls" if tool_call else "stop",
                    }
                ],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": "fp_fake0001",
            }
        )

    async def _chat_stream(
        self,
        request: web.Request,
        model: str,
        completion_id: str,
        created: int,
        content: str,
        tool_call: dict[str, Any] | None,
        usage: dict[str, Any],
        include_usage: bool,
    ) -> web.StreamResponse:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": _dated(model),
                "service_tier": "default",
                "system_fingerprint": "fp_fake0001",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                out["usage"] = None
            return out

        chunks: list[dict[str, Any]] = []
        if tool_call is None:
            chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            chunks += [chunk({"content": piece}) for piece in re.findall(r"\S+\s*", content)]
            chunks.append(chunk({}, "stop"))
        else:
            head = {"index": 0, "id": tool_call["id"], "type": "function",
                    "function": {"name": tool_call["function"]["name"], "arguments": ""}}  # fmt: skip
            chunks.append(chunk({"role": "assistant", "content": None, "tool_calls": [head]}))
            arguments = tool_call["function"]["arguments"]
            step = max(1, len(arguments) // 5)
            for i in range(0, len(arguments), step):
                piece = {"index": 0, "function": {"arguments": arguments[i : i + step]}}
                chunks.append(chunk({"tool_calls": [piece]}))
            chunks.append(chunk({}, "tool_calls"))
        if include_usage:
            final = chunk({})
            final["choices"] = []
            final["usage"] = usage
            chunks.append(final)
        response = web.StreamResponse(headers=self._sse_headers())
        await response.prepare(request)
        for item in chunks:
            await response.write(b"data: " + json.dumps(item).encode() + b"\n\n")
            await asyncio.sleep(0)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _sse_headers(self) -> dict[str, str]:
        headers = self._headers("text/event-stream; charset=utf-8")
        headers["cache-control"] = "no-cache"
        return headers

    async def _slow_stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        prompt: str,
        completion_id: str,
        created: int,
    ) -> web.StreamResponse:
        planned = int(body.get("max_completion_tokens") or body.get("max_tokens") or 5)
        log = SlowStreamLog(prompt, planned)
        self.slow_streams[prompt] = log
        response = web.StreamResponse(headers=self._sse_headers())
        try:
            await response.prepare(request)
            for i in range(planned):
                if i:
                    await asyncio.sleep(self.slow_interval)
                delta: dict[str, Any] = {"content": f"tick{i} "}
                if i == 0:
                    delta["role"] = "assistant"
                event = {
                    "id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": "slow-stream",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                 "finish_reason": "stop" if i == planned - 1 else None}],
                }  # fmt: skip
                log.write_times.append(time.monotonic())
                await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            if self.done_linger:
                await asyncio.sleep(self.done_linger)
            await response.write_eof()
        except asyncio.CancelledError:
            log.cancelled = True
            log.ended.set()
            raise
        except ConnectionResetError:  # the client side went away: a real server just stops
            log.cancelled = True
            log.ended.set()
            return response
        log.finished = True
        log.ended.set()
        return response

    # ----------------------------------------------------------------- responses

    async def _responses_create(self, request: web.Request) -> web.StreamResponse:
        body = await self._json_body(request, "model", "input")
        if isinstance(body, web.Response):
            return body
        model = body["model"]
        special = self._special_model(model)
        if special is not None:
            return special
        given = body["input"]
        prompt = _text_of(given if isinstance(given, str) else given[-1].get("content"))
        digest = _digest(given)
        text = f"Response to: {prompt} [{digest[:8]}]"
        words = len(json.dumps(given).split())
        usage = {
            "input_tokens": words + 9,
            "input_tokens_details": {"cached_tokens": (words + 9) // 2},
            "output_tokens": len(text.split()) + 3,
            "output_tokens_details": {"reasoning_tokens": 3},
            "total_tokens": words + 9 + len(text.split()) + 3,
        }
        response_id = f"resp_{digest[:32]}"
        message_id = f"msg_{digest[32:56]}"
        created = int(time.time())

        def response_object(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
            return {
                "id": response_id, "object": "response", "created_at": created, "status": status,
                "model": _dated(model), "output": output, "usage": usage,
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
                "temperature": 1.0, "top_p": 1.0, "instructions": body.get("instructions"),
                "error": None, "incomplete_details": None, "metadata": {},
                "text": {"format": {"type": "text"}}, "store": True,
            }  # fmt: skip

        message = {
            "type": "message", "id": message_id, "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }  # fmt: skip
        if not body.get("stream"):
            return self._json(response_object("completed", [message], usage))
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": response_object("in_progress", [], None)}
        ]
        for piece in re.findall(r"\S+\s*", text):
            events.append({"type": "response.output_text.delta", "item_id": message_id,
                           "output_index": 0, "content_index": 0, "delta": piece,
                           "logprobs": []})  # fmt: skip
        events.append({"type": "response.output_text.done", "item_id": message_id,
                       "output_index": 0, "content_index": 0, "text": text,
                       "logprobs": []})  # fmt: skip
        events.append(
            {
                "type": "response.completed",
                "response": response_object("completed", [message], usage),
            }
        )
        response = web.StreamResponse(headers=self._sse_headers())
        await response.prepare(request)
        for number, event in enumerate(events):
            event["sequence_number"] = number
            data = json.dumps(event).encode()
            await response.write(b"event: " + event["type"].encode() + b"\ndata: " + data + b"\n\n")
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    # ----------------------------------------------------------------- embeddings

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await self._json_body(request, "model", "input")
        if isinstance(body, web.Response):
            return body
        given = body["input"]
        inputs = [given] if isinstance(given, str) else list(given)
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            return self._error(
                400, f"Invalid encoding_format {fmt!r}", "invalid_request_error",
                "encoding_format", None,
            )  # fmt: skip
        data = []
        for index, text in enumerate(inputs):
            seed = hashlib.sha256(str(text).encode()).digest()
            size = self.embedding_dimensions
            raw = struct.pack(f"<{size}f", *((seed[i % 32] - 127.5) / 128 for i in range(size)))
            vector: Any = (
                base64.b64encode(raw).decode()
                if fmt == "base64"
                else list(struct.unpack(f"<{size}f", raw))
            )
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(str(t).split()) for t in inputs)
        return self._json(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # ----------------------------------------------------------------- models

    async def _models(self, request: web.Request) -> web.Response:
        return self._json({"object": "list", "data": [_model(name) for name in MODELS]})

    async def _model(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        if name not in MODELS:
            return self._error(
                404, f"The model '{name}' does not exist or you do not have access to it.",
                "invalid_request_error", "model", "model_not_found",
            )  # fmt: skip
        return self._json(_model(name))

    # ----------------------------------------------------------------- audio and files

    async def _speech(self, request: web.Request) -> web.Response:
        body = await self._json_body(request, "model", "input", "voice")
        if isinstance(body, web.Response):
            return body
        audio = fake_mp3(body["input"], body["voice"])
        headers = self._headers("audio/mpeg")
        return web.Response(body=audio, headers=headers)

    async def _multipart(
        self, request: web.Request, *required: str
    ) -> dict[str, Any] | web.Response:
        """The form's fields: text values as str, file parts as (filename, bytes)."""
        if request.content_type != "multipart/form-data":
            return self._error(
                400, f"Invalid content type {request.content_type!r}: expected multipart/form-data",
                "invalid_request_error", None, None,
            )  # fmt: skip
        # The logging middleware has consumed the stream already: parse the bytes it read.
        head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + await request.read())
        if not message.is_multipart():
            return self._error(400, "Malformed multipart body", "invalid_request_error", None, None)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            payload = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            fields[str(name)] = (filename, payload) if filename is not None else payload.decode()
        for name in required:
            if name not in fields:
                return self._error(
                    400, f"Missing required parameter: '{name}'.",
                    "invalid_request_error", name, "missing_required_parameter",
                )  # fmt: skip
        if not isinstance(fields["file"], tuple):
            return self._error(
                400, "'file' must be a file upload", "invalid_request_error", "file", None
            )
        return fields

    async def _transcription(self, request: web.Request) -> web.Response:
        fields = await self._multipart(request, "file", "model")
        if isinstance(fields, web.Response):
            return fields
        _, data = fields["file"]
        digest = hashlib.sha256(data).hexdigest()
        return self._json(
            {
                "text": f"transcript {digest[:16]} ({len(data)} bytes, {fields['model']})",
                "usage": {"type": "duration", "seconds": max(1, len(data) // 1000)},
            }
        )

    async def _files(self, request: web.Request) -> web.Response:
        fields = await self._multipart(request, "file", "purpose")
        if isinstance(fields, web.Response):
            return fields
        filename, data = fields["file"]
        digest = hashlib.sha256(data).hexdigest()
        return self._json(
            {
                "id": f"file-{digest[:24]}",
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": fields["purpose"],
                "status": "processed",
                "expires_at": None,
                "status_details": None,
            }
        )


def fake_mp3(text: str, voice: str) -> bytes:
    """Deterministic bytes that start like an MP3 (ID3 tag, frame sync) and depend on the input."""
    out = bytearray(b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64")
    block = hashlib.sha256(f"{voice}:{text}".encode()).digest()
    while len(out) < SPEECH_SIZE:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:SPEECH_SIZE])


def _filler(words: int, digest: str) -> str:
    """`words` deterministic words (varying with the request) to lengthen an answer."""
    return "".join(f" {digest[i % 32 : i % 32 + 3 + i % 5]}" for i in range(words))


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": MODELS[name], "owned_by": "system"}


def _dated(model: str) -> str:
    return model if model in ("counter", "slow-stream") else f"{model}-2024-07-18"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _chat_usage(messages: list[Any], output: str) -> dict[str, Any]:
    prompt = sum(len(_text_of(m.get("content")).split()) + 4 for m in messages) + 3
    completion = len(output.split()) + 2
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": prompt // 2, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 2,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }

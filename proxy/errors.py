"""OpenAI-shaped error responses produced by the proxy itself.

Every error the proxy originates has the body `{"error": {"message", "type", "code", "param"}}`, so
SDKs raise their usual exception classes with a readable message.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from proxy.headers import PROXY_SOURCE_HEADER


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


def error_body(message: str, type_: str, code: str | None = None) -> bytes:
    return msgspec.json.encode(ErrorBody(ErrorDetail(message, type_, code)))


def error_response(
    status: int, message: str, type_: str, code: str | None = None, *, retry: bool | None = None
) -> web.Response:
    headers = {PROXY_SOURCE_HEADER: "proxy-error"}
    if retry is not None:
        # SDKs honour this over their status-based retry rules.
        headers["x-should-retry"] = "true" if retry else "false"
    return web.Response(
        status=status,
        body=error_body(message, type_, code),
        content_type="application/json",
        headers=headers,
    )

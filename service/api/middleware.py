"""Pure ASGI middleware (BaseHTTPMiddleware would cost a task per request).

- ``RequestContextMiddleware``: a request id on every response (``X-Request-ID``, the client's own
  if it sent a sane one), latency and status metrics per route template, one access log line, and
  a JSON 500 quoting the request id for any unhandled error instead of a bare traceback page.
- ``BodySizeLimitMiddleware``: refuses a body over the limit with a JSON 413 without reading it:
  at once from ``Content-Length``, or as soon as a chunked body grows past the limit. (FastAPI's
  own ``max_body_size`` answers a too-large ``Content-Length`` in plain text, outside our error
  contract, hence this.)
- ``RequestTargetMiddleware``: refuses with a JSON 422 a path or query string that is not UTF-8
  once percent-decoded, which the server would otherwise read with U+FFFD in place of the bytes.
- ``JSONCORSMiddleware``: Starlette's CORS middleware, answering a refused preflight in the JSON
  error shape instead of text/plain.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_body
from service.ops import metrics

logger = logging.getLogger("service.access")

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
TOO_LARGE = "The request body is larger than CLV_MAX_BODY_BYTES allows; send smaller batches."


async def send_json_error(
    send: Send, status: int, code: str, message: str, request_id: str | None
) -> None:
    body = json.dumps(error_body(code, message, request_id)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = _header(scope, b"x-request-id")
        request_id = (
            supplied if supplied and _CLIENT_REQUEST_ID.match(supplied) else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            if not response_started:
                await send_json_error(
                    send_with_id,
                    500,
                    "internal_error",
                    "Internal error; quote the request id when reporting it.",
                    request_id,
                )
        finally:
            self._observe(scope, status, time.perf_counter() - started, request_id)

    @staticmethod
    def _observe(scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        metrics.record_request(scope["method"], template, status, seconds)
        logger.info(
            "%s %s %d %.1fms",
            scope["method"],
            scope["path"],
            status,
            seconds * 1000,
            extra={
                "request_id": request_id,
                "route": template,
                "status": status,
                "latency_ms": round(seconds * 1000, 2),
                "api_key": scope.get("state", {}).get("api_key_name"),
            },
        )


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            request_id = scope.get("state", {}).get("request_id")
            await send_json_error(send, 413, "payload_too_large", TOO_LARGE, request_id)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # An HTTPException is what FastAPI lets through from body reading (anything
                    # else becomes a 400); the app's handler renders it as the JSON 413.
                    raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, counting_receive, send)


def _not_utf8(raw: bytes, what: str) -> str | None:
    """Why ``raw`` (a percent-encoded path or query string) is not UTF-8 once decoded, or None."""
    decoded = unquote_to_bytes(raw)
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError as error:
        return (
            f"Invalid request: the {what} is not valid UTF-8 once percent-decoded (byte "
            f"0x{decoded[error.start]:02X} at offset {error.start} of the decoded {what}): "
            "percent-encode the UTF-8 bytes of each character, e.g. é as %C3%A9"
        )
    return None


class RequestTargetMiddleware:
    """``GET /v1/customers/%FF`` was read as the customer '\ufffd' (uvicorn and Starlette decode
    percent-escapes with ``errors="replace"``) and answered 404 naming that customer: the URL
    had lost the id the client meant. A path or query string that is not UTF-8 once
    percent-decoded is refused instead, 422, saying which byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode()
            problem = _not_utf8(raw_path, "path") or _not_utf8(
                scope.get("query_string", b""), "query string"
            )
            if problem is not None:
                request_id = scope.get("state", {}).get("request_id")
                await send_json_error(send, 422, "validation_error", problem, request_id)
                return
        await self.app(scope, receive, send)


class JSONCORSMiddleware(CORSMiddleware):
    """Starlette refuses a preflight from an origin, or for a method or header, that is not
    allowed with a text/plain 400 ("Disallowed CORS origin"); this says the same in the API's
    JSON error shape. The middleware is outermost (see ``create_app``), so the request id is
    made here."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        request_id = uuid.uuid4().hex
        refused = bytes(response.body).decode()
        message = f"{refused}: not allowed by CLV_CORS_ORIGINS and the API's methods and headers"
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-type", "content-length")
        }
        return JSONResponse(
            error_body("cors_refused", message, request_id),
            status_code=response.status_code,
            headers={**headers, "X-Request-ID": request_id},
        )

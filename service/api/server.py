"""uvicorn's own refusals in the API's JSON error shape.

Some requests never reach the app: uvicorn answers one its HTTP parser cannot read with a
text/plain 400 "Invalid HTTP request received.". With httptools (uvicorn's choice when it is
installed, as it is here) that is a malformed request line or header, or a URL over 65,535
bytes; with h11, also a request line and headers over ``h11_max_incomplete_event_size`` (16 KiB by
default). ``HTTP_PROTOCOL`` keeps uvicorn's parsing and writes that answer as JSON instead, with a
request id: 414 for a URL too long, 431 for a head too large, else 400 with the parser's reason.
``clv serve`` and the tests' live server use it.

Outside any JSON: a client that closes the connection, or never completes its request head, gets
no answer at all (uvicorn closes it after ``timeout_keep_alive``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sys
import uuid
from http import HTTPStatus

from uvicorn.protocols.http.h11_impl import H11Protocol

from service.errors import error_body

logger = logging.getLogger("service.access")

MAX_URL_BYTES = 65_535
"""httptools refuses a longer URL (path and query together)."""
H11_HEAD_BYTES = 16 * 1024
"""h11's default ``max_incomplete_event_size``: the request line and headers, unless
``h11_max_incomplete_event_size`` says otherwise."""
_CODES = {400: "bad_request", 414: "url_too_long", 431: "headers_too_large"}


def _refusal(head_limit: int | None) -> tuple[int, str]:
    """The status and message for the parse error being handled: uvicorn calls
    ``send_400_response`` inside its ``except``, so the error is the one in flight."""
    error = sys.exc_info()[1]
    # httptools raises a callback error whose context is what the callback raised.
    cause = error.__context__ if error is not None and error.__context__ else error
    reason = str(cause or error or "unreadable")[:200].rstrip(".")
    if "url is too long" in reason:
        return 414, f"The URL is too long: at most {MAX_URL_BYTES:,} bytes (path and query)."
    if getattr(error, "error_status_hint", 400) == 431:
        limit = f"at most {head_limit:,} bytes" if head_limit else "over the server's limit"
        return 431, f"The request line and headers are too large: {limit}."
    return 400, f"The request is not valid HTTP/1.1: {reason}."


def _json_refusal(status: int, message: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    request_id = uuid.uuid4().hex
    # Not the message: the parser's reason can quote a header line, the API key's included.
    logger.warning(
        "refused by the HTTP parser: %d %s",
        status,
        _CODES[status],
        extra={"request_id": request_id, "status": status},
    )
    body = json.dumps(error_body(_CODES[status], message, request_id)).encode()
    headers = [
        *default_headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        (b"connection", b"close"),
    ]
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    head += [name + b": " + value for name, value in headers]
    return b"\r\n".join([*head, b"", body])


class JSONErrorsH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        limit = self.config.h11_max_incomplete_event_size or H11_HEAD_BYTES
        status, message = _refusal(limit)
        self.transport.write(_json_refusal(status, message, self.server_state.default_headers))
        self.transport.close()


HTTP_PROTOCOL: type[asyncio.Protocol] = JSONErrorsH11Protocol
"""What ``uvicorn.run(http=...)`` takes: httptools where installed, as uvicorn's "auto" picks."""

if importlib.util.find_spec("httptools") is not None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class JSONErrorsHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            status, message = _refusal(None)
            self.transport.write(_json_refusal(status, message, self.server_state.default_headers))
            self.transport.close()

    HTTP_PROTOCOL = JSONErrorsHttpToolsProtocol

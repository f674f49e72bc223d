"""Routes that read their JSON bodies one way, and say exactly what is wrong with one they refuse.

Every domain router is built by ``domain_router``; before FastAPI validates a route's body, the
route checks how it was sent and parses it with ``service.exact_json`` (amounts stay exact):

- ``Content-Encoding`` other than ``identity``: 415, "compressed bodies are not accepted";
- a ``Content-Type`` other than ``application/json`` (or ``application/*+json``), or a charset
  other than UTF-8: 415, naming the type expected;
- no ``Content-Type`` at all: read as JSON. The API speaks nothing else, and a client that forgets
  the header (``requests.post(url, data=json.dumps(...))``) means JSON. FastAPI refuses such a
  body by default against cross-site requests that a browser sends without a preflight; none of
  those can carry the API key (a header), so every one is refused 401 anyway;
- a body that is not JSON: 422 saying why (invalid UTF-8 at which byte, NaN or Infinity, nesting
  deeper than ``MAX_DEPTH``, a syntax error at which line and column).

An empty body is left to FastAPI, which reports the missing body as a field error.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from service.api.responses import error_responses
from service.errors import InvalidRequestError, UnsupportedMediaTypeError
from service.exact_json import InvalidJSONError, loads_exact

JSON_MEDIA_TYPE = "application/json"


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_exact(await self.body())
        return self._json


def _refuse_unsupported_encoding(request: Request) -> None:
    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {coding!r}: compressed bodies are not accepted; send the "
            f"{JSON_MEDIA_TYPE} body uncompressed",
            headers={"Accept-Encoding": "identity"},
        )


def _refuse_unsupported_type(request: Request) -> None:
    declared = request.headers.get("content-type")
    if declared is None:
        return
    header = email.message.Message()
    header["content-type"] = declared
    subtype = header.get_content_subtype()
    is_json = header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
    if not is_json:
        raise UnsupportedMediaTypeError(
            f"Content-Type {declared!r} is not accepted: send the body as {JSON_MEDIA_TYPE}"
        )
    charset = str(header.get_param("charset", "utf-8")).lower()
    if charset not in ("utf-8", "utf8", "us-ascii", "ascii"):  # ASCII is UTF-8's subset
        raise UnsupportedMediaTypeError(
            f"charset {charset!r} is not accepted: {JSON_MEDIA_TYPE} is UTF-8"
        )


async def read_json_body(request: ExactJSONRequest) -> None:
    """Refuse a body sent in a way the API does not read, or that is not JSON; else parse it
    once (FastAPI then takes the parsed value)."""
    try:
        if not await request.body():
            return
    except ClientDisconnect:  # as FastAPI: the answer goes nowhere, but is no 500 in the log
        raise HTTPException(400, "The client disconnected before sending the whole body") from None
    _refuse_unsupported_encoding(request)
    _refuse_unsupported_type(request)
    try:
        await request.json()
    except InvalidJSONError as error:
        assumed = "" if "content-type" in request.headers else " (sent without a Content-Type)"
        message = f"The body is not valid JSON{assumed}: {error.msg}"
        details = [{"loc": ["body"], "msg": error.msg, "type": "json_invalid"}]
        raise InvalidRequestError(message, details=details) from None


class ExactJSONRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.body_field is not None and 415 not in self.responses:
            # Built again with the 415 of ``read_json_body`` documented: FastAPI derives the
            # response models from ``responses`` while it builds a route, and only then knows
            # whether the route takes a body.
            kwargs["responses"] = {**self.responses, **error_responses(415)}
            super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def exact_json_handler(request: Request) -> Response:
            exact = ExactJSONRequest(request.scope, request.receive)
            if takes_body:
                await read_json_body(exact)
            return await handler(exact)

        return exact_json_handler


def domain_router(**kwargs: Any) -> APIRouter:
    """Every domain router is built here, so every route reads JSON the same exact way; FastAPI's
    own Content-Type rule is off (``read_json_body`` has the API's)."""
    return APIRouter(route_class=ExactJSONRoute, strict_content_type=False, **kwargs)

"""Typed service errors: each carries its HTTP status and a stable machine-readable ``code``.

Domain code raises these; ``install_exception_handlers`` turns them (and framework errors) into
one JSON shape, ``{"code", "message", "request_id", "details"?}``, so clients handle every failure
alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service.schemas import error_message

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    status_code: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class NotFoundError(ServiceError):
    status_code = 404
    code = "not_found"


class InvalidRequestError(ServiceError):
    status_code = 422
    code = "validation_error"


def refuse_future(as_of: datetime | None) -> None:
    """An ``as_of`` later than now is a mistake (nothing is known about it yet): 422."""
    if as_of is not None and as_of > datetime.now(UTC):
        raise InvalidRequestError(f"as_of {as_of.isoformat()} is in the future")


class PayloadTooLargeError(ServiceError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class AuthenticationError(ServiceError):
    status_code = 401
    code = "unauthenticated"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class PermissionDeniedError(ServiceError):
    status_code = 403
    code = "forbidden"


class ConflictError(ServiceError):
    status_code = 409
    code = "conflict"


class DatabaseUnavailableError(ServiceError):
    status_code = 503
    code = "database_unavailable"

    def __init__(
        self,
        message: str = "The database is unreachable; retry after Retry-After seconds. API keys, "
        "events and scores live in it, so nothing that needs them (every /v1 call, scores "
        "included, though the model stays loaded) can be answered until it is back.",
    ) -> None:
        super().__init__(message, headers={"Retry-After": "5"})


class SchemaNotReadyError(Exception):
    """The database is not migrated to the code's schema; the message names the command to run."""


def error_body(
    code: str, message: str, request_id: str | None, details: Any = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        body["details"] = details
    return body


def _respond(
    request: Request,
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    return JSONResponse(
        error_body(code, message, request_id, details), status_code=status_code, headers=headers
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return _respond(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)


_MESSAGE_ERRORS = 5
"""Errors the message names (``details`` has them all): enough for each member of a union such as
an attribute value (bool, int, float or text), where the first member's error alone ("should be a
valid boolean") would not say why a text was refused."""


def _describe(detail: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in detail["loc"])
    return f"{where}: {detail['msg']}" if where else str(detail["msg"])


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err["loc"]), "msg": error_message(err), "type": err["type"]}
        for err in exc.errors()
    ]
    message = "; ".join(_describe(detail) for detail in details[:_MESSAGE_ERRORS])
    if len(details) > _MESSAGE_ERRORS:
        message += f"; {len(details) - _MESSAGE_ERRORS} more in details"
    if not details:
        message = "invalid request"
    elif details[0]["loc"]:
        message = f"Invalid request: {message}"
    return _respond(request, 422, InvalidRequestError.code, message, details)


_HTTP_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at the request's path. Starlette's 405 names only the
    methods of the first route whose path matched (``Allow: PATCH`` for a customer, which also
    has GET, PUT and DELETE); RFC 9110 asks for all of the resource's methods."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return _respond(request, exc.status_code, code, str(exc.detail), headers=headers)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """OperationalError is the DBAPI's "not the statement's fault" class: connection refused or
    dropped, server shutting down, SQLite busy; InterfaceError, a connection found closed. The
    client can retry, so it is 503, not 500. PoolTimeoutError: every pooled connection is busy
    (held by requests waiting on a hung database) past ``CLV_DB_POOL_TIMEOUT_SECONDS``."""
    assert isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError)
    # The driver's first line only: the full text quotes the SQL and its parameters (event data).
    orig = getattr(exc, "orig", None)
    reason = str(orig).strip().splitlines()[0] if orig else type(exc).__name__
    logger.warning("database unavailable: %s", reason)
    error = DatabaseUnavailableError()
    return _respond(request, error.status_code, error.code, error.message, headers=error.headers)


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)

"""Error responses for the OpenAPI document, so clients see the error shape of each status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorRead(BaseModel):
    code: str = Field(description="Stable machine-readable error code, e.g. validation_error.")
    message: str = Field(description="What went wrong, for a person.")
    request_id: str | None = Field(description="The request id (also in X-Request-ID).")
    details: Any = Field(default=None, description="Structured detail, e.g. field errors.")


_DESCRIPTIONS = {
    401: "Missing, unknown or revoked API key.",
    403: "The API key lacks the scope this operation needs.",
    404: "Not found.",
    409: "Conflicts with the current state.",
    413: "The body or the batch is too large.",
    415: "The body is not sent as application/json (another Content-Type, a charset other "
    "than UTF-8, or a Content-Encoding such as gzip).",
    422: "The request is malformed.",
    429: "The API key sent more requests than CLV_RATE_LIMIT_PER_MINUTE allows; retry after "
    "Retry-After seconds.",
    503: "The database is unreachable or, for POST /v1/events, the service is too far behind "
    "to take more events (backpressure), or, for scores, no model can be loaded to serve "
    "(model_unavailable); retry after Retry-After seconds.",
}
_EVERY_AUTHENTICATED = (429, 503)
"""What any call with a key can meet: its rate limit, and the database (which holds the keys)
being away."""


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented errors of an operation; one that takes a key (401) also gets 429 and 503."""
    every = _EVERY_AUTHENTICATED if 401 in statuses else ()
    return {
        status: {"model": ErrorRead, "description": _DESCRIPTIONS[status]}
        for status in sorted({*statuses, *every})
    }

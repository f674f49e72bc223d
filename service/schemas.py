"""Field types shared by the public schemas of several domains.

Constraints are expressed as pydantic-core constraints (lengths, regular expressions) rather
than Python validators: validation of a 1,000-event batch then stays in Rust (bench/ingest.py).
The patterns use only ``\\x``/``\\u`` escapes, which Rust, Python and JavaScript (Swagger UI,
schema-based fuzzers) all read the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from service.db.types import MONEY_SCALE

_INVISIBLE = r"\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
PRINTABLE = rf"^[^{_INVISIBLE}]+$"
_SEGMENT = rf"[^{_INVISIBLE}/]"
_NOT_DOT = rf"[^{_INVISIBLE}/.]"
PATH_SEGMENT = rf"^(?:{_NOT_DOT}|\.{_NOT_DOT}|\.\.{_SEGMENT}){_SEGMENT}*$"
"""Printable, no '/', and not '.' or '..': clients resolve those as dot segments (RFC 3986), so
a customer with such an id could never be read, changed or erased by its URL. Written without
look-arounds, which the Rust and JavaScript engines do not share."""
NO_NUL = r"^[^\x00]*$"
"""Free text may hold any character but NUL, which PostgreSQL cannot store in text or JSON."""

_PATTERN_MESSAGES = {
    PRINTABLE: "must contain only printable characters (no control or invisible characters)",
    PATH_SEGMENT: "must contain only printable characters and no '/' "
    "(it could not be used in a URL path), and must not be '.' or '..' (for the same reason)",
    NO_NUL: "must not contain the NUL character (\\x00)",
}

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=PRINTABLE)]
"""Client-chosen ids (event, sku): 1-128 printable characters, kept verbatim."""

CustomerId = Annotated[str, Field(min_length=1, max_length=128, pattern=PATH_SEGMENT)]
"""A customer id also appears in URL paths (``/v1/customers/{customer_id}``): one segment."""

MAX_AMOUNT = Decimal("1000000000")
"""The largest amount or unit price one event may carry (a billion in the shop currency): 10**13
ten-thousandths, so a day's, a customer's or the shop's sums need about a million such events
to pass the 64-bit counters, and those sums are checked (an event that would pass them becomes
a dead letter, ``service.events.worker``), never wrapped around."""

MoneyAmount = Annotated[
    Decimal,
    Field(ge=0, le=MAX_AMOUNT, max_digits=18, decimal_places=MONEY_SCALE, allow_inf_nan=False),
]
"""Exact, non-negative money with up to 4 decimal places, at most ``MAX_AMOUNT``."""

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""Strict: a string is never read as a number, so a numeric string too long for ``ShortText``
is refused rather than silently stored as a float (strict still takes the parser's Decimals)."""
ShortText = Annotated[str, Field(max_length=1024, pattern=NO_NUL)]
ScalarValue = StrictBool | StrictInt | FiniteFloat | ShortText | None
"""A JSON scalar of bounded size: the value type of properties and customer attributes."""

Key = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""Names of properties and attributes: short, no spaces, safe in logs and column names."""
ScalarMap = Annotated[
    dict[Key, ScalarValue], Field(json_schema_extra={"additionalProperties": False})
]
"""Names to scalars (event properties, customer attributes). The key pattern becomes the schema's
``patternProperties``; ``additionalProperties: false`` says what the server does with any other
name (refuses it), which the schema would otherwise allow with any value."""

VERSION_ID = r"^[A-Za-z0-9._-]+$"
VersionId = Annotated[str, Field(max_length=64, pattern=VERSION_ID)]
"""A model version's id (also a folder name and a URL path segment)."""


def _has_utc_equivalent(moment: datetime) -> datetime:
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is out of the supported range") from None
    return moment


_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")


def _not_a_number(value: Any) -> Any:
    """pydantic reads a number, or a text that is one (``before=0.5``), as a Unix time: a client
    that sends one has most likely mixed up parameters, so it is refused rather than guessed."""
    is_number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    if is_number or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise PydanticCustomError(
            "datetime_not_number",
            "Input should be an ISO 8601 date-time with a time zone, e.g. "
            "2026-01-15T12:00:00Z, not a number",
        )
    return value


UtcDatetime = Annotated[
    AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_has_utc_equivalent)
]
"""An aware datetime, sent as ISO 8601 text, that exists in UTC: 0001-01-01T00:00:00+01:00 does
not, and would fail where it is compared or stored (a 500) rather than here (a 422). Used for
the moments a request asks about (``as_of``, ``before``); events' own times stay all-Rust."""


def error_message(error: ErrorDetails) -> str:
    """pydantic's message, except where it would quote one of our patterns at a person."""
    if error["type"] == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        if isinstance(pattern, str) and pattern in _PATTERN_MESSAGES:
            return _PATTERN_MESSAGES[pattern]
    return error["msg"]


def describe(error: ValidationError) -> str:
    """One line a person can act on: ``field: problem; other.field: problem``."""
    parts = []
    for detail in error.errors(include_url=False):
        where = ".".join(str(part) for part in detail["loc"])
        message = error_message(detail)
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)

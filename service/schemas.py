"""Field types shared by the public schemas of several domains.

Constraints are expressed as pydantic-core constraints (lengths, regular expressions) rather
than Python validators: validation of a 1,000-event batch then stays in Rust (bench/ingest.py).
The patterns use only ``\\x``/``\\u`` escapes, which Rust, Python and JavaScript (Swagger UI,
schema-based fuzzers) all read the same way.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, StrictBool, StrictInt
from pydantic_core import ErrorDetails

from service.db.types import MONEY_SCALE

_INVISIBLE = r"\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
PRINTABLE = rf"^[^{_INVISIBLE}]+$"
PRINTABLE_NO_SLASH = rf"^[^{_INVISIBLE}/]+$"

_PATTERN_MESSAGES = {
    PRINTABLE: "must contain only printable characters (no control or invisible characters)",
    PRINTABLE_NO_SLASH: "must contain only printable characters and no '/' "
    "(it could not be used in a URL path)",
}

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=PRINTABLE)]
"""Client-chosen ids (event, sku): 1-128 printable characters, kept verbatim."""

CustomerId = Annotated[str, Field(min_length=1, max_length=128, pattern=PRINTABLE_NO_SLASH)]
"""A customer id also appears in URL paths (``/v1/customers/{customer_id}``), so no ``/``."""

MoneyAmount = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=MONEY_SCALE, allow_inf_nan=False),
]
"""Exact, non-negative money with up to 4 decimal places."""

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ShortText = Annotated[str, Field(max_length=1024)]
ScalarValue = StrictBool | StrictInt | FiniteFloat | ShortText | None
"""A JSON scalar of bounded size: the value type of properties and customer attributes."""

Key = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""Names of properties and attributes: short, no spaces, safe in logs and column names."""


def error_message(error: ErrorDetails) -> str:
    """pydantic's message, except where it would quote one of our patterns at a person."""
    if error["type"] == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        if isinstance(pattern, str) and pattern in _PATTERN_MESSAGES:
            return _PATTERN_MESSAGES[pattern]
    return error["msg"]

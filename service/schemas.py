"""Field types shared by the public schemas of several domains."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StrictInt
from pydantic_core import PydanticCustomError

from service.db.types import MONEY_SCALE


def _printable(value: str) -> str:
    if not value.isprintable():
        raise PydanticCustomError(
            "not_printable", "must contain only printable characters (no control characters)"
        )
    return value


Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128),
    AfterValidator(_printable),
]
"""Client-chosen ids (event, customer, sku): 1-128 printable characters, kept verbatim."""


def _addressable(value: str) -> str:
    if "/" in value:
        raise PydanticCustomError(
            "unaddressable_id", "must not contain '/', or it could not be used in a URL path"
        )
    return value


CustomerId = Annotated[Identifier, AfterValidator(_addressable)]
"""A customer id also appears in URL paths (``/v1/customers/{customer_id}``), so no ``/``."""

MoneyAmount = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=MONEY_SCALE, allow_inf_nan=False),
]
"""Exact, non-negative money with up to 4 decimal places; send a string for >15 digits."""

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ShortText = Annotated[str, Field(max_length=1024)]
ScalarValue = StrictBool | StrictInt | FiniteFloat | ShortText | None
"""A JSON scalar of bounded size: the value type of properties and customer attributes."""

Key = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""Names of properties and attributes: short, no spaces, safe in logs and column names."""

"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no time zones and no exact decimals, and both matter here: event times are compared
across time zones, and money must not pick up float rounding. These types keep Python values
identical on both engines (aware UTC datetimes, ``Decimal``) and pick the native type where one
exists (``timestamptz``, ``numeric``, ``jsonb`` on PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Numeric
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

MONEY_SCALE = 4
"""Decimal places kept for money; finer amounts are refused at validation, never rounded."""

_MONEY_FACTOR = Decimal(10) ** MONEY_SCALE

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive values are a bug and are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """Exact money: ``numeric(18, 4)`` on PostgreSQL, integer ten-thousandths on SQLite.

    SQLite would store a ``Decimal`` as a float; a scaled integer keeps it exact and keeps ``SUM``
    exact as well. Values carry at most ``MONEY_SCALE`` decimal places (enforced by the schemas).
    """

    impl = Numeric(18, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        scaled = value * _MONEY_FACTOR
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {MONEY_SCALE} decimal places")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        amount = Decimal(int(value)) / _MONEY_FACTOR if dialect.name == "sqlite" else Decimal(value)
        return canonical_decimal(amount)


def canonical_decimal(value: Decimal) -> Decimal:
    """``19.9900`` -> ``19.99`` and ``100.0000`` -> ``100``: the same text on every engine."""
    value = value.normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value

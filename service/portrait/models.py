"""Activity aggregates, updated by every ingested batch (counters only ever add up)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import UTCDateTime

COUNTER = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit counters (SQLite's INTEGER is 64-bit already). Sums are checked against their
largest value when added (``service.portrait.repository``), never wrapped."""


class CustomerDay(Base):
    """One customer's events on one UTC day, counted. Money in ten-thousandths (``*_units``)."""

    __tablename__ = "customer_days"

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(COUNTER)
    spend_units: Mapped[int] = mapped_column(BigInteger)
    units: Mapped[int] = mapped_column(COUNTER)
    refunds: Mapped[int] = mapped_column(COUNTER)
    refunded_units: Mapped[int] = mapped_column(BigInteger)
    views: Mapped[int] = mapped_column(COUNTER)
    carts: Mapped[int] = mapped_column(COUNTER)
    removes: Mapped[int] = mapped_column(COUNTER)
    checkouts: Mapped[int] = mapped_column(COUNTER)
    sessions: Mapped[int] = mapped_column(COUNTER)
    events: Mapped[int] = mapped_column(COUNTER)


class CustomerProduct(Base):
    """Units of a product a customer bought, and how often they viewed or carted it."""

    __tablename__ = "customer_products"

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    sku: Mapped[str] = mapped_column(String(128), primary_key=True)
    bought: Mapped[int] = mapped_column(COUNTER)
    viewed: Mapped[int] = mapped_column(COUNTER)


class Product(Base):
    """Products as the events name them (the latest text wins), plus an optional description."""

    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(256))
    category: Mapped[str | None] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


PORTRAIT_TABLES = (CustomerDay.__tablename__, CustomerProduct.__tablename__)
"""The aggregates that imports and rebuilds fill in bulk (and then refresh the statistics of)."""

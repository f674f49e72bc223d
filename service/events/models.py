"""The event log: every order, refund, view and cart action a storefront sends, stored once."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import JSONType, Money, UTCDateTime
from service.events.types import EventType


class Event(Base):
    """One stored event. On PostgreSQL the table is partitioned by month of ``occurred_at``
    (``service.events.partitions``): its primary key there is (seq, occurred_at, customer_id),
    since a partitioned table's keys must include the partition key (and a sharded one's the
    customer, docs/operations.md), and the uniqueness of event_id is kept by ``event_ids``.
    SQLite has one table, keyed by seq."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_customer_id_occurred_at", "customer_id", "occurred_at"),
        CheckConstraint(
            "type IN (" + ", ".join(f"'{t.value}'" for t in EventType) + ")", name="type"
        ),
    )

    # A surrogate, increasing key: later work (feature updates, exports) can read "everything
    # after sequence N" without scanning by time. SQLite only auto-increments INTEGER keys.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    amount: Mapped[Decimal | None] = mapped_column(Money())
    currency: Mapped[str | None] = mapped_column(String(3))
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    source: Mapped[str | None] = mapped_column(String(64))
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventId(Base):
    """The id of every event stored, and its customer: the arbiter of "stored once". Ingestion
    inserts here first (``ON CONFLICT DO NOTHING``) and stores only the events whose id was new.
    A table of its own because a partitioned ``events`` cannot enforce a unique event_id (it
    would have to include occurred_at), and so that dropping old partitions (retention) does not
    make their events new again. The customer is kept for erasure, which deletes by it."""

    __tablename__ = "event_ids"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128), index=True)


class PendingEvent(Base):
    """A stored event whose effects (the portrait aggregates) are not applied yet.

    Written in the transaction that stores the event and deleted in the transaction that applies
    it, so each event is applied exactly once, even when workers crash or run side by side.
    """

    __tablename__ = "pending_events"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    # The event's time, so a worker reading its claimed batch reads only the event partitions
    # of the months it spans (by seq alone, every partition would be searched).
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeadLetter(Base):
    """A stored event the worker could not apply (applying it failed while the events beside it
    applied), set aside with the error so it cannot stall the queue. It stays in ``events`` but
    counts nowhere (portrait, training, scores) until an operator retries or drops it
    (``clv events dead-letters``, ``/v1/dead-letters``)."""

    __tablename__ = "dead_letters"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime())

"""Queues in the database, so work survives restarts and several workers can share it."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base


class PendingEvent(Base):
    """A stored event whose effects (the portrait aggregates) are not applied yet.

    Written in the transaction that stores the event and deleted in the transaction that applies
    it, so each event is applied exactly once, even when workers crash or run side by side.
    """

    __tablename__ = "pending_events"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )

"""Stored scores: the current one per customer, every change, the customers waiting for a fresh
one or for its attributions, and the decile boundaries of the latest scoring of everyone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, LargeBinary, String
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import UTCDateTime

_JSON = JSON().with_variant(postgresql.JSONB(), "postgresql")


class _ScoreValues:
    """The numbers of a score, shared by the current row and the history."""

    model_version: Mapped[str] = mapped_column(String(64))
    horizon_days: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    trigger: Mapped[str] = mapped_column(String(16))
    clv: Mapped[float] = mapped_column(Float)
    p10: Mapped[float] = mapped_column(Float)
    p50: Mapped[float] = mapped_column(Float)
    p90: Mapped[float] = mapped_column(Float)
    purchase_probability: Mapped[float] = mapped_column(Float)
    probability_alive: Mapped[float] = mapped_column(Float)
    expected_orders: Mapped[float] = mapped_column(Float)
    expected_order_value: Mapped[float] = mapped_column(Float)
    btyd_clv: Mapped[float] = mapped_column(Float)
    cold_start: Mapped[bool] = mapped_column(Boolean)
    # Null in scores stored before they existed; average_days_between_orders also below two
    # purchase days (``service.scoring.engine.HISTORY_COLUMNS``).
    historic_revenue: Mapped[float | None] = mapped_column(Float)
    average_days_between_orders: Mapped[float | None] = mapped_column(Float)
    # The RFM segment (``service.ml.segments``) as of as_of, for audiences to filter on; null in
    # scores stored before it existed.
    segment: Mapped[str | None] = mapped_column(String(16))


class Score(_ScoreValues, Base):
    """A customer's latest score at the champion's horizon, with its attributions (float32:
    base value, then one contribution per tabular feature and event channel, then their values;
    decoded by ``service.scoring.explanations``)."""

    __tablename__ = "scores"
    __table_args__ = (
        Index("ix_scores_model_version", "model_version", "horizon_days"),
        Index("ix_scores_as_of", "as_of"),
    )

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    explanation: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Anomalies in the customer's recent behaviour when the score was computed
    # (``service.risk``): [{"flag", "reason", ...}]; null for scores stored before flags existed.
    risk_flags: Mapped[list[dict[str, Any]] | None] = mapped_column(_JSON)


class ScoreHistory(_ScoreValues, Base):
    """Every stored score, append-only (without attributions: those are kept for the latest).
    On PostgreSQL its primary key is (id, customer_id), so a sharded database can distribute it
    by customer (docs/operations.md); SQLite numbers rows only through a lone integer key."""

    __tablename__ = "score_history"
    __table_args__ = (Index("ix_score_history_customer", "customer_id", "computed_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128))


class StaleScore(Base):
    """A customer whose stored score is older than their events, their attributes, the champion
    or ``CLV_SCORE_MAX_AGE_HOURS``: a worker rescores them. Written in the transaction that
    applies the events (or attributes), so none is forgotten; a worker leases rows while it
    computes and deletes them only if no newer reason came meanwhile."""

    __tablename__ = "stale_scores"

    __table_args__ = (Index("ix_stale_scores_since", "since", "customer_id"),)

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime())  # the latest reason's time
    trigger: Mapped[str] = mapped_column(String(16))  # events, attributes, model, age
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())  # being rescored


class UnexplainedScore(Base):
    """A stored score whose attributions are still to be computed. Scores are stored first and
    explained right after, at a lower priority (a worker explains a customer only when nobody
    waits for a fresh score), so a slow explanation never keeps a stale score served. The row
    names the score by its ``computed_at``: attributions computed for a score that has since been
    replaced are not stored."""

    __tablename__ = "unexplained_scores"

    __table_args__ = (Index("ix_unexplained_scores_computed_at", "computed_at", "customer_id"),)

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())  # of the score to explain
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())  # being explained


class ScoreDeciles(Base):
    """Boundaries of the value tiers: the clv deciles of the latest scoring of everyone with a
    model version at a horizon."""

    __tablename__ = "score_deciles"

    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    horizon_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    boundaries: Mapped[list[float]] = mapped_column(_JSON)
    customers: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())

"""A saved audience (its filters, never its members) and the indexes its queries need.

Membership is recomputed from the champion's stored scores on every read, so it follows every
rescoring and ingested batch. The indexes below live on tables other domains own (``scores``,
``customer_profiles``) but exist for audience queries only, so they are declared here, beside
the queries that use them (bench/audiences.py: 1,000,000 scored customers on PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column

from service.customers.models import CustomerProfile
from service.db.base import Base
from service.db.types import JSONType, UTCDateTime
from service.scoring.models import Score

_SCORES: Table = Score.__table__  # type: ignore[assignment]
_PROFILES: Table = CustomerProfile.__table__  # type: ignore[assignment]


class Audience(Base):
    """Filters (``AudienceFilters`` as JSON) and the thresholds of ``audience.count_crossed``:
    ``last_count`` is the count when last checked (at creation, then by the workers' checks),
    the side of each threshold the audience was on."""

    __tablename__ = "audiences"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    name: Mapped[str] = mapped_column(String(128), unique=True)
    filters: Mapped[dict[str, Any]] = mapped_column(JSONType)
    notify_above: Mapped[int | None] = mapped_column(BigInteger)
    notify_below: Mapped[int | None] = mapped_column(BigInteger)
    last_count: Mapped[int | None] = mapped_column(BigInteger)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


FILTERED = ("clv", "purchase_probability", "as_of", "segment", "cold_start", "customer_id")
COVERING = {key: [name for name in FILTERED if name != key] for key in FILTERED}
"""Every audience query reads the champion's rows (model_version, horizon_days) and sums clv.
Each index below leads with one filtered column and includes the others (as_of: for the
next-order window; customer_id: for joins and pages), so a count, its revenue and the ids of a
page of members are index-only scans on PostgreSQL whatever filters are combined, never a read
of the 1.2 KB rows (bench/audiences.py)."""


def _leading(suffix: str, column: str) -> Index:
    """An index on the champion's rows led by ``column``, the other filtered columns included."""
    return Index(
        f"ix_scores_audience_{suffix}",
        _SCORES.c.model_version,
        _SCORES.c.horizon_days,
        _SCORES.c[column],
        postgresql_include=COVERING[column],
    )


SCORES_BY_CLV = _leading("clv", "clv")
"""Value tiers and clv ranges (a tier is a clv range between two deciles)."""
SCORES_BY_PROBABILITY = _leading("probability", "purchase_probability")
"""Churn bands, purchase probability ranges and next-order windows (all ranges of it)."""
SCORES_BY_SEGMENT = _leading("segment", "segment")
"""RFM segments."""
NOTHING_ON_SQLITE = text("0")
"""SQLite cannot use a GIN index: there the two below are empty partial indexes, so both
engines have the same schema (the migrations are checked against these models) at no cost."""
SCORES_BY_FLAGS = Index(
    "ix_scores_audience_flags",
    _SCORES.c.risk_flags,
    postgresql_using="gin",
    postgresql_ops={"risk_flags": "jsonb_path_ops"},
    sqlite_where=NOTHING_ON_SQLITE,
)
"""Risk flags: ``risk_flags @> '[{"flag": "spend_spike"}]'``."""
PROFILES_BY_VALUE = Index(
    "ix_customer_profiles_audience",
    _PROFILES.c.attributes,
    postgresql_using="gin",
    postgresql_ops={"attributes": "jsonb_path_ops"},
    sqlite_where=NOTHING_ON_SQLITE,
)
"""Profile attributes: ``attributes @> '{"region": "north"}'``."""

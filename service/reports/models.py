"""Stored reports: drift checks, fairness audits and the accuracy of matured predictions.

Computing them reads every active customer's events (and, for fairness, trains models), so they
are computed by jobs and stored; the API serves the latest of each kind, and ``/metrics`` reads
its gauges from them at scrape time, so every process reports the same figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import JSONType, UTCDateTime


class Report(Base):
    """One computed report: ``kind`` (drift, fairness, accuracy), what it is about
    (``subject``: a model version, or empty for the whole shop), its body and an optional PNG."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_kind_subject_created", "kind", "subject", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    chart: Mapped[bytes | None] = mapped_column(LargeBinary)

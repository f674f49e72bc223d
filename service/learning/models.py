"""Continuous learning: every decision about a challenger, and the scheduler's bookmarks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import JSONType, UTCDateTime


class LearningDecision(Base):
    """One run of the learning loop: the challenger it trained (or was given), both models'
    metrics on the same time-later holdout, and whether the challenger was promoted and why.
    Append-only: the audit trail of every automatic promotion and refusal."""

    __tablename__ = "learning_decisions"
    __table_args__ = (Index("ix_learning_decisions_decided_at", "decided_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    trigger: Mapped[str] = mapped_column(String(16))  # demand, events, schedule, drift
    mode: Mapped[str] = mapped_column(String(16))  # warm, retrain, given
    outcome: Mapped[str] = mapped_column(String(16))  # promoted, kept, skipped, failed
    promoted: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSONType)
    champion_version: Mapped[str | None] = mapped_column(String(64))
    challenger_version: Mapped[str | None] = mapped_column(String(64))
    holdout_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    holdout_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    champion_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    challenger_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    baseline_metrics: Mapped[dict[str, Any] | None] = mapped_column(
        JSONType
    )  # BTYD, same customers
    job_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(64))


class SchedulerMark(Base):
    """Where a scheduled task (``learn``, ``monitor``) last fired: its time and the event
    sequence number then, so "every N new events" and cron schedules survive restarts and are
    shared by every worker (the row is locked while a worker decides)."""

    __tablename__ = "scheduler_marks"

    task: Mapped[str] = mapped_column(String(16), primary_key=True)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    event_seq: Mapped[int] = mapped_column(BigInteger)

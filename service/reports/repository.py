"""Saving and reading stored reports (``service.reports.models.Report``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.ml.metrics import finite
from service.reports.models import Report

ReadT = TypeVar("ReadT", bound=BaseModel)


def save(
    session: Session,
    kind: str,
    body: dict[str, Any],
    *,
    subject: str = "",
    chart: bytes | None = None,
    now: datetime | None = None,
) -> Report:
    report = Report(
        kind=kind,
        subject=subject,
        created_at=now or datetime.now(UTC),
        body=finite(body),
        chart=chart,
    )
    session.add(report)
    session.flush()
    _prune(session, kind, subject)
    return report


KEEP = 200
"""Reports kept per kind and subject: hourly checks would otherwise grow the table for ever
(a drift report is ~20 KB); the newest are what the API, the gauges and people read."""


def _prune(session: Session, kind: str, subject: str) -> None:
    oldest_kept = session.scalar(
        select(Report.id)
        .where(Report.kind == kind, Report.subject == subject)
        .order_by(Report.id.desc())
        .offset(KEEP - 1)
        .limit(1)
    )
    if oldest_kept is not None:
        session.execute(
            delete(Report).where(
                Report.kind == kind, Report.subject == subject, Report.id < oldest_kept
            )
        )


def read_as(report: Report, schema: type[ReadT]) -> ReadT:
    """A stored report as its public schema: the body, with the row's id and time."""
    return schema.model_validate({**report.body, "id": report.id, "created_at": report.created_at})


def latest(session: Session, kind: str, subject: str | None = None) -> Report | None:
    """The newest report of ``kind`` (about ``subject`` when given)."""
    query = select(Report).where(Report.kind == kind)
    if subject is not None:
        query = query.where(Report.subject == subject)
    return session.scalars(query.order_by(Report.id.desc()).limit(1)).first()


def latest_per_subject(session: Session, kind: str) -> list[Report]:
    """The newest report of ``kind`` for each subject, newest first."""
    newest = select(func.max(Report.id)).where(Report.kind == kind).group_by(Report.subject)
    query = select(Report).where(Report.id.in_(newest)).order_by(Report.id.desc())
    return list(session.scalars(query))

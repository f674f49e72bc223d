"""Audiences: saved filters over the champion's stored scores, their count and the revenue they
represent, their members (paged, or streamed as CSV), and ``audience.count_crossed``.

An audience stores its filters, never its members: every read runs the filters over the stored
scores, so membership follows each rescoring and each ingested batch within the worker's delay.
Only the current champion's stored scores count: during a new champion's rescoring of everyone,
a customer not rescored yet is in no audience (the count dips, then recovers).

Thresholds: every job runner ticks ``ThresholdWatch``; at most every
``CLV_AUDIENCE_CHECK_SECONDS`` it counts each audience with a threshold (one indexed statement
each) and queues ``audience.count_crossed`` for CLV_WEBHOOK_URL when the count moved across a
threshold since the previous check: once per crossing, since the count it compares with is
written in the same transaction as the notification, and audiences being checked by one runner
are skipped by the others. Nothing is checked while the champion's value tiers are not fixed
(no champion, or its rescoring of everyone still running: counts move for that reason alone),
nor without CLV_WEBHOOK_URL.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.audiences import repository
from service.audiences.models import Audience
from service.audiences.repository import Scope
from service.audiences.schemas import (
    AudienceCount,
    AudienceCreate,
    AudienceDefinition,
    AudienceFilters,
    AudienceList,
    AudienceRead,
    MemberPage,
    MemberRead,
)
from service.config import Settings
from service.errors import ConflictError, NotFoundError
from service.scoring.service import churn_risk, next_order_date
from service.scoring.value import ValueTerms
from service.webhooks import service as webhooks

logger = logging.getLogger(__name__)

EXPORT_CHUNK = 5_000
"""Members read per statement while a CSV export streams (memory bounded by one chunk)."""
CSV_COLUMNS = [*MemberRead.model_fields]
EVENT = "audience.count_crossed"


def scope(session: Session, settings: Settings) -> Scope | None:
    """What audiences are counted over now; None without a champion."""
    found = repository.champion(session)
    if found is None:
        return None
    version, horizon = found
    return Scope(
        version=version,
        horizon_days=horizon,
        deciles=repository.deciles(session, version, horizon),
        factor=ValueTerms.of(settings).predicted(horizon),
    )


def count(session: Session, settings: Settings, filters: AudienceFilters) -> AudienceCount:
    """How many customers the filters hold now, and the revenue (served clv) they represent."""
    now, current = datetime.now(UTC), scope(session, settings)
    if current is None:
        return AudienceCount(
            customers=0,
            revenue=0.0,
            currency=settings.currency,
            model_version=None,
            horizon_days=None,
            tiers_known=False,
            counted_at=now,
        )
    customers, revenue = _count(session, filters, current)
    return AudienceCount(
        customers=customers,
        revenue=round(revenue, 4),
        currency=settings.currency,
        model_version=current.version,
        horizon_days=current.horizon_days,
        tiers_known=current.deciles is not None,
        counted_at=now,
    )


def _count(session: Session, filters: AudienceFilters, current: Scope) -> tuple[int, float]:
    where = repository.conditions(session, filters, current)
    customers, stored = repository.count_and_revenue(session, where)
    return customers, stored * current.factor


def create(session: Session, settings: Settings, body: AudienceCreate) -> AudienceRead:
    """Save the audience (409 on a name in use), counted now: that count is the side of its
    thresholds it starts on (none while the champion's tiers are not fixed: the first check
    then sets it)."""
    if repository.by_name(session, body.name) is not None:
        raise ConflictError(f"an audience named {body.name!r} exists already")
    counted = count(session, settings, body.filters)
    complete = counted.model_version is not None and counted.tiers_known
    audience = Audience(
        name=body.name,
        filters=body.filters.model_dump(mode="json", exclude_none=True),
        notify_above=body.notify_above,
        notify_below=body.notify_below,
        last_count=counted.customers if complete else None,
        checked_at=counted.counted_at if complete else None,
        created_at=counted.counted_at,
    )
    try:
        with session.begin_nested():
            repository.add(session, audience)
    except IntegrityError as clash:  # the same name saved concurrently
        raise ConflictError(f"an audience named {body.name!r} exists already") from clash
    return AudienceRead(**_definition(audience).model_dump(), count=counted)


def _definition(audience: Audience) -> AudienceDefinition:
    return AudienceDefinition(
        id=audience.id,
        name=audience.name,
        filters=AudienceFilters.model_validate(audience.filters),
        notify_above=audience.notify_above,
        notify_below=audience.notify_below,
        last_count=audience.last_count,
        checked_at=audience.checked_at,
        created_at=audience.created_at,
    )


def _get(session: Session, audience_id: int) -> Audience:
    audience = repository.get(session, audience_id)
    if audience is None:
        raise NotFoundError(f"no audience {audience_id}")
    return audience


def every(session: Session) -> AudienceList:
    return AudienceList(audiences=[_definition(a) for a in repository.every(session)])


def read(session: Session, settings: Settings, audience_id: int) -> AudienceRead:
    definition = _definition(_get(session, audience_id))
    return AudienceRead(
        **definition.model_dump(), count=count(session, settings, definition.filters)
    )


def delete(session: Session, audience_id: int) -> None:
    repository.delete(session, _get(session, audience_id))


def member_page(
    session: Session, settings: Settings, audience_id: int, after: str | None, limit: int
) -> MemberPage:
    """Up to ``limit`` members in customer id order after ``after``."""
    filters = _definition(_get(session, audience_id)).filters
    current = scope(session, settings)
    if current is None:
        return MemberPage(audience_id=audience_id, model_version=None, members=[], next_after=None)
    where = repository.conditions(session, filters, current)
    rows = repository.members(session, where, after, limit + 1)
    page = [_member(row, current) for row in rows[:limit]]
    return MemberPage(
        audience_id=audience_id,
        model_version=current.version,
        members=page,
        next_after=page[-1].customer_id if len(rows) > limit else None,
    )


def _member(row: dict[str, Any], current: Scope) -> MemberRead:
    """A member as its score is served (``service.scoring.service``)."""
    clv, probability = float(row["clv"]), float(row["purchase_probability"])
    deciles = current.deciles
    return MemberRead(
        customer_id=row["customer_id"],
        clv=round(clv * current.factor, 4),
        value_tier=None if deciles is None else 1 + bisect_right(deciles, clv),
        churn_risk=churn_risk(1.0 - probability),
        churn_probability=round(1.0 - probability, 4),
        purchase_probability=round(probability, 4),
        expected_next_order_date=next_order_date(row["as_of"], current.horizon_days, probability),
        segment=row["segment"],
        cold_start=bool(row["cold_start"]),
        risk_flags=[flag["flag"] for flag in row["risk_flags"] or ()],
        as_of=row["as_of"],
    )


def export(session: Session, audience_id: int) -> AudienceFilters:
    """The filters of the audience to export; 404 before any byte is streamed."""
    return _definition(_get(session, audience_id)).filters


def csv_chunks(
    session_factory: sessionmaker[Session], settings: Settings, filters: AudienceFilters
) -> Iterator[str]:
    """The members as CSV (``CSV_COLUMNS``, risk flags joined by ';'), a header and then one
    piece per ``EXPORT_CHUNK`` members, each read by a short statement of its own (keyset by
    customer id: every member once, however long the client takes to read)."""
    yield _csv([CSV_COLUMNS])
    with session_factory() as session:
        current = scope(session, settings)
    if current is None:
        return
    after: str | None = None
    while True:
        with session_factory() as session:
            where = repository.conditions(session, filters, current)
            rows = repository.members(session, where, after, EXPORT_CHUNK)
        if not rows:
            return
        yield _csv(_csv_row(_member(row, current)) for row in rows)
        after = rows[-1]["customer_id"]


def _csv_row(member: MemberRead) -> list[Any]:
    values = member.model_dump(mode="json")
    values["risk_flags"] = ";".join(member.risk_flags)
    return [values[name] if values[name] is not None else "" for name in CSV_COLUMNS]


def _csv(rows: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def crossings(audience: Audience, now_count: int) -> list[tuple[str, int]]:
    """(direction, threshold) of each threshold the count moved across since the last check:
    above N from at most N to more; below N from at least N to fewer."""
    previous = audience.last_count
    if previous is None:
        return []
    found = []
    above, below = audience.notify_above, audience.notify_below
    if above is not None and previous <= above < now_count:
        found.append(("above", above))
    if below is not None and previous >= below > now_count:
        found.append(("below", below))
    return found


def check_thresholds(
    session_factory: sessionmaker[Session], settings: Settings, now: datetime | None = None
) -> int:
    """Count every audience with a threshold not checked for ``CLV_AUDIENCE_CHECK_SECONDS``
    and queue ``audience.count_crossed`` for each crossing; returns how many were queued."""
    if settings.webhook_url is None:
        return 0
    now = now or datetime.now(UTC)
    before = now - timedelta(seconds=settings.audience_check_seconds)
    queued = 0
    with session_factory() as session, session.begin():
        current = scope(session, settings)
        if current is None or current.deciles is None:
            return 0
        for audience in repository.due_for_check(session, before):
            filters = AudienceFilters.model_validate(audience.filters)
            customers, revenue = _count(session, filters, current)
            for direction, threshold in crossings(audience, customers):
                data = {
                    "audience_id": audience.id,
                    "name": audience.name,
                    "direction": direction,
                    "threshold": threshold,
                    "previous_count": audience.last_count,
                    "count": customers,
                    "revenue": round(revenue, 4),
                    "currency": settings.currency,
                    "model_version": current.version,
                }
                webhooks.notify(session, settings, EVENT, data)
                queued += 1
            audience.last_count, audience.checked_at = customers, now
    return queued


class ThresholdWatch:
    """The job runners' ticker: ``check_thresholds`` at most every
    ``CLV_AUDIENCE_CHECK_SECONDS`` per process."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session_factory, self.settings, self.clock = session_factory, settings, clock
        self._next = 0.0

    def maybe_tick(self) -> int:
        if self.settings.webhook_url is None or self.clock() < self._next:
            return 0
        self._next = self.clock() + self.settings.audience_check_seconds
        try:
            return check_thresholds(self.session_factory, self.settings)
        except Exception:  # a failed check must not stop the runner's jobs; the next one retries
            logger.exception("checking the audiences' thresholds failed")
            return 0

"""SQL for scores: the current row per customer, the history, the queues of customers waiting for
a fresh score and of scores waiting for their attributions, and the decile boundaries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    Table,
    bindparam,
    delete,
    func,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db.bulk import bulk_upsert, is_postgresql
from service.db.queries import count_rows, one_of
from service.events.models import Event
from service.model_versions.models import ModelAlias
from service.scoring.models import Score, ScoreDeciles, ScoreHistory, StaleScore, UnexplainedScore

_SCORES: Table = Score.__table__  # type: ignore[assignment]
_HISTORY: Table = ScoreHistory.__table__  # type: ignore[assignment]
_STALE: Table = StaleScore.__table__  # type: ignore[assignment]
_DECILES: Table = ScoreDeciles.__table__  # type: ignore[assignment]
_UNEXPLAINED: Table = UnexplainedScore.__table__  # type: ignore[assignment]
VALUE_COLUMNS = [c.name for c in _HISTORY.c if c.name not in ("id", "customer_id")]
NUMBERS = [c.name for c in _HISTORY.c if isinstance(c.type, Float)]


def _insert(session: Session, table: Table) -> Any:
    return (postgresql.insert if is_postgresql(session) else sqlite.insert)(table)


def save_scores(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Store each row as the customer's current score, unless the stored one describes a later
    moment (a slow rescoring must not overwrite what fresh events produced); append the rows
    stored to the history and queue them for their attributions (``unexplained_scores``: a new
    score's attributions are computed after it, ``save_explanations``). Returns their customer
    ids. Three statements whatever the number of rows (``bulk_upsert``): a multi-row VALUES list
    spent more time in the driver's query parsing than the database spent storing."""
    if not rows:
        return set()
    rows = sorted(rows, key=lambda row: row["customer_id"])  # one lock order: no deadlocks
    columns = ["customer_id", *VALUE_COLUMNS, "risk_flags"]
    written = [{name: row[name] for name in columns} for row in rows]
    stored = set(
        bulk_upsert(
            session,
            _SCORES,
            columns=columns,
            rows=written,
            conflict=["customer_id"],
            update=lambda new: {
                **{name: new[name] for name in columns[1:]},
                "explanation": null(),  # the previous score's: they no longer add up
            },
            update_where=lambda new: _SCORES.c.as_of <= new.as_of,
            returning=_SCORES.c.customer_id,
        )
    )
    kept = [row for row in written if row["customer_id"] in stored]
    history = [{name: row[name] for name in columns if name != "risk_flags"} for row in kept]
    bulk_upsert(session, _HISTORY, columns=columns[:-1], rows=history, conflict=None)
    bulk_upsert(
        session,
        _UNEXPLAINED,
        columns=["customer_id", "computed_at"],
        rows=[{"customer_id": r["customer_id"], "computed_at": r["computed_at"]} for r in kept],
        conflict=["customer_id"],
        update=lambda new: {"computed_at": new.computed_at, "leased_until": null()},
    )
    return stored


def current(session: Session, customer_id: str) -> Score | None:
    return session.get(Score, customer_id)


def current_many(
    session: Session, customer_ids: Sequence[str], *, explanations: bool
) -> dict[str, dict[str, Any]]:
    """The stored scores as plain dicts (``VALUE_COLUMNS``, ``risk_flags``, ``stale_since``: when
    the customer was queued for rescoring, if they are, and ``explanation`` when asked for: 1.2 KB
    each). Plain rows, and the ids as one array on PostgreSQL: a
    10,000-customer batch spent most of its time building ORM objects and 10,000 placeholders."""
    names = [*VALUE_COLUMNS, "risk_flags"]
    columns: list[Any] = [_SCORES.c.customer_id, *(_SCORES.c[name] for name in names)]
    columns.append(_STALE.c.since.label("stale_since"))
    if explanations:
        columns.append(_SCORES.c.explanation)
    condition = one_of(session, _SCORES.c.customer_id, customer_ids)
    queued = _SCORES.outerjoin(_STALE, _STALE.c.customer_id == _SCORES.c.customer_id)
    rows = session.execute(select(*columns).select_from(queued).where(condition)).mappings()
    return {row["customer_id"]: dict(row) for row in rows}


def history(
    session: Session, customer_id: str, limit: int, before: datetime | None
) -> Sequence[ScoreHistory]:
    query = select(ScoreHistory).where(ScoreHistory.customer_id == customer_id)
    if before is not None:
        query = query.where(ScoreHistory.computed_at < before)
    order = (ScoreHistory.computed_at.desc(), ScoreHistory.id.desc())
    return session.scalars(query.order_by(*order).limit(limit)).all()


def has_champion(session: Session) -> bool:
    return session.get(ModelAlias, "champion") is not None


def most_valuable(session: Session) -> str | None:
    """The customer with the highest stored score, if any is stored."""
    return session.scalars(select(Score.customer_id).order_by(Score.clv.desc()).limit(1)).first()


def mark_stale(
    session: Session, customer_ids: Iterable[str], trigger: str, now: datetime | None = None
) -> None:
    """Queue the customers for a fresh score, when there is a champion to score them with (a
    new champion rescores everyone anyway). A customer already queued takes the new reason and
    time, and loses any lease: a rescoring under way started before this reason."""
    if not has_champion(session):
        return
    now = now or datetime.now(UTC)
    rows = [
        {"customer_id": c, "since": now, "trigger": trigger, "leased_until": None}
        for c in sorted(set(customer_ids))
    ]
    for start in range(0, len(rows), 5_000):
        statement = _insert(session, _STALE)
        statement = statement.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={
                "since": statement.excluded.since,
                "trigger": statement.excluded.trigger,
                "leased_until": None,
            },
        )
        session.execute(statement, rows[start : start + 5_000])


def lease_stale(
    session: Session, limit: int, now: datetime, lease: timedelta
) -> dict[str, tuple[datetime, str]]:
    """Lease up to ``limit`` queued customers nobody is rescoring (or whose lease ran out: its
    worker died), longest waiting first: {customer: (since, trigger)}."""
    rows = _lease(session, _STALE, _STALE.c.since, limit, now + lease, now)
    return {row.customer_id: (row.since, row.trigger) for row in rows}


def _lease(
    session: Session, table: Table, oldest: Any, limit: int, until: datetime, now: datetime
) -> Sequence[Any]:
    """Lease up to ``limit`` free rows of a queue (never leased, or whose lease ran out), by
    ``oldest`` first, until ``until``; returns them. Rows another worker is leasing right now
    are skipped (``SKIP LOCKED``)."""
    free = or_(table.c.leased_until.is_(None), table.c.leased_until < now)
    chosen = (
        select(table.c.customer_id)
        .where(free)
        .order_by(oldest, table.c.customer_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(table)
        .where(table.c.customer_id.in_(chosen))
        .values(leased_until=until)
        .returning(*table.c)
    )
    return session.execute(statement).all()


def take_stale(session: Session, customer_ids: Sequence[str], leased_until: datetime) -> set[str]:
    """Remove the customers leased until ``leased_until`` from the queue, except those queued
    again since the lease (a newer reason drops the lease: they stay for the next turn) or
    leased again by another worker after it ran out. Returns the customers removed."""
    if not customer_ids:
        return set()
    removed = session.scalars(
        delete(_STALE)
        .where(
            one_of(session, _STALE.c.customer_id, customer_ids),
            _STALE.c.leased_until == leased_until,
        )
        .returning(_STALE.c.customer_id)
    )
    return set(removed)


def queued(session: Session, up_to: int | None = None) -> int:
    """Customers queued for a fresh score (counting stops at ``up_to``)."""
    return count_rows(session, select(_STALE.c.customer_id), up_to)


def lease_unexplained(
    session: Session, limit: int, now: datetime, lease: timedelta
) -> dict[str, datetime]:
    """Lease up to ``limit`` stored scores waiting for their attributions, oldest first:
    {customer: the queued score's ``computed_at``}."""
    rows = _lease(session, _UNEXPLAINED, _UNEXPLAINED.c.computed_at, limit, now + lease, now)
    return {row.customer_id: row.computed_at for row in rows}


def moments(
    session: Session, customer_ids: Sequence[str]
) -> dict[str, tuple[str, datetime, datetime]]:
    """Which score each customer holds: {customer: (model_version, as_of, computed_at)}."""
    query = select(
        _SCORES.c.customer_id, _SCORES.c.model_version, _SCORES.c.as_of, _SCORES.c.computed_at
    ).where(one_of(session, _SCORES.c.customer_id, customer_ids))
    return {row[0]: (row[1], row[2], row[3]) for row in session.execute(query)}


def save_explanations(
    session: Session, leased: Mapping[str, datetime], blobs: Mapping[str, bytes]
) -> None:
    """Store each customer's attributions on the score they were computed for (the leased
    ``computed_at``) if it is still the current one, and take the leased scores off the queue,
    explained or not (not: replaced meanwhile, or by another version, whose rescoring queues
    them again). A score queued again since the lease stays queued."""
    rows = [
        {"customer": customer, "computed": leased[customer], "blob": blob}
        for customer, blob in blobs.items()
    ]
    if rows:
        same_score = (_SCORES.c.customer_id == bindparam("customer")) & (
            _SCORES.c.computed_at == bindparam("computed")
        )
        statement = update(_SCORES).where(same_score).values(explanation=bindparam("blob"))
        session.execute(statement, rows)
    pairs = list(leased.items())
    if pairs:
        queued = tuple_(_UNEXPLAINED.c.customer_id, _UNEXPLAINED.c.computed_at)
        session.execute(delete(_UNEXPLAINED).where(queued.in_(pairs)))


def unexplained(session: Session, up_to: int | None = None) -> int:
    """Stored scores waiting for their attributions (counting stops at ``up_to``)."""
    return count_rows(session, select(_UNEXPLAINED.c.customer_id), up_to)


def oldest_queued(session: Session) -> datetime | None:
    """The earliest reason time among the customers waiting for a fresh score."""
    oldest: datetime | None = session.scalar(select(func.min(_STALE.c.since)))
    return oldest


def mark_aged(session: Session, before: datetime, limit: int, now: datetime) -> int:
    """Queue up to ``limit`` customers whose stored score describes a moment before ``before``
    (oldest first); returns how many."""
    waiting = select(_STALE.c.customer_id)
    aged = list(
        session.scalars(
            select(Score.customer_id)
            .where(Score.as_of < before, Score.customer_id.not_in(waiting))
            .order_by(Score.as_of)
            .limit(limit)
        )
    )
    mark_stale(session, aged, "age", now)
    return len(aged)


def latest_event_after(
    session: Session, customer_ids: Sequence[str], after: datetime
) -> datetime | None:
    """The latest occurred_at after ``after`` among the customers' events (None without any).
    Bounded in time, so only the event partitions from ``after``'s month on are read."""
    query = select(func.max(Event.occurred_at)).where(
        Event.customer_id.in_(customer_ids), Event.occurred_at > after
    )
    return session.scalar(query)


def clv_values(session: Session, model_version: str, horizon_days: int) -> list[float]:
    query = select(Score.clv).where(
        Score.model_version == model_version, Score.horizon_days == horizon_days
    )
    return list(session.scalars(query))


def save_deciles(session: Session, deciles: ScoreDeciles) -> None:
    session.merge(deciles)


def deciles(session: Session, model_version: str, horizon_days: int) -> ScoreDeciles | None:
    return session.get(ScoreDeciles, (model_version, horizon_days))


def explanations(session: Session, model_version: str, limit: int) -> list[bytes]:
    """Stored attributions of up to ``limit`` random customers scored by the version (the
    sample is drawn over ids, so the database sorts ids, not 1.2 KB blobs)."""
    sample = (
        select(Score.customer_id)
        .where(Score.model_version == model_version, Score.explanation.is_not(None))
        .order_by(func.random())
        .limit(limit)
    )
    query = select(Score.explanation).where(Score.customer_id.in_(sample.scalar_subquery()))
    return [blob for blob in session.scalars(query) if blob is not None]


def first_scores(
    session: Session, columns: Sequence[str], until: datetime
) -> list[tuple[Any, ...]]:
    """Each version's first stored score per customer (the lowest history id: rows are
    appended) describing a moment at or before ``until``, oldest first: the database picks the
    first rows, so the history of every rescoring never crosses the wire."""
    first = select(func.min(ScoreHistory.id)).group_by(
        ScoreHistory.model_version, ScoreHistory.customer_id
    )
    query = (
        select(*(getattr(ScoreHistory, c) for c in columns))
        .where(ScoreHistory.id.in_(first), ScoreHistory.as_of <= until)
        .order_by(ScoreHistory.id)
    )
    return [tuple(row) for row in session.execute(query).all()]


def scored_versions(session: Session) -> list[str]:
    """Every model version with a stored score in the history."""
    return list(session.scalars(select(ScoreHistory.model_version).distinct()))

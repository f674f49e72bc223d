"""SQL for scores: the current row per customer, the history, the stale-customer queue and the
decile boundaries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, defer

from service.db.bulk import is_postgresql
from service.events.models import Event
from service.model_versions.models import ModelAlias
from service.scoring.models import Score, ScoreDeciles, ScoreHistory, StaleScore

_SCORES: Table = Score.__table__  # type: ignore[assignment]
_HISTORY: Table = ScoreHistory.__table__  # type: ignore[assignment]
_STALE: Table = StaleScore.__table__  # type: ignore[assignment]
_DECILES: Table = ScoreDeciles.__table__  # type: ignore[assignment]
VALUE_COLUMNS = [c.name for c in _HISTORY.c if c.name not in ("id", "customer_id")]
NUMBERS = [c.name for c in _HISTORY.c if isinstance(c.type, Float)]


def _insert(session: Session, table: Table) -> Any:
    return (postgresql.insert if is_postgresql(session) else sqlite.insert)(table)


def save_scores(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store each row as the customer's current score, unless the stored one describes a later
    moment (a slow rescoring must not overwrite what fresh events produced), and append every
    row to the history."""
    if not rows:
        return
    rows = sorted(rows, key=lambda row: row["customer_id"])  # one lock order: no deadlocks
    statement = _insert(session, _SCORES)
    statement = statement.on_conflict_do_update(
        index_elements=["customer_id"],
        set_={name: statement.excluded[name] for name in [*VALUE_COLUMNS, "explanation"]},
        where=_SCORES.c.as_of <= statement.excluded.as_of,
    )
    session.execute(statement, list(rows))
    history = [{k: v for k, v in row.items() if k != "explanation"} for row in rows]
    session.execute(_HISTORY.insert(), history)


def current(session: Session, customer_id: str) -> Score | None:
    return session.get(Score, customer_id)


def current_many(
    session: Session, customer_ids: Sequence[str], *, explanations: bool
) -> dict[str, Score]:
    """The stored scores; their attributions (1.2 KB each) only when asked for."""
    query = select(Score).where(Score.customer_id.in_(customer_ids))
    if not explanations:
        query = query.options(defer(Score.explanation, raiseload=True))
    return {score.customer_id: score for score in session.scalars(query)}


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


def mark_stale(
    session: Session, customer_ids: Iterable[str], trigger: str, now: datetime | None = None
) -> None:
    """Queue the customers for a fresh score, when there is a champion to score them with (a
    new champion rescores everyone anyway)."""
    if not has_champion(session):
        return
    now = now or datetime.now(UTC)
    rows = [{"customer_id": c, "since": now, "trigger": trigger} for c in sorted(set(customer_ids))]
    if rows:
        statement = _insert(session, _STALE).on_conflict_do_nothing(index_elements=["customer_id"])
        session.execute(statement, rows)


def claim_stale(session: Session, limit: int) -> dict[str, str]:
    """Take up to ``limit`` stale customers, longest waiting first, with what made them stale;
    others' claims are skipped (``SKIP LOCKED``) and a rolled-back transaction puts them back."""
    oldest = (
        select(_STALE.c.customer_id)
        .order_by(_STALE.c.since, _STALE.c.customer_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = session.execute(
        delete(_STALE)
        .where(_STALE.c.customer_id.in_(oldest))
        .returning(_STALE.c.customer_id, _STALE.c.trigger)
    )
    return dict(sorted((row[0], row[1]) for row in claimed))


def latest_event(session: Session, customer_ids: Sequence[str]) -> datetime:
    """The latest occurred_at among the customers' events (the epoch without any)."""
    query = select(func.max(Event.occurred_at)).where(Event.customer_id.in_(customer_ids))
    return session.scalar(query) or datetime.fromtimestamp(0, UTC)


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
    """Stored attributions of up to ``limit`` customers scored by the version."""
    query = (
        select(Score.explanation)
        .where(Score.model_version == model_version, Score.explanation.is_not(None))
        .order_by(func.random())
        .limit(limit)
    )
    return [blob for blob in session.scalars(query) if blob is not None]

"""SQL for customers: attribute rows, activity aggregates and erasure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Row, delete, exists, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.customers.models import CustomerAttributes, CustomerProfile
from service.db.base import Base
from service.db.bulk import bulk_upsert, is_postgresql
from service.db.queries import Shard, one_of
from service.db.types import MONEY_SCALE
from service.events.models import DeadLetter, Event, PendingEvent


def attributes(session: Session, customer_id: str) -> Sequence[CustomerAttributes]:
    return session.scalars(
        select(CustomerAttributes).where(CustomerAttributes.customer_id == customer_id)
    ).all()


def all_attributes(
    session: Session, customer_ids: Sequence[str] | None = None, shard: Shard | None = None
) -> Sequence[Row[Any]]:
    """Every attribute row (of the listed customers, of a shard's) as plain rows (no ORM
    objects: this may read every customer)."""
    table = CustomerAttributes.__table__
    query = select(table)
    if customer_ids is not None:
        query = query.where(one_of(session, table.c.customer_id, customer_ids))
    if shard is not None:
        clause, values = shard.holds(f"{CustomerAttributes.__tablename__}.customer_id")
        query = query.where(text(clause).bindparams(*values))
    return session.execute(query).all()


def customers_with_attributes(session: Session) -> list[str]:
    query = select(CustomerAttributes.customer_id).distinct()
    return list(session.scalars(query))


def attributes_for_update(
    session: Session, customer_id: str, source: str, now: datetime
) -> CustomerAttributes:
    """The (customer, source) row, created empty if missing, locked for this transaction.

    Insert-if-missing then ``SELECT ... FOR UPDATE`` serialises concurrent PATCHes of one source
    on PostgreSQL (SQLite serialises writers anyway), so no merge is lost to a race.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(CustomerAttributes)
        .values(customer_id=customer_id, source=source, attributes={}, updated_at=now)
        .on_conflict_do_nothing()
    )
    return session.scalars(
        select(CustomerAttributes)
        .where(CustomerAttributes.customer_id == customer_id, CustomerAttributes.source == source)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


class TypeStats(NamedTuple):
    type: str
    number: int
    total: Decimal | None
    first_at: datetime
    last_at: datetime


def event_stats(session: Session, customer_id: str) -> list[TypeStats]:
    """Counts, totals and first and last times per event type. On SQLite (money in integer
    ten-thousandths) the total is summed as ``total()``, a float: ``sum()`` raises "integer
    overflow" past 2**63 units, and the float is exact up to 2**53 units (900 billion)."""
    on_sqlite = not is_postgresql(session)
    rows = session.execute(
        select(
            Event.type,
            func.count(),
            func.total(Event.amount) if on_sqlite else func.sum(Event.amount),
            func.min(Event.occurred_at),
            func.max(Event.occurred_at),
        )
        .where(Event.customer_id == customer_id)
        .group_by(Event.type)
    ).all()
    if on_sqlite:
        return [
            TypeStats(kind, number, _units(total), first, last)
            for kind, number, total, first, last in rows
        ]
    return [TypeStats._make(row) for row in rows]


def _units(total: float) -> Decimal:
    return Decimal(round(total)).scaleb(-MONEY_SCALE)


def exists_customer(session: Session, customer_id: str) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(Event.customer_id == customer_id)
                | exists().where(CustomerAttributes.customer_id == customer_id)
            )
        )
    )


def erase(session: Session, customer_id: str) -> int:
    """Delete every row of every table that has a ``customer_id`` column; return the count.

    Driven by the metadata, so a table added later is erased without anyone remembering to.
    The customer's queued and dead-lettered events go first (a dead letter's error may quote
    the customer's id): that waits for a worker applying them right now
    (it holds those queue rows) and stops any later worker, so no aggregate about the customer
    is written after the erasure.
    """
    customer_seqs = select(Event.seq).where(Event.customer_id == customer_id)
    session.execute(delete(PendingEvent).where(PendingEvent.seq.in_(customer_seqs)))
    session.execute(delete(DeadLetter).where(DeadLetter.seq.in_(customer_seqs)))
    deleted = 0
    for table in reversed(Base.metadata.sorted_tables):  # children before parents
        if "customer_id" in table.c:
            result = session.execute(delete(table).where(table.c.customer_id == customer_id))
            deleted += result.rowcount or 0  # type: ignore[attr-defined]
    return deleted


def replace_attributes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk PUT: each (customer_id, source) row replaces that source's attributes."""
    table = CustomerAttributes.__table__
    bulk_upsert(
        session,
        table,  # type: ignore[arg-type]
        columns=["customer_id", "source", "attributes", "updated_at"],
        rows=sorted(rows, key=lambda row: (row["customer_id"], row["source"])),
        conflict=["customer_id", "source"],
        update=lambda excluded: {
            "attributes": excluded.attributes,
            "updated_at": excluded.updated_at,
        },
    )


def lock_profiles(session: Session, customer_ids: Sequence[str]) -> None:
    """Hold the customers' merged-profile rows (created empty if missing) for this
    transaction, so that writes to two sources of one customer merge one after the other: the
    second reads the first's committed row. Every writer locks in id order: no deadlock.
    (SQLite serialises writers anyway, and has no ``FOR UPDATE``.)"""
    ids = sorted(set(customer_ids))
    table = CustomerProfile.__table__
    bulk_upsert(
        session,
        table,  # type: ignore[arg-type]
        columns=["customer_id", "attributes", "precedence"],
        rows=[{"customer_id": i, "attributes": {}, "precedence": ""} for i in ids],
        conflict=["customer_id"],
    )
    if is_postgresql(session):
        session.execute(
            select(CustomerProfile.customer_id)
            .where(one_of(session, CustomerProfile.customer_id, ids))
            .order_by(CustomerProfile.customer_id)
            .with_for_update()
        ).all()


def write_profiles(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store merged profiles: ``customer_id``, ``attributes``, ``precedence`` per row."""
    bulk_upsert(
        session,
        CustomerProfile.__table__,  # type: ignore[arg-type]
        columns=["customer_id", "attributes", "precedence"],
        rows=sorted(rows, key=lambda row: row["customer_id"]),
        conflict=["customer_id"],
        update=lambda excluded: {
            "attributes": excluded.attributes,
            "precedence": excluded.precedence,
        },
    )


def delete_profiles(session: Session, customer_ids: Sequence[str]) -> None:
    if customer_ids:
        listed = one_of(session, CustomerProfile.customer_id, customer_ids)
        session.execute(delete(CustomerProfile).where(listed))


def unmerged_customers(session: Session, precedence: str) -> list[str]:
    """Customers with attributes whose merged profile is missing or was merged under another
    precedence."""
    profile = CustomerProfile.__table__.c
    query = (
        select(CustomerAttributes.customer_id)
        .distinct()
        .outerjoin(CustomerProfile, CustomerProfile.customer_id == CustomerAttributes.customer_id)
        .where(or_(profile.customer_id.is_(None), profile.precedence != precedence))
    )
    return list(session.scalars(query))

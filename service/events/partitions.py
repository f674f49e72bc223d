"""Monthly partitions of ``events`` on PostgreSQL: created ahead by the workers, history that
arrived without one moved into one, and months past ``CLV_EVENT_RETENTION_MONTHS`` dropped once
every event in them is applied.

``events`` is partitioned by range of ``occurred_at``, one partition per calendar month (UTC)
named ``events_yYYYYmMM``, and ``events_default`` for events whose month has no partition yet:
history imported into a new database, or older than what the migration partitioned (revision
``9a4f2c6d8e13``). Each check moves those into partitions of their own, so the default holds
rows only until the next check.

A partition is created apart and attached (``ATTACH PARTITION`` locks ``events`` in ``SHARE
UPDATE EXCLUSIVE`` mode: ingestion and reads go on), with a CHECK of its range so the attach
need not scan it. Dropping one locks ``events`` briefly (``ACCESS EXCLUSIVE``); behind a long
read (training) that wait would stall ingestion, so every statement here gives up after
``LOCK_TIMEOUT`` and the next check tries again: partitions are created ``AHEAD_MONTHS`` early.
SQLite has one table: everything here is a no-op there.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.db.bulk import is_postgresql

logger = logging.getLogger(__name__)

AHEAD_MONTHS = 2
"""Partitions exist for this month and the next two, so failed checks have weeks to recover."""
LOCK_TIMEOUT = "2s"
DEFAULT = "events_default"
PARTITION = re.compile(r"^events_(y(\d{4})m(\d{2})|default)$")
LOCK_KEY = 0x65766E7470  # pg_advisory_xact_lock: one worker maintains partitions at a time


def is_partition(name: str) -> bool:
    """A table that is a partition of ``events`` (not in the models' metadata)."""
    return PARTITION.match(name) is not None


def compared(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: what comparing the models with a database looks at (every
    table but the partitions, which the models do not declare)."""
    return not (type_ == "table" and name is not None and is_partition(name))


def month_start(moment: datetime) -> datetime:
    """The start of ``moment``'s month in UTC (months are UTC months)."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(month: datetime, months: int) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def name(month: datetime) -> str:
    return f"events_y{month.year:04d}m{month.month:02d}"


def months(session: Session) -> list[datetime]:
    """The months that have a partition, oldest first."""
    found = session.scalars(
        text(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid "
            "JOIN pg_class parent ON parent.oid = inhparent WHERE parent.relname = 'events'"
        )
    )
    matches = [PARTITION.match(table) for table in found]
    return sorted(
        datetime(int(m.group(2)), int(m.group(3)), 1, tzinfo=UTC)
        for m in matches
        if m is not None and m.group(2)
    )


def create(session: Session, month: datetime) -> None:
    """The partition of ``month`` (a month start), holding the default partition's events of
    that month."""
    table, start, end = name(month), month.isoformat(), add_months(month, 1).isoformat()
    inside = f"occurred_at >= '{start}' AND occurred_at < '{end}'"
    session.execute(
        text(f"CREATE TABLE {table} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    session.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {table}_range CHECK ({inside})"))
    # The attach takes this lock anyway; taken first, no event of the month can reach the
    # default partition between the move and the attach (which would then be refused).
    session.execute(text(f"LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE"))
    moved = f"DELETE FROM {DEFAULT} WHERE {inside} RETURNING *"
    session.execute(text(f"WITH moved AS ({moved}) INSERT INTO {table} SELECT * FROM moved"))
    bounds = f"FROM ('{start}') TO ('{end}')"
    session.execute(text(f"ALTER TABLE events ATTACH PARTITION {table} FOR VALUES {bounds}"))


def create_missing(session: Session, now: datetime) -> list[str]:
    """Create the partitions of this month and the next ``AHEAD_MONTHS``, and of every month
    the default partition holds events of, where missing; their names."""
    have = set(months(session))
    ahead = {add_months(month_start(now), n) for n in range(AHEAD_MONTHS + 1)}
    held = session.scalars(
        text(f"SELECT DISTINCT date_trunc('month', occurred_at, 'UTC') FROM {DEFAULT}")
    )
    missing = sorted((ahead | {month.astimezone(UTC) for month in held}) - have)
    for month in missing:
        create(session, month)
    return [name(month) for month in missing]


def drop_expired(session: Session, now: datetime, retention_months: int) -> list[str]:
    """Drop the partitions wholly older than ``retention_months`` months before this month's
    start. A partition holding an event still queued or dead-lettered is kept until the next
    check: that event's aggregates are not in the portrait yet. The dropped events' ids stay
    in ``event_ids``, so they are not stored again if sent again. Returns the partitions
    dropped."""
    cutoff = add_months(month_start(now), -retention_months)
    dropped: list[str] = []
    for month in months(session):
        if add_months(month, 1) > cutoff:
            break
        table = name(month)
        unapplied = session.scalar(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {table} e WHERE e.seq IN "
                "(SELECT seq FROM pending_events UNION ALL SELECT seq FROM dead_letters))"
            )
        )
        if unapplied:
            logger.warning("%s holds events not applied yet: kept until they are", table)
            continue
        session.execute(text(f"DROP TABLE {table}"))
        dropped.append(table)
    return dropped


def maintain(
    session_factory: sessionmaker[Session], now: datetime, retention_months: int | None
) -> None:
    """One check: the missing partitions, then the retention when set. A lock wait past
    ``LOCK_TIMEOUT`` ends the check without harm (logged); the next one tries again."""
    with session_factory() as session, session.begin():
        if not is_postgresql(session):
            return
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        try:
            with session.begin_nested():
                created = create_missing(session, now)
                dropped = drop_expired(session, now, retention_months) if retention_months else []
        except OperationalError as error:
            logger.warning("event partitions not maintained this time: %s", error.orig)
            return
    if created or dropped:
        logger.info("event partitions created %s, dropped %s", created, dropped)

"""The event store past one heap: monthly partitions on PostgreSQL (created ahead, pruned by the
hot queries, dropped by the retention) and event ids kept apart so "stored once" holds."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy import insert as sql_insert
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import migrations
from service.db.session import make_engine, make_session_factory
from service.events import partitions
from service.events import repository as events
from service.events.models import Event
from service.events.schemas import EventCreate
from service.events.worker import drain
from service.portrait import repository as portrait

BEFORE = "5e0c1f7a9b42"  # the revision before events were partitioned
MONTHS = [datetime(2026, month, 1, tzinfo=UTC) for month in (1, 2, 3, 4)]


def stored(event_id: str, customer: str, at: datetime) -> EventCreate:
    return EventCreate.model_validate(
        {
            "event_id": event_id,
            "customer_id": customer,
            "type": "purchase",
            "occurred_at": at,
            "amount": "10.00",
        }
    )


def ingest(engine: Engine, *created: EventCreate) -> list[int]:
    with Session(engine) as session, session.begin():
        return events.insert_new(session, list(created), received_at=datetime.now(UTC))


def rows(engine: Engine) -> list[tuple[Any, ...]]:
    """(seq, event_id, the table that holds it) of every event; the table is "events" on
    SQLite."""
    holder = "tableoid::regclass::text" if engine.dialect.name == "postgresql" else "'events'"
    with engine.connect() as connection:
        found = connection.execute(text(f"SELECT seq, event_id, {holder} FROM events ORDER BY seq"))
        return [tuple(row) for row in found]


def test_the_migration_keeps_every_event_and_its_number_and_ids_stay_unique(
    empty_database_url: str,
) -> None:
    migrations.upgrade(empty_database_url, BEFORE)
    engine = create_engine(empty_database_url)
    try:
        with engine.begin() as connection:  # stored as the service stores them (the models)
            for event_id, day in [("a", "2025-11-20"), ("b", "2026-01-05"), ("c", "2026-01-31")]:
                at = datetime.fromisoformat(day + "T23:59:59+00:00")
                connection.execute(
                    sql_insert(Event).values(
                        event_id=event_id,
                        customer_id="c-1",
                        type="view",
                        occurred_at=at,
                        received_at=at,
                    )
                )
            connection.execute(text("INSERT INTO pending_events (seq) VALUES (3)"))  # queued
        migrations.upgrade(empty_database_url)

        before = rows(engine)
        assert [(seq, event_id) for seq, event_id, _ in before] == [(1, "a"), (2, "b"), (3, "c")]
        if engine.dialect.name == "postgresql":
            assert [table for *_, table in before] == [
                "events_y2025m11",
                "events_y2026m01",
                "events_y2026m01",
            ]
        assert drain(make_session_factory(engine)) == 1  # the queued one, found by its time
        with engine.connect() as connection:
            days = connection.execute(text("SELECT day FROM customer_days")).scalars().all()
        assert [str(day)[:10] for day in days] == ["2026-01-31"]
        later = datetime.now(UTC)
        assert ingest(engine, stored("a", "c-1", later), stored("d", "c-1", later)) == [4]
        assert [event_id for _, event_id, _ in rows(engine)] == ["a", "b", "c", "d"]
    finally:
        engine.dispose()


@pytest.fixture
def partitioned(postgres_settings: Settings) -> Iterator[Engine]:
    """A PostgreSQL database with partitions for January to April 2026."""
    engine = make_engine(postgres_settings)
    with Session(engine) as session, session.begin():
        for month in MONTHS:
            partitions.create(session, month)
    yield engine
    engine.dispose()


def plans(engine: Engine, run: Callable[[Session], object]) -> list[dict[str, Any]]:
    """The plans of the statements ``run`` executes (through SQLAlchemy or straight from the
    driver), as PostgreSQL's auto_explain reports them to the client."""
    notices: list[str] = []
    with Session(engine) as session:
        for setting in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_format = 'json'",
            "SET auto_explain.log_level = 'notice'",
        ):
            session.execute(text(setting))
        driver = session.connection().connection.driver_connection
        driver.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
        run(session)
    return [json.loads(n.split("plan:", 1)[1])["Plan"] for n in notices if "plan:" in n]


def scanned(plan: dict[str, Any]) -> set[tuple[str, str | None]]:
    """(table, index) of every scan in a plan."""
    found = set()
    if "Relation Name" in plan:
        found.add((plan["Relation Name"], plan.get("Index Name")))
    for child in plan.get("Plans", []):
        found |= scanned(child)
    return found


def event_tables(plan: dict[str, Any]) -> set[str]:
    return {table for table, _ in scanned(plan) if partitions.is_partition(table)}


def test_the_hot_queries_read_only_the_months_they_ask_for(partitioned: Engine) -> None:
    for number, month in enumerate(MONTHS):
        customers = [f"c-{i}" for i in range(3000)]  # enough that an index beats a scan
        ingest(
            partitioned,
            *(stored(f"e{number}-{c}", c, month + timedelta(days=3)) for c in customers),
        )
    drain(make_session_factory(partitioned))
    with partitioned.begin() as connection:
        connection.execute(text("ANALYZE events"))

    february = (MONTHS[1], MONTHS[2] - timedelta(microseconds=1))
    orders = plans(partitioned, lambda s: events.orders_in(s, *february))
    assert [event_tables(plan) for plan in orders] == [{"events_y2026m02"}]

    with partitioned.connect() as connection:  # what a worker claims: February's events
        claimed = connection.execute(
            text("SELECT seq, occurred_at FROM events_y2026m02 ORDER BY seq LIMIT 500")
        ).all()
    seqs, moments = [seq for seq, _ in claimed], [moment for _, moment in claimed]
    applying = plans(
        partitioned,
        lambda s: list(portrait.event_frames_by_seq(s, seqs, min(moments), max(moments))),
    )
    assert set().union(*(event_tables(plan) for plan in applying)) == {"events_y2026m02"}

    recent = plans(
        partitioned,
        lambda s: list(portrait.applied_frames_after(s, ["c-7"], after=MONTHS[2])),
    )
    read = set().union(*(scanned(plan) for plan in recent))
    assert not {table for table, _ in read} & {"events_y2026m01", "events_y2026m02"}
    assert ("events_y2026m03", "events_y2026m03_customer_id_occurred_at_idx") in read

    january = february[0] - timedelta(microseconds=1)
    training = plans(partitioned, lambda s: list(portrait.event_frames(s, until=january)))
    assert set().union(*(event_tables(plan) for plan in training)) == {
        "events_y2026m01",
        partitions.DEFAULT,  # what is older than the first month partitioned
    }

    sequences = plans(  # what scoring reads: each customer's latest events, by index
        partitioned, lambda s: portrait.recent_events(s, ["c-7", "c-8"], until=january, count=5)
    )
    read = set().union(*(scanned(plan) for plan in sequences))
    assert {table for table, _ in read if partitions.is_partition(table)} == {
        "events_y2026m01",
        partitions.DEFAULT,
    }
    assert ("events_y2026m01", "events_y2026m01_customer_id_occurred_at_idx") in read


def test_workers_create_months_ahead_and_the_retention_drops_applied_ones(
    partitioned: Engine,
) -> None:
    factory = make_session_factory(partitioned)
    partitions.maintain(factory, datetime(2026, 5, 20, tzinfo=UTC), None)
    with Session(partitioned) as session:
        made = set(partitions.months(session))
    assert {datetime(2026, month, 1, tzinfo=UTC) for month in (5, 6, 7)} <= made
    old = datetime(2025, 6, 1, tzinfo=UTC)  # no partition: in the default one until a check
    ingest(partitioned, stored("old", "c-1", old), stored("jan", "c-1", MONTHS[0]))
    ingest(partitioned, stored("feb", "c-1", MONTHS[1]), stored("apr", "c-1", MONTHS[3]))
    drain(factory)
    ingest(partitioned, stored("mar", "c-2", MONTHS[2]))  # queued: not applied yet
    assert ("old", partitions.DEFAULT) in {(e, table) for _, e, table in rows(partitioned)}
    partitions.maintain(factory, datetime(2026, 5, 20, tzinfo=UTC), None)
    assert ("old", "events_y2025m06") in {(e, table) for _, e, table in rows(partitioned)}

    partitions.maintain(factory, datetime(2026, 6, 10, tzinfo=UTC), 3)  # keep March on

    with Session(partitioned) as session:
        kept = partitions.months(session)
    assert kept[0] == MONTHS[2]  # January and February dropped
    assert [event_id for _, event_id, _ in rows(partitioned)] == ["apr", "mar"]
    assert ingest(partitioned, stored("jan", "c-1", MONTHS[0])) == []  # still a duplicate

    partitions.maintain(factory, datetime(2026, 7, 10, tzinfo=UTC), 3)  # March is due, queued
    with Session(partitioned) as session:
        assert partitions.months(session)[0] == MONTHS[2]
    drain(factory)
    partitions.maintain(factory, datetime(2026, 7, 10, tzinfo=UTC), 3)
    with Session(partitioned) as session:
        assert partitions.months(session)[0] == MONTHS[3]
    with Session(partitioned) as session:  # the portrait keeps what was applied
        days = session.scalar(text("SELECT count(*) FROM customer_days WHERE customer_id='c-1'"))
    assert days == 4

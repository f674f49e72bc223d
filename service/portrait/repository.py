"""SQL for the portrait: adding batch aggregates, reading them back, streaming raw events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import psycopg
from sqlalchemy import (
    BigInteger,
    BindParameter,
    Date,
    String,
    Table,
    TextClause,
    bindparam,
    case,
    delete,
    func,
    literal,
    null,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.db.bulk import bulk_upsert, is_postgresql
from service.db.queries import Shard
from service.db.types import UTCDateTime
from service.events.models import PendingEvent
from service.ml.activity import (
    DAY_COUNTERS,
    EVENT_COLUMNS,
    ITEM_COLUMNS,
    MAX_COUNTER,
    PRODUCT_COUNTERS,
    Activity,
)
from service.portrait.models import CustomerDay, CustomerProduct, Product

_DAYS: Table = CustomerDay.__table__  # type: ignore[assignment]
_PRODUCTS: Table = CustomerProduct.__table__  # type: ignore[assignment]
_CATALOGUE: Table = Product.__table__  # type: ignore[assignment]


def _adding(table: Table, counters: Sequence[str]) -> Any:
    """Stored + batch, checked: a sum past ``MAX_COUNTER`` becomes NULL, which the NOT NULL
    column refuses, failing the batch (the worker then isolates the event that overflows)
    where PostgreSQL would raise "bigint out of range" and SQLite would silently store a float."""
    largest = literal(MAX_COUNTER, BigInteger())
    return lambda excluded: {
        name: case(
            (table.c[name] > largest - excluded[name], null()),
            else_=table.c[name] + excluded[name],
        )
        for name in counters
    }


def _latest_text(excluded: Any) -> dict[str, Any]:
    """Keep the product text seen at the latest time (ties: the greater name), whatever the
    order in which batches arrive; the same rule as ``service.ml.activity``."""
    newer = tuple_(excluded.seen_at, func.coalesce(excluded.name, "")) > tuple_(
        _CATALOGUE.c.seen_at, func.coalesce(_CATALOGUE.c.name, "")
    )
    return {
        name: case((newer, excluded[name]), else_=_CATALOGUE.c[name])
        for name in ("name", "category", "seen_at")
    }


def add_activity(session: Session, activity: Activity) -> None:
    """Add a batch's aggregates to the stored ones. Aggregates come sorted by their keys, so
    concurrent batches lock rows in one order and cannot deadlock."""
    days = activity.days
    bulk_upsert(
        session,
        _DAYS,
        columns=["customer_id", "day", *DAY_COUNTERS],
        rows=days.assign(day=pd.to_datetime(days["day"], unit="D")),
        conflict=["customer_id", "day"],
        update=_adding(_DAYS, DAY_COUNTERS),
    )
    bulk_upsert(
        session,
        _PRODUCTS,
        columns=["customer_id", "sku", *PRODUCT_COUNTERS],
        rows=activity.products,
        conflict=["customer_id", "sku"],
        update=_adding(_PRODUCTS, PRODUCT_COUNTERS),
    )
    catalogue = activity.catalogue
    bulk_upsert(
        session,
        _CATALOGUE,
        columns=["sku", "name", "category", "seen_at"],
        rows=catalogue.assign(seen_at=pd.to_datetime(catalogue["seen_at"], unit="s", utc=True)),
        conflict=["sku"],
        update=_latest_text,
    )


# Whole epoch seconds of a timestamp column, floored, as SQLite's strftime and Python's int() do
# (PostgreSQL's CAST rounds, which put an event in the last half second before a cut-off after
# it); and money as integer ten-thousandths (SQLite stores it so already).
_PG_SECONDS = "CAST(FLOOR(EXTRACT(EPOCH FROM {})) AS BIGINT)"
_SQLITE_SECONDS = "CAST(strftime('%s', {}) AS INTEGER)"
_PG_UNITS = "CAST(COALESCE({}, 0) * 10000 AS BIGINT)"

# The stored aggregates as flat rows, days as integers since 1970-01-01 and times as whole epoch
# seconds (as ``service.ml.activity`` has them), read straight from the driver: building frames
# from SQLAlchemy rows cost more than the query.
_ACTIVITY_SQL = {
    "postgresql": {
        "day": "e.day - DATE '1970-01-01'",
        "seconds": _PG_SECONDS.format("p.seen_at"),
    },
    "sqlite": {
        "day": "CAST(julianday(e.day) - 2440587.5 AS INTEGER)",
        "seconds": _SQLITE_SECONDS.format("p.seen_at"),
    },
}


def load_activity(session: Session, customer_ids: Sequence[str] | None = None) -> Activity:
    """The stored aggregates of some customers (all when ``customer_ids`` is None), with the
    catalogue rows of the products they touched (``seen_at`` included, so the result combines
    with other aggregates: ``Activity.combine``)."""
    where, parameters = "1 = 1", []
    chunk: int | None = 250_000
    if customer_ids is not None:
        where, listed = _of_customers(session, customer_ids)
        parameters, chunk = [listed], None
    sql = _ACTIVITY_SQL[session.get_bind().dialect.name]
    counters = ", ".join(f"e.{name}" for name in DAY_COUNTERS)
    queries = {
        "days": (
            f"SELECT e.customer_id, {sql['day']}, {counters} FROM customer_days e WHERE {where}",
            ["customer_id", "day", *DAY_COUNTERS],
        ),
        "products": (
            f"SELECT e.customer_id, e.sku, e.bought, e.viewed FROM customer_products e "
            f"WHERE {where}",
            ["customer_id", "sku", *PRODUCT_COUNTERS],
        ),
        "catalogue": (
            f"SELECT p.sku, p.name, p.category, {sql['seconds']} FROM products p WHERE p.sku IN "
            f"(SELECT e.sku FROM customer_products e WHERE {where})",
            ["sku", "name", "category", "seen_at"],
        ),
    }
    empty = Activity.empty()
    frames = {}
    for name, (query, columns) in queries.items():
        chunks = list(_frames(session, query, columns, parameters, chunk))
        frames[name] = pd.concat(chunks, ignore_index=True) if chunks else getattr(empty, name)
    return Activity(frames["days"], frames["products"], frames["catalogue"])


# Events and their line items as flat rows (see EVENT_COLUMNS / ITEM_COLUMNS), computed in SQL
# (seconds and money as above, the items unnested by the database). No per-event Python work,
# which for millions of events is what made reading them slow.
_FRAME_SQL = {
    "postgresql": {
        "events": f"SELECT seq, customer_id, type, {_PG_SECONDS.format('occurred_at')}, "
        f"{_PG_UNITS.format('amount')} FROM events e WHERE {{where}}",
        "items": "SELECT e.seq, e.customer_id, e.type, "
        f"{_PG_SECONDS.format('e.occurred_at')}, "
        "i.sku, i.name, i.category, i.quantity FROM events e CROSS JOIN LATERAL "
        "jsonb_to_recordset(CASE WHEN jsonb_typeof(e.items) = 'array' THEN e.items "
        "ELSE '[]'::jsonb END) AS i(sku text, name text, category text, quantity int) "
        "WHERE {where}",
    },
    "sqlite": {
        "events": f"SELECT seq, customer_id, type, {_SQLITE_SECONDS.format('occurred_at')}, "
        "COALESCE(amount, 0) FROM events e WHERE {where}",
        "items": "SELECT e.seq, e.customer_id, e.type, "
        f"{_SQLITE_SECONDS.format('e.occurred_at')}, "
        "json_extract(j.value, '$.sku'), json_extract(j.value, '$.name'), "
        "json_extract(j.value, '$.category'), json_extract(j.value, '$.quantity') "
        "FROM events e, json_each(CASE WHEN json_type(e.items) = 'array' THEN e.items "
        "ELSE '[]' END) j WHERE {where}",
    },
}


def _frames(
    session: Session,
    sql: str,
    columns: list[str],
    parameters: Sequence[BindParameter[Any]],
    chunk: int | None,
) -> Iterator[pd.DataFrame]:
    """The rows as frames of ``chunk`` rows, or as one frame (``chunk`` None: a read bounded by
    the customers or events it lists)."""
    statement = text(sql).bindparams(*parameters)
    if is_postgresql(session):
        yield from _fetched_frames(session, statement, columns, chunk)
        return
    if chunk is None:
        yield pd.DataFrame([tuple(row) for row in session.execute(statement)], columns=columns)
        return
    result = session.execute(statement.execution_options(yield_per=chunk))
    for partition in result.partitions(chunk):
        yield pd.DataFrame([tuple(row) for row in partition], columns=columns)


def _fetched_frames(
    session: Session, statement: TextClause, columns: list[str], chunk: int | None
) -> Iterator[pd.DataFrame]:
    """PostgreSQL, straight from the driver (SQLAlchemy's rows cost more than the query): in
    chunks through a server-side cursor, ``chunk`` rows a round trip (SQLAlchemy's buffering
    fetched ~100 rows a trip, which dominated reading millions of events); a bounded read in one
    round trip (a server-side cursor takes three: declare, fetch, close, which made up most of
    reading a worker's batch of 100 customers). The driver's errors are wrapped as SQLAlchemy's
    would be, so a statement timeout or a hung server answers 503 like any other query."""
    dialect = session.get_bind().dialect
    compiled = statement.compile(dialect=dialect)
    raw: Any = session.connection().connection.driver_connection
    try:
        if chunk is None:
            with raw.cursor(binary=True) as cursor:
                cursor.execute(str(compiled), compiled.params)
                yield pd.DataFrame(cursor.fetchall(), columns=columns)
            return
        with raw.cursor(name="portrait_frames", binary=True) as cursor:
            cursor.execute(str(compiled), compiled.params)
            while rows := cursor.fetchmany(chunk):
                yield pd.DataFrame(rows, columns=columns)
    except psycopg.Error as error:  # as SQLAlchemy would have wrapped it: a timeout is a 503
        raise DBAPIError.instance(
            str(compiled),
            None,
            error,
            psycopg.Error,
            hide_parameters=True,
            dialect=dialect,
            connection_invalidated=raw.closed,
        ) from error


_NOT_DEAD = "NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.seq = e.seq)"
_QUEUED = "EXISTS (SELECT 1 FROM pending_events p WHERE p.seq = e.seq)"


def _of_customers(session: Session, customer_ids: Sequence[str]) -> tuple[str, BindParameter[Any]]:
    """``e.customer_id`` among the listed: one array parameter on PostgreSQL, a list on SQLite."""
    if is_postgresql(session):
        array = bindparam("customers", list(customer_ids), type_=postgresql.ARRAY(String()))
        return "e.customer_id = ANY(:customers)", array
    return "e.customer_id IN :customers", bindparam("customers", list(customer_ids), expanding=True)


def _moment(name: str, moment: datetime) -> BindParameter[Any]:
    return bindparam(name, moment, type_=UTCDateTime())


def event_frames(
    session: Session,
    *,
    until: datetime,
    customer_ids: Sequence[str] | None = None,
    customer_range: tuple[str, str] | None = None,
    shard: Shard | None = None,
    chunk: int = 250_000,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Events at or before ``until`` (of the listed customers, of the customers with ids in a
    range, of a shard's customers, or of all), as (event frame, item frame) chunks of up to
    ``chunk`` rows (one of each for listed customers); an item chunk need not belong to the event
    chunk beside it. Dead letters (``service.events.models.DeadLetter``) are left out: they
    count nowhere until retried."""
    where = f"e.occurred_at <= :until AND {_NOT_DEAD}"
    parameters: list[BindParameter[Any]] = [_moment("until", until)]
    bounded: int | None = chunk
    if customer_ids is not None:
        clause, listed = _of_customers(session, customer_ids)
        where += f" AND {clause}"
        parameters.append(listed)
        bounded = None
    if customer_range is not None:
        where += " AND e.customer_id BETWEEN :first AND :last"
        parameters.append(bindparam("first", customer_range[0], type_=String()))
        parameters.append(bindparam("last", customer_range[1], type_=String()))
    if shard is not None:
        clause, values = shard.holds("e.customer_id")
        where += f" AND {clause}"
        parameters.extend(values)
    return _both_frames(session, where, parameters, bounded)


def queued_frames(
    session: Session, customer_ids: Sequence[str], *, until: datetime
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """The listed customers' events at or before ``until`` that no worker has applied yet
    (queued, so not in the stored aggregates), like ``event_frames``. None are older than the
    oldest queued event, which bounds the read to the event partitions from its month on (the
    queue is usually seconds old); with nothing queued, nothing is read."""
    oldest = session.scalar(select(func.min(PendingEvent.occurred_at)))
    if oldest is None:
        return iter(())
    clause, listed = _of_customers(session, customer_ids)
    where = f"{clause} AND e.occurred_at BETWEEN :oldest AND :until AND {_QUEUED}"
    moments = [_moment("oldest", oldest), _moment("until", until)]
    return _both_frames(session, where, [listed, *moments], None)


def applied_frames_after(
    session: Session, customer_ids: Sequence[str], *, after: datetime
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """The listed customers' events after ``after`` that are in the stored aggregates (neither
    queued nor dead letters), like ``event_frames``."""
    clause, listed = _of_customers(session, customer_ids)
    where = f"{clause} AND e.occurred_at > :after AND NOT {_QUEUED} AND {_NOT_DEAD}"
    return _both_frames(session, where, [listed, _moment("after", after)], None)


# Each listed customer's latest events at or before a moment, with whether the event has items
# and its first item's category (what the event sequences read of items). Ordered as the
# sequences are, by whole epoch second then seq: PostgreSQL walks the (customer_id, occurred_at)
# index backwards to the (count + 1)-th latest event and takes every event from the start of
# that second on (ties within a second included); SQLite numbers the rows.
# On PostgreSQL the walk starts no earlier than the latest day before the moment's day from which
# on the customer has count + 1 events (``customer_days`` counts them), or their first day with
# events: events are partitioned by month, and the bound lets each customer's walk skip the
# months before it (run-time pruning) instead of descending every month's index, which made
# this read 11 times slower over 17 months (bench/partitions.py). The days count applied
# events only: a queued event older than every applied one of its customer is read once applied
# (which marks the customer stale).
# The customers come as a sub-select: given as a constant array, PostgreSQL 15 spent 3.8 s
# starting this plan over 28 monthly partitions, against 0.3 ms for the same array computed.
_RECENT_SQL = {
    "postgresql": "SELECT e.seq, e.customer_id, e.type, "
    f"{_PG_SECONDS.format('e.occurred_at')}, {_PG_UNITS.format('e.amount')}, "
    "CASE WHEN jsonb_typeof(e.items) = 'array' THEN jsonb_array_length(e.items) > 0 "
    "ELSE false END, "
    "CASE WHEN jsonb_typeof(e.items) = 'array' THEN e.items -> 0 ->> 'category' END "
    "FROM unnest((SELECT :customers)) AS c(id) CROSS JOIN LATERAL (SELECT COALESCE(CAST(COALESCE(("
    "SELECT r.day FROM (SELECT d.day, sum(d.events) OVER (ORDER BY d.day DESC) AS total "
    "FROM customer_days d WHERE d.customer_id = c.id AND d.day < :until_day "
    "ORDER BY d.day DESC LIMIT :count + 1) r WHERE r.total > :count ORDER BY r.day DESC LIMIT 1"
    "), (SELECT min(d.day) FROM customer_days d WHERE d.customer_id = c.id)) AS timestamp) "
    "AT TIME ZONE 'UTC', '-infinity') AS since) b CROSS JOIN LATERAL ("
    "SELECT * FROM events e WHERE e.customer_id = c.id AND e.occurred_at <= :until "
    f"AND e.occurred_at >= b.since AND {_NOT_DEAD} AND e.occurred_at >= COALESCE(("
    "SELECT date_trunc('second', e.occurred_at) FROM events e WHERE e.customer_id = c.id "
    f"AND e.occurred_at <= :until AND e.occurred_at >= b.since AND {_NOT_DEAD} "
    "ORDER BY e.occurred_at DESC OFFSET :count LIMIT 1), '-infinity')) e",
    "sqlite": "SELECT seq, customer_id, type, seconds, amount, has_item, category FROM ("
    "SELECT e.seq, e.customer_id, e.type, "
    f"{_SQLITE_SECONDS.format('e.occurred_at')} AS seconds, COALESCE(e.amount, 0) AS amount, "
    "CASE WHEN json_type(e.items) = 'array' THEN json_array_length(e.items) > 0 ELSE 0 END "
    "AS has_item, CASE WHEN json_type(e.items) = 'array' "
    "THEN json_extract(e.items, '$[0].category') END AS category, "
    "ROW_NUMBER() OVER (PARTITION BY e.customer_id ORDER BY "
    f"{_SQLITE_SECONDS.format('e.occurred_at')} DESC, e.seq DESC) AS latest "
    f"FROM events e WHERE e.customer_id IN :customers AND e.occurred_at <= :until AND {_NOT_DEAD}"
    ") WHERE latest <= :count + 1",
}


def recent_events(
    session: Session, customer_ids: Sequence[str], *, until: datetime, count: int
) -> tuple[pd.DataFrame, pd.Series]:
    """Each listed customer's latest ``count`` events at or before ``until`` and the one before
    them (its time gives the oldest one's gap), as an event frame (``EVENT_COLUMNS``; a few more
    events where several share a second), and the category of each one's first item, by seq
    (events without items absent; None where the item has no category)."""
    _, listed = _of_customers(session, list(dict.fromkeys(customer_ids)))  # unnest keeps repeats
    sql = _RECENT_SQL[session.get_bind().dialect.name]
    columns = [*EVENT_COLUMNS, "has_item", "category"]
    parameters = [listed, _moment("until", until), bindparam("count", count)]
    if is_postgresql(session):
        parameters.append(bindparam("until_day", until.astimezone(UTC).date(), type_=Date()))
    rows = next(_frames(session, sql, columns, parameters, None))
    with_items = rows[rows["has_item"].astype(bool)]
    categories = pd.Series(with_items["category"].to_numpy(), index=with_items["seq"].to_numpy())
    return rows[EVENT_COLUMNS], categories


_LATEST_ORDERS_SQL = {
    "postgresql": f"SELECT e.seq, {_PG_SECONDS.format('e.occurred_at')} "
    "FROM unnest((SELECT :customers)) AS c(id) CROSS JOIN LATERAL ("
    "SELECT e.seq, e.occurred_at FROM events e WHERE e.customer_id = c.id "
    "AND e.type = 'purchase' AND COALESCE(e.amount, 0) >= 0 "
    f"AND e.occurred_at > :since AND e.occurred_at <= :until AND {_NOT_DEAD} "
    "ORDER BY date_trunc('second', e.occurred_at) DESC, e.seq DESC LIMIT :count) e",
    "sqlite": "SELECT seq, seconds FROM (SELECT e.seq, "
    f"{_SQLITE_SECONDS.format('e.occurred_at')} AS seconds, "
    "ROW_NUMBER() OVER (PARTITION BY e.customer_id ORDER BY "
    f"{_SQLITE_SECONDS.format('e.occurred_at')} DESC, e.seq DESC) AS latest "
    "FROM events e WHERE e.customer_id IN :customers AND e.type = 'purchase' "
    "AND COALESCE(e.amount, 0) >= 0 AND e.occurred_at > :since AND e.occurred_at <= :until "
    f"AND {_NOT_DEAD}) WHERE latest <= :count",
}


def latest_orders(
    session: Session, customer_ids: Sequence[str], *, since: datetime, until: datetime, count: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each listed customer's latest ``count`` orders after ``since`` and at or before
    ``until`` (purchases that are not refunds: ``service.ml.activity`` reads a negative one as
    one) and their items, as an event frame and an item frame; latest by second, then number,
    as ``event_sequences`` orders events."""
    _, listed = _of_customers(session, list(dict.fromkeys(customer_ids)))
    parameters = [
        listed,
        _moment("since", since),
        _moment("until", until),
        bindparam("count", count),
    ]
    sql = _LATEST_ORDERS_SQL[session.get_bind().dialect.name]
    found = next(_frames(session, sql, ["seq", "seconds"], parameters, None))
    if found.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS), pd.DataFrame(columns=ITEM_COLUMNS)
    first = datetime.fromtimestamp(int(found["seconds"].min()), UTC)
    last = datetime.fromtimestamp(int(found["seconds"].max()) + 1, UTC)  # seconds are floored
    frames = list(event_frames_by_seq(session, found["seq"].astype(int).tolist(), first, last))
    events = pd.concat([e for e, _ in frames], ignore_index=True)
    items = pd.concat([i for _, i in frames], ignore_index=True)
    return events, items


def event_frames_by_seq(
    session: Session, seqs: Sequence[int], first: datetime, last: datetime
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """The events with these sequence numbers (a worker's claimed batch), which occurred from
    ``first`` to ``last``, like ``event_frames``. The times confine the read to the event
    partitions of those months: by number alone, PostgreSQL searches every month's. PostgreSQL
    gets the numbers as one array parameter; SQLite, which has no arrays, as a list."""
    within = "e.occurred_at BETWEEN :first AND :last"
    moments = [_moment("first", first), _moment("last", last)]
    if is_postgresql(session):
        seq_array = bindparam("seqs", list(seqs), type_=postgresql.ARRAY(BigInteger()))
        return _both_frames(
            session, f"e.seq = ANY(:seqs) AND {within}", [seq_array, *moments], None
        )
    listed = ", ".join(str(int(seq)) for seq in seqs)  # integers only: safe to inline
    return _both_frames(session, f"e.seq IN ({listed}) AND {within}", moments, None)


def _both_frames(
    session: Session, where: str, parameters: Sequence[BindParameter[Any]], chunk: int | None
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """The events, then their items (not read when there are no events: usually so for the
    corrections that ``service.portrait.service.activity_at`` reads)."""
    sql = _FRAME_SQL[session.get_bind().dialect.name]
    events = _frames(session, sql["events"].format(where=where), EVENT_COLUMNS, parameters, chunk)
    empty_events, empty_items = (
        pd.DataFrame(columns=EVENT_COLUMNS),
        pd.DataFrame(columns=ITEM_COLUMNS),
    )
    read = 0
    for event_frame in events:
        read += len(event_frame)
        yield event_frame, empty_items
    if not read:
        return
    for item_frame in _frames(
        session, sql["items"].format(where=where), ITEM_COLUMNS, parameters, chunk
    ):
        yield empty_events, item_frame


def add_descriptions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Catalogue rows (sku, name, category, description): the description is always taken; name
    and category only where the events have not named the product (their text is as sold)."""
    never = datetime.fromtimestamp(0, UTC)
    bulk_upsert(
        session,
        _CATALOGUE,
        columns=["sku", "name", "category", "description"],
        rows=sorted(rows, key=lambda row: row["sku"]),
        constants={"seen_at": never},
        conflict=["sku"],
        update=lambda excluded: {
            "description": excluded.description,
            "name": func.coalesce(_CATALOGUE.c.name, excluded.name),
            "category": func.coalesce(_CATALOGUE.c.category, excluded.category),
        },
    )


def clear_activity(session: Session) -> None:
    """Forget all aggregates (product descriptions stay), before a rebuild from the events."""
    session.execute(delete(_DAYS))
    session.execute(delete(_PRODUCTS))
    never = datetime.fromtimestamp(0, UTC)
    session.execute(update(_CATALOGUE).values(name=None, category=None, seen_at=never))

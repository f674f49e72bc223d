"""SQL for the portrait: adding batch aggregates, reading them back, streaming raw events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Table, case, delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from service.db.bulk import bulk_upsert
from service.events.models import Event
from service.ml.activity import DAY_COUNTERS, EPOCH, PRODUCT_COUNTERS, Activity, EventRecord
from service.portrait.models import CustomerDay, CustomerProduct, Product

_DAYS: Table = CustomerDay.__table__  # type: ignore[assignment]
_PRODUCTS: Table = CustomerProduct.__table__  # type: ignore[assignment]
_CATALOGUE: Table = Product.__table__  # type: ignore[assignment]


def _adding(table: Table, counters: Sequence[str]) -> Any:
    return lambda excluded: {name: table.c[name] + excluded[name] for name in counters}


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
    """Add a batch's aggregates to the stored ones. Rows go in key order, so concurrent batches
    lock rows in one order and cannot deadlock."""
    days = activity.days.sort_values(["customer_id", "day"])
    day_rows = days.assign(day=[EPOCH + timedelta(days=int(d)) for d in days["day"]])
    bulk_upsert(
        session,
        _DAYS,
        columns=["customer_id", "day", *DAY_COUNTERS],
        rows=day_rows.to_dict("records"),
        conflict=["customer_id", "day"],
        update=_adding(_DAYS, DAY_COUNTERS),
    )
    products = activity.products.sort_values(["customer_id", "sku"])
    bulk_upsert(
        session,
        _PRODUCTS,
        columns=["customer_id", "sku", *PRODUCT_COUNTERS],
        rows=products.to_dict("records"),
        conflict=["customer_id", "sku"],
        update=_adding(_PRODUCTS, PRODUCT_COUNTERS),
    )
    catalogue = activity.catalogue.sort_values("sku")
    catalogue = (
        catalogue.assign(
            seen_at=[datetime.fromtimestamp(int(s), UTC) for s in catalogue["seen_at"]]
        )
        .astype(object)
        .where(catalogue.notna(), None)
    )
    bulk_upsert(
        session,
        _CATALOGUE,
        columns=["sku", "name", "category", "seen_at"],
        rows=catalogue.to_dict("records"),
        conflict=["sku"],
        update=_latest_text,
    )


def load_activity(session: Session, customer_ids: Sequence[str] | None = None) -> Activity:
    """The stored aggregates of some customers (all when ``customer_ids`` is None)."""
    days_query = select(_DAYS)
    products_query = select(_PRODUCTS)
    if customer_ids is not None:
        days_query = days_query.where(_DAYS.c.customer_id.in_(customer_ids))
        products_query = products_query.where(_PRODUCTS.c.customer_id.in_(customer_ids))
    days = pd.DataFrame(session.execute(days_query).all(), columns=list(_DAYS.c.keys()))
    days["day"] = [(d - EPOCH).days for d in days["day"]]
    products = pd.DataFrame(session.execute(products_query).all(), columns=list(_PRODUCTS.c.keys()))
    catalogue_query = select(_CATALOGUE.c.sku, _CATALOGUE.c.name, _CATALOGUE.c.category)
    if customer_ids is not None:
        catalogue_query = catalogue_query.where(_CATALOGUE.c.sku.in_(products["sku"].tolist()))
    catalogue = pd.DataFrame(
        session.execute(catalogue_query).all(), columns=["sku", "name", "category"]
    )
    empty = Activity.empty()
    return Activity(
        days=days if len(days) else empty.days,
        products=products if len(products) else empty.products,
        catalogue=catalogue,
    )


def events(
    session: Session, *, until: datetime, customer_id: str | None = None, chunk: int = 50_000
) -> Iterator[list[EventRecord]]:
    """Events that occurred at or before ``until``, streamed in lists of ``chunk``."""
    query = select(Event.customer_id, Event.type, Event.occurred_at, Event.amount, Event.items)
    query = query.where(Event.occurred_at <= until)
    if customer_id is not None:
        query = query.where(Event.customer_id == customer_id)
    result = session.execute(query.execution_options(yield_per=chunk))
    for partition in result.partitions():
        yield [EventRecord(*row) for row in partition]


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

"""A simulated shop as an in-memory event log (observed and future events together), for
training tests and the accuracy benchmarks: no database, and the future is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from service.ml.activity import EVENT_COLUMNS, ITEM_COLUMNS, MONEY_UNITS
from service.ml.examples import EventLog
from service.simulator.config import ShopConfig
from service.simulator.shop import Shop

SMALL_SHOP = ShopConfig(customers=1_200, days=400, horizon_days=200, seed=5, chunk_customers=600)


def shop_log(
    config: ShopConfig = SMALL_SHOP,
) -> tuple[EventLog, dict[str, Any], dict[str, set[str]]]:
    """Every event (observed and future) as a log, with the merged profiles and sources."""
    events: list[tuple[Any, ...]] = []
    items: list[tuple[Any, ...]] = []
    profiles: dict[str, dict[str, Any]] = {}
    sources: dict[str, set[str]] = {}
    for chunk in Shop(config).chunks():
        for raw in chunk.events + chunk.future:
            seq = len(events)
            seconds = int(datetime.fromisoformat(raw["occurred_at"]).timestamp())
            amount = int(Decimal(raw.get("amount", "0")) * MONEY_UNITS)
            events.append((seq, raw["customer_id"], raw["type"], seconds, amount))
            for item in raw.get("items") or []:
                items.append(
                    (
                        seq,
                        raw["customer_id"],
                        raw["type"],
                        seconds,
                        item["sku"],
                        item.get("name"),
                        item.get("category"),
                        item.get("quantity"),
                    )
                )
        for update in chunk.profiles:
            profiles.setdefault(update["customer_id"], {}).update(update["attributes"])
            sources.setdefault(update["customer_id"], set()).add(update["source"])
    log = EventLog(
        pd.DataFrame(events, columns=EVENT_COLUMNS), pd.DataFrame(items, columns=ITEM_COLUMNS)
    )
    return log, profiles, sources


def end_of_observation(config: ShopConfig = SMALL_SHOP) -> datetime:
    """The moment the observed events end and the known future begins."""
    start = datetime.combine(config.start, datetime.min.time(), UTC)
    return start + timedelta(days=config.days)

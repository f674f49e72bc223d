"""Writes a simulated shop to a folder, chunk by chunk (memory bounded by one chunk).

- ``events.jsonl``: observed events, one API event object a line (``clv import-events``, or
  ``POST /v1/events`` in batches);
- ``profiles.jsonl``: attribute updates, ``{"customer_id", "source", "attributes"}`` a line;
- ``truth.csv``: per customer, the latent parameters, the observed totals, the actual and the
  expected (oracle) orders and spend in the future window;
- ``catalogue.csv``: sku, name, category, description, list price (``clv import-catalogue``);
- ``future.jsonl`` (optional): the future window's events the truth summarises;
- ``shop.json``: the configuration and summary counts.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from service.simulator.catalogue import CATEGORIES
from service.simulator.config import ShopConfig
from service.simulator.shop import Shop

TRUTH_FIELDS = [
    "customer_id", "acquired_day", "alive_at_end", "death_day", "purchase_rate", "dropout_rate",
    "p", "nu", "mean_order_value", "acquisition_channel", "orders_observed", "spend_observed",
    "orders_future", "spend_future", "refunds_future", "expected_orders_future",
    "expected_spend_future",
]  # fmt: skip


def _write_lines(handle: TextIO, rows: list[dict[str, Any]]) -> None:
    handle.writelines(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)


def write_shop(
    config: ShopConfig,
    folder: Path,
    *,
    with_future: bool = False,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Simulate and write; returns the summary also written to shop.json."""
    folder.mkdir(parents=True, exist_ok=True)
    shop = Shop(config)
    _write_catalogue(shop, folder / "catalogue.csv")
    counts = {"customers": 0, "events": 0, "future_events": 0, "profiles": 0}
    with (
        (folder / "events.jsonl").open("w") as events,
        (folder / "profiles.jsonl").open("w") as profiles,
        (folder / "truth.csv").open("w", newline="") as truth_file,
        (folder / "future.jsonl").open("w") if with_future else nullcontext() as future,
    ):
        truth = csv.DictWriter(truth_file, fieldnames=TRUTH_FIELDS)
        truth.writeheader()
        for chunk in shop.chunks():
            _write_lines(events, chunk.events)
            _write_lines(profiles, chunk.profiles)
            if future is not None:
                _write_lines(future, chunk.future)
            truth.writerows(chunk.truth)
            counts["customers"] += len(chunk.truth)
            counts["events"] += len(chunk.events)
            counts["future_events"] += len(chunk.future)
            counts["profiles"] += len(chunk.profiles)
            if on_chunk:
                on_chunk(len(chunk.truth))
    summary = {"config": asdict(config), "counts": counts}
    (folder / "shop.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _write_catalogue(shop: Shop, path: Path) -> None:
    catalogue = shop.catalogue
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "name", "category", "description", "list_price"])
        for i, sku in enumerate(catalogue.skus):
            category = CATEGORIES[catalogue.category_index[i]].name
            row = [sku, catalogue.names[i], category, catalogue.descriptions[i]]
            writer.writerow([*row, f"{catalogue.list_prices[i]:.2f}"])

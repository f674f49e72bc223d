"""Batch scoring (``clv score``): every customer with an event at or before the as-of time,
in chunks of customers (memory bounded by a chunk), written to CSV as they are scored."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.events import repository as events
from service.ml.clv_model import SCORE_COLUMNS, ClvModel
from service.scoring.engine import unexplained_model
from service.scoring.value import ValueTerms
from service.training import data

CHUNK_CUSTOMERS = 20_000


def score_to_csv(
    session_factory: sessionmaker[Session],
    settings: Settings,
    model: ClvModel,
    version: str,
    *,
    as_of: datetime,
    horizon_days: int,
    out: Path,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Write one row per customer: customer_id, SCORE_COLUMNS (money values in the served
    terms of ``service.scoring.value``), model_version. Returns the count."""
    # carried from its trained horizon if needed
    model = unexplained_model(replace(model, horizon_days=horizon_days), settings)
    factors = ValueTerms.of(settings).factors(horizon_days)
    with session_factory() as session:
        customers = events.customers_until(session, as_of)
        profiles, sources = data.profiles(session, settings)
    written = 0
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", *SCORE_COLUMNS, "model_version"])
        for start in range(0, len(customers), CHUNK_CUSTOMERS):
            chunk = customers[start : start + CHUNK_CUSTOMERS]
            with session_factory() as session:
                log = data.event_log(session, as_of, customer_range=(chunk[0], chunk[-1]))
            examples = model.examples(log, profiles, sources, as_of)
            scores = model.predict(examples)
            scores[list(factors)] *= list(factors.values())
            scores = scores.round(4)
            for customer, row in zip(scores.index, scores.itertuples(index=False), strict=True):
                writer.writerow([customer, *row, version])
            written += len(scores)
            if on_chunk:
                on_chunk(len(scores))
    return written

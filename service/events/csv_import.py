"""``clv import-csv``: stream a CSV of orders into the event store, idempotently.

Rows are read lazily and written in chunks, so a file of millions of rows needs the memory of one
chunk. Each row goes through the same validation and the same idempotent insert as the API. A file
without an event id column gets ids derived from the row's mapped values, so importing the same
file again stores nothing new (and identical rows count as one event).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session, sessionmaker

from service.errors import InvalidRequestError
from service.events import service
from service.events.imports import CHUNK_ROWS, ImportSummary, ingest_stream
from service.events.models import EventType
from service.events.schemas import LENIENT_EVENT, EventCandidate, InvalidEvent


@dataclass(frozen=True)
class CsvMapping:
    """Which column holds what. Only customer and time are required."""

    customer: str
    time: str
    amount: str | None = None
    price: str | None = None
    quantity: str | None = None
    sku: str | None = None
    category: str | None = None
    event_id: str | None = None
    type: str | None = None
    time_format: str | None = None
    timezone: str = "UTC"
    default_type: EventType = EventType.purchase
    negative_as_refund: bool = False

    def columns(self) -> list[str]:
        named = [self.customer, self.time, self.amount, self.price, self.quantity, self.sku]
        named += [self.category, self.event_id, self.type]
        return [column for column in named if column]


class _RowError(ValueError):
    pass


def _decimal(raw: str, column: str) -> Decimal | None:
    if raw.strip() == "":
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise _RowError(f"{column}: {raw!r} is not a number") from None
    if not value.is_finite():
        raise _RowError(f"{column}: {raw!r} is not a finite number")
    return value


class _RowConverter:
    def __init__(self, mapping: CsvMapping) -> None:
        self.mapping = mapping
        try:
            self.zone = ZoneInfo(mapping.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidRequestError(f"unknown time zone {mapping.timezone!r}") from None

    def _time(self, raw: str) -> datetime:
        try:
            if self.mapping.time_format:
                parsed = datetime.strptime(raw.strip(), self.mapping.time_format)
            else:
                parsed = datetime.fromisoformat(raw.strip())
        except ValueError:
            expected = self.mapping.time_format or "ISO 8601"
            raise _RowError(f"{self.mapping.time}: cannot read {raw!r} as {expected}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.zone)

    def event(self, row: dict[str, str]) -> dict[str, Any]:
        m = self.mapping
        get = row.get
        quantity = _decimal(get(m.quantity, ""), m.quantity) if m.quantity else None
        price = _decimal(get(m.price, ""), m.price) if m.price else None
        amount = _decimal(get(m.amount, ""), m.amount) if m.amount else None
        if amount is None and price is not None:
            amount = price * (quantity if quantity is not None else 1)
        kind = get(m.type, "").strip() if m.type else ""
        kind = kind or m.default_type.value
        if m.negative_as_refund and amount is not None and amount < 0:
            kind, amount = EventType.refund.value, -amount
            quantity = -quantity if quantity is not None and quantity < 0 else quantity
            price = abs(price) if price is not None else None
        event: dict[str, Any] = {
            "event_id": (get(m.event_id, "") if m.event_id else "") or self._derived_id(row),
            "customer_id": get(m.customer, "").strip(),
            "type": kind,
            "occurred_at": self._time(get(m.time, "")),
            "amount": amount,
        }
        if m.sku and get(m.sku, "").strip():
            item: dict[str, Any] = {"sku": get(m.sku, "").strip()}
            if quantity is not None:
                item["quantity"] = quantity
            if price is not None:
                item["price"] = price
            if m.category and get(m.category, "").strip():
                item["category"] = get(m.category, "").strip()
            event["items"] = [item]
        return event

    def _derived_id(self, row: dict[str, str]) -> str:
        values = "\x1f".join(row.get(column, "") for column in self.mapping.columns())
        return "csv-" + hashlib.sha256(values.encode()).hexdigest()[:40]

    def candidate(self, row: dict[str, str]) -> EventCandidate:
        try:
            return LENIENT_EVENT.validate_python(self.event(row))
        except _RowError as error:
            return InvalidEvent(None, str(error))


def import_csv(
    lines: Iterable[str],
    mapping: CsvMapping,
    session_factory: sessionmaker[Session],
    rules: service.IngestRules,
    *,
    delimiter: str = ",",
    chunk_rows: int = CHUNK_ROWS,
    on_chunk: Callable[[ImportSummary], None] | None = None,
) -> ImportSummary:
    """Import the rows of ``lines``; each chunk is committed before the next is read."""
    reader = csv.DictReader(lines, delimiter=delimiter)
    missing = [column for column in mapping.columns() if column not in (reader.fieldnames or [])]
    if missing:
        found = ", ".join(reader.fieldnames or []) or "none"
        raise InvalidRequestError(
            f"column(s) {', '.join(missing)} not in the header (found: {found})"
        )
    converter = _RowConverter(mapping)
    # Line numbers assume one row a line; line 1 is the header.
    candidates = ((number, converter.candidate(row)) for number, row in enumerate(reader, 2))
    return ingest_stream(
        candidates, session_factory, rules, chunk_rows=chunk_rows, on_chunk=on_chunk
    )

"""Reading one row of a CSV export by its column mapping: numbers, time, type and line item.

Shared by the two ways ``clv import-csv`` makes events: one event a row
(``service.events.csv_import``), or one event an order of many rows (``service.events.csv_orders``).
A value that no event can carry raises ``RowError``; the row, or its order, is then rejected with
that reason while the rest of the file is imported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.errors import InvalidRequestError
from service.events.types import EventType


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
    order: str | None = None
    """Rows with the same value here (and the same customer) are one order, one event."""
    name: str | None = None
    """The product name of a line item."""
    cancel_prefix: str | None = None
    """Order ids starting with this are cancellations (refunds), e.g. ``C`` in Online Retail."""

    def columns(self) -> list[str]:
        """The columns the file must have."""
        return [*self.identity_columns(), *[c for c in (self.order, self.name) if c]]

    def identity_columns(self) -> list[str]:
        """The columns whose values a row-derived event id hashes, in the order ids were always
        derived in (so they stay stable). Not the name: it describes a row rather than tells it
        apart, and a re-run that adds ``--name-col`` must not store every row twice."""
        named = [self.customer, self.time, self.amount, self.price, self.quantity, self.sku]
        named += [self.category, self.event_id, self.type]
        return [column for column in named if column]

    def check(self) -> None:
        """Refuse flags that contradict each other, before any row is read."""
        if self.order and self.event_id:
            raise InvalidRequestError(
                "--event-id-col and --order-col exclude each other: an order's event id is "
                "derived from its order id and customer"
            )
        if self.cancel_prefix and not self.order:
            raise InvalidRequestError("--cancel-prefix needs --order-col (it matches order ids)")


def cell(row: dict[str, str], column: str | None) -> str:
    """The stripped value of ``column``; empty when the column is not mapped or the row short."""
    return (row.get(column) or "").strip() if column else ""


def derive_id(parts: Iterable[str]) -> str:
    """An event id from values that identify the event (a row's, an order's)."""
    return "csv-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


class RowError(ValueError):
    """A value of the row that no event can carry."""


def parse_decimal(raw: str, column: str) -> Decimal | None:
    """The number in ``raw``; None when it is blank."""
    if raw.strip() == "":
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise RowError(f"{column}: {raw!r} is not a number") from None
    if not value.is_finite():
        raise RowError(f"{column}: {raw!r} is not a finite number")
    return value


@dataclass(frozen=True)
class Line:
    """The money of one row: quantity, unit price, and its amount (the amount column, or else
    price x quantity, the quantity being 1 when absent)."""

    quantity: Decimal | None
    price: Decimal | None
    amount: Decimal | None

    def refunded(self) -> Line:
        """The same line as money given back: every value positive, as refund events carry it."""
        return Line(*(abs(v) if v is not None else None for v in self.values()))

    def values(self) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
        return self.quantity, self.price, self.amount


class RowReader:
    """Reads the mapped values of a row; built once per import."""

    def __init__(self, mapping: CsvMapping) -> None:
        self.mapping = mapping
        try:
            self.zone = ZoneInfo(mapping.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder of zones
            raise InvalidRequestError(f"unknown time zone {mapping.timezone!r}") from None

    def time(self, row: dict[str, str]) -> datetime:
        raw = cell(row, self.mapping.time)
        try:
            if self.mapping.time_format:
                parsed = datetime.strptime(raw, self.mapping.time_format)
            else:
                parsed = datetime.fromisoformat(raw)
        except ValueError:
            expected = self.mapping.time_format or "ISO 8601"
            raise RowError(f"{self.mapping.time}: cannot read {raw!r} as {expected}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.zone)

    def kind(self, row: dict[str, str]) -> str:
        """The event type: the type column's value, or the default type."""
        return cell(row, self.mapping.type) or self.mapping.default_type.value

    def line(self, row: dict[str, str]) -> Line:
        m = self.mapping
        quantity = self._number(row, m.quantity)
        price = self._number(row, m.price)
        amount = self._number(row, m.amount)
        if amount is None and price is not None:
            amount = price * (quantity if quantity is not None else 1)
        return Line(quantity, price, amount)

    def item(self, row: dict[str, str], line: Line) -> dict[str, Any] | None:
        """The row's line item, or None without a SKU (the row then only adds to the amount)."""
        m = self.mapping
        sku = cell(row, m.sku)
        if not sku:
            return None
        item: dict[str, Any] = {"sku": sku}
        if line.quantity is not None:
            item["quantity"] = line.quantity
        if line.price is not None:
            item["price"] = line.price
        for key, column in (("category", m.category), ("name", m.name)):
            if value := cell(row, column):
                item[key] = value
        return item

    def _number(self, row: dict[str, str], column: str | None) -> Decimal | None:
        return parse_decimal(row.get(column) or "", column) if column else None

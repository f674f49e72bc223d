"""Orders from line-level exports: the rows of one order become one purchase or refund event.

Shop exports (Shopify, the UCI Online Retail file) have one row per order LINE. With
``--order-col``, rows with the same order id and the same customer are one event: its items are
the rows (sku, quantity, price, category, name), its amount the sum of the rows' amount column or
else of quantity x price, its time the first row's. An order is a cancellation, stored as a
``refund`` of the positive amount, when its quantities are negative, when its id starts with
``--cancel-prefix``, or (with ``--negative-as-refund``) when its total is negative.

An order that cannot make a valid event (a row with an unreadable value, quantities of both signs,
a non-positive quantity, a negative price, more items than an event takes, no customer) is
rejected as a whole with the reason, reported at its first row's line: storing part of an order
would misstate what the customer spent.

Memory stays bounded: an order is held open only until ``OPEN_ORDERS`` other orders have had a
row since its last one, then emitted. Rows of one order must therefore be near each other, as in
files sorted by order id or by time (Online Retail has one order split by another, a few rows
apart). Rows of an order that come back after it was emitted make a second event with the
same id, which the import counts as a duplicate and does not store.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from service.events.csv_lines import CsvMapping, Line, RowError, RowReader, cell, derive_id
from service.events.schemas import LENIENT_EVENT, EventCandidate, InvalidEvent
from service.events.types import EventType

OPEN_ORDERS = 256


@dataclass
class OrderRows:
    """The rows of one order, with the line of its first row (to report it by)."""

    line: int
    order_id: str
    customer: str
    rows: list[dict[str, str]] = field(default_factory=list)


def order_event_id(order_id: str, customer: str, kind: str) -> str:
    """One id for the whole order: the same on every run, whatever the order's rows hold."""
    return derive_id(("order", order_id, customer, kind))


def group_orders(
    rows: Iterable[tuple[int, dict[str, str]]],
    mapping: CsvMapping,
    open_orders: int = OPEN_ORDERS,
) -> Iterator[OrderRows]:
    """Group (line number, row) pairs into orders, holding at most ``open_orders`` open.

    The order least recently given a row is emitted when one more would be open. A row without
    an order id is an order of its own (rejected later, with its line).
    """
    held: OrderedDict[tuple[str, str], OrderRows] = OrderedDict()
    for line, row in rows:
        key = (cell(row, mapping.order), cell(row, mapping.customer))
        if not key[0]:
            yield OrderRows(line, *key, [row])
            continue
        order = held.get(key)
        if order is None:
            order = held[key] = OrderRows(line, *key)
            if len(held) > open_orders:
                yield held.popitem(last=False)[1]
        else:
            held.move_to_end(key)
        order.rows.append(row)
    yield from held.values()


class OrderConverter:
    """Turns the rows of an order into one event candidate."""

    def __init__(self, mapping: CsvMapping) -> None:
        self.mapping = mapping
        self.reader = RowReader(mapping)

    def candidate(self, order: OrderRows) -> EventCandidate:
        try:
            return LENIENT_EVENT.validate_python(self.event(order))
        except RowError as error:
            return InvalidEvent(None, str(error))

    def event(self, order: OrderRows) -> dict[str, Any]:
        if not order.order_id:
            raise RowError(f"{self.mapping.order}: empty; with --order-col every row needs one")
        lines = [self.reader.line(row) for row in order.rows]
        refund = self._is_cancellation(order.order_id, lines)
        kind = EventType.refund.value if refund else self.reader.kind(order.rows[0])
        if refund:
            lines = [line.refunded() for line in lines]
        event: dict[str, Any] = {
            "event_id": order_event_id(order.order_id, order.customer, kind),
            "customer_id": order.customer,
            "type": kind,
            "occurred_at": self.reader.time(order.rows[0]),
            "amount": self._total(lines),
        }
        items = [self.reader.item(row, line) for row, line in zip(order.rows, lines, strict=True)]
        if any(items):
            event["items"] = [item for item in items if item]
        return event

    def _is_cancellation(self, order_id: str, lines: list[Line]) -> bool:
        positive = {line.quantity > 0 for line in lines if line.quantity}
        if len(positive) > 1:
            raise RowError(f"{self.mapping.quantity}: the order has positive and negative lines")
        prefix = self.mapping.cancel_prefix
        if (prefix and order_id.startswith(prefix)) or positive == {False}:
            return True
        total = self._total(lines)
        return self.mapping.negative_as_refund and total is not None and total < 0

    def _total(self, lines: list[Line]) -> Decimal | None:
        """The sum of the lines' amounts; None when no line has one (the event is then refused
        for want of an amount), an error when only some have one."""
        amounts = [line.amount for line in lines if line.amount is not None]
        if not amounts:
            return None
        if len(amounts) < len(lines):
            column = self.mapping.amount or self.mapping.price
            missing = len(lines) - len(amounts)
            raise RowError(f"{column}: empty on {missing} of the order's {len(lines)} rows")
        return sum(amounts, Decimal(0))

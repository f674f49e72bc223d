"""Orders from line-level exports: the rows of one order become one purchase or refund event.

Shop exports (Shopify, the UCI Online Retail file) have one row per order LINE. With
``--order-col``, rows with the same order id and the same customer are one event: its items are
the rows (sku, quantity, price, category, name), its amount the sum of the rows' amount column or
else of quantity x price, its time the first row's. An order is a cancellation, stored as a
``refund`` of the positive amount, when its quantities are negative, when its id starts with
``--cancel-prefix``, or (with ``--negative-as-refund``) when its total is negative.

A refund's amount is the order's net total made positive: a cancelled line of -100 beside a
retained fee of +20 gives back 80, not 120.

An order that cannot make a valid event (a row with an unreadable value, quantities of both signs,
a non-positive quantity, a negative price, more items than an event takes, no customer) is
rejected as a whole with the reason, reported at its first row's line: storing part of an order
would misstate what the customer spent.

Memory stays bounded: an order is held open only until ``OPEN_ORDERS`` other orders have had a
row since its last one, then emitted. Rows of one order must therefore be near each other, as in
files sorted by order id or by time (Online Retail has one order split by another, a few rows
apart). A row of an order that comes back after the order was emitted is rejected with its line
and the reason (the order's earlier rows were already imported): a second event with the same id
would have been counted as a duplicate and lost without a word. For that a hash of each emitted
order's key is kept: about 66 MiB for a million orders.
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
    late: bool = False
    """A row of an order emitted before it (``group_orders``): rejected."""


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
    emitted: set[int] = set()
    for line, row in rows:
        key = (cell(row, mapping.order), cell(row, mapping.customer))
        if not key[0]:
            yield OrderRows(line, *key, [row])
            continue
        order = held.get(key)
        if order is None:
            if hash(key) in emitted:
                yield OrderRows(line, *key, [row], late=True)
                continue
            order = held[key] = OrderRows(line, *key)
            if len(held) > open_orders:
                done = held.popitem(last=False)
                emitted.add(hash(done[0]))
                yield done[1]
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
        m = self.mapping
        if not order.order_id:
            raise RowError(f"{m.order}: empty; with --order-col every row needs one")
        if order.late:
            raise RowError(
                f"{m.order}: order {order.order_id!r} of customer {order.customer!r} continues "
                f"here after {OPEN_ORDERS} other orders, and its earlier rows were imported as "
                "the whole order; sort the file by order id (or time) and import it again"
            )
        lines = [self.reader.line(row) for row in order.rows]
        if any(line.price is not None and line.price < 0 for line in lines):
            raise RowError(f"{m.price}: a negative price; an order's lines need 0 or more")
        refund = self._is_cancellation(order.order_id, lines)
        kind = EventType.refund.value if refund else self.reader.kind(order.rows[0])
        total = self._total(lines)
        if refund:
            lines = [line.refunded() for line in lines]
            total = abs(total) if total is not None else None
        event: dict[str, Any] = {
            "event_id": order_event_id(order.order_id, order.customer, kind),
            "customer_id": order.customer,
            "type": kind,
            "occurred_at": self.reader.time(order.rows[0]),
            "amount": total,
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

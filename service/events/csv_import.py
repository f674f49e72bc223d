"""``clv import-csv``: stream a CSV of orders into the event store, idempotently.

Rows are read lazily and written in chunks, so a file of millions of rows needs the memory of one
chunk. Each event goes through the same validation and the same idempotent insert as the API.

Two shapes of file:

- one event a row (the default): a row's amount is its amount column, or price x quantity;
- one event an order (``--order-col``): the rows of one order, as line-level shop exports have
  them, become one purchase or refund event (``service.events.csv_orders``).

Event ids, when the file has no event id column, are derived so that importing the same file
again stores nothing new, and so that two distinct rows or orders never share one:

- with ``--order-col``: a hash of the order id, the customer and the event type, so the order is
  one event however many rows it has, and a re-run (or a re-export with other columns) finds it;
- without: a hash of the row's mapped values (not the product name), and, from the second of a
  set of identical rows on, of its ordinal among them (identical rows are distinct lines of the
  file, e.g. the same product twice in one order, and each counts). The first of them keeps the
  hash of its values alone, as before ordinals were added, so files imported earlier still
  match. Ordinals are counted among the last ``RECENT_ROWS`` distinct rows, to bound memory:
  identical rows further apart than that share an id, and only the first is stored.
"""

from __future__ import annotations

import csv
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.errors import InvalidRequestError
from service.events import service
from service.events.csv_lines import CsvMapping, RowError, RowReader, cell, derive_id
from service.events.csv_orders import OrderConverter, group_orders
from service.events.imports import CHUNK_ROWS, ImportSummary, ingest_stream
from service.events.schemas import LENIENT_EVENT, EventCandidate, InvalidEvent
from service.events.types import EventType

__all__ = ["CsvImportSummary", "CsvMapping", "csv_candidates", "import_csv"]

RECENT_ROWS = 100_000


@dataclass
class CsvImportSummary(ImportSummary):
    lines: int = 0
    """Data lines read: more than ``rows`` (the events) when rows are grouped into orders."""


class _Ordinals:
    """How many identical rows came before a row, among the last ``capacity`` distinct rows:
    bounded memory, and the same answer for the same file, so re-runs derive the same ids."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.seen: OrderedDict[str, int] = OrderedDict()

    def next(self, key: str) -> int:
        ordinal = self.seen.pop(key, 0)
        self.seen[key] = ordinal + 1
        if len(self.seen) > self.capacity:
            self.seen.popitem(last=False)
        return ordinal


class _RowConverter:
    """One row, one event."""

    def __init__(self, mapping: CsvMapping) -> None:
        self.mapping = mapping
        self.reader = RowReader(mapping)
        self.ordinals = _Ordinals(RECENT_ROWS)

    def event(self, row: dict[str, str]) -> dict[str, Any]:
        m, read = self.mapping, self.reader
        line, kind = read.line(row), read.kind(row)
        if m.negative_as_refund and line.amount is not None and line.amount < 0:
            kind, line = EventType.refund.value, line.refunded()
        event: dict[str, Any] = {
            "event_id": self._event_id(row),
            "customer_id": cell(row, m.customer),
            "type": kind,
            "occurred_at": read.time(row),
            "amount": line.amount,
        }
        if item := read.item(row, line):
            event["items"] = [item]
        return event

    def _event_id(self, row: dict[str, str]) -> str:
        given = row.get(self.mapping.event_id) if self.mapping.event_id else None
        return given or self._derived_id(row)

    def _derived_id(self, row: dict[str, str]) -> str:
        values = [row.get(column) or "" for column in self.mapping.identity_columns()]
        event_id = derive_id(values)
        ordinal = self.ordinals.next(event_id)
        return derive_id([*values, f"#{ordinal}"]) if ordinal else event_id

    def candidate(self, row: dict[str, str]) -> EventCandidate:
        try:
            return LENIENT_EVENT.validate_python(self.event(row))
        except RowError as error:
            return InvalidEvent(None, str(error))


def csv_candidates(
    numbered: Iterable[tuple[int, dict[str, str]]], mapping: CsvMapping
) -> Iterator[tuple[int, EventCandidate]]:
    """(line number, candidate) pairs from (line number, row) pairs: one a row, or with
    ``mapping.order`` one an order, numbered by its first row."""
    if mapping.order is None:
        converter = _RowConverter(mapping)
        return ((line, converter.candidate(row)) for line, row in numbered)
    orders = OrderConverter(mapping)
    return ((order.line, orders.candidate(order)) for order in group_orders(numbered, mapping))


def import_csv(
    lines: Iterable[str],
    mapping: CsvMapping,
    session_factory: sessionmaker[Session],
    rules: service.IngestRules,
    *,
    delimiter: str = ",",
    chunk_rows: int = CHUNK_ROWS,
    on_chunk: Callable[[ImportSummary], None] | None = None,
) -> CsvImportSummary:
    """Import the rows of ``lines``; each chunk is committed before the next is read."""
    mapping.check()
    if len(delimiter) != 1:
        raise InvalidRequestError(f"--delimiter must be one character, not {delimiter!r}")
    reader = csv.DictReader(lines, delimiter=delimiter)
    try:
        missing = [c for c in mapping.columns() if c not in (reader.fieldnames or [])]
        if missing:
            found = ", ".join(reader.fieldnames or []) or "none"
            raise InvalidRequestError(
                f"column(s) {', '.join(missing)} not in the header (found: {found})"
            )
        # the line a row ends on (a quoted value may span lines; blank lines are skipped)
        candidates = csv_candidates(((reader.line_num, row) for row in reader), mapping)
        summary = ingest_stream(
            candidates, session_factory, rules, chunk_rows=chunk_rows, on_chunk=on_chunk
        )
    except UnicodeDecodeError as error:
        where = f"after line {reader.line_num}" if reader.line_num else "in its first lines"
        raise InvalidRequestError(
            f"the file is not {error.encoding} {where} ({error.reason}); the chunks before "
            "it are imported: pass the file's --encoding (cp1252 for many Excel exports) and "
            "import it again, which skips what is stored"
        ) from None
    return CsvImportSummary(**vars(summary), lines=max(reader.line_num - 1, 0))

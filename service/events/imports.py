"""Bulk imports of events from files: validated like the API's, stored in committed chunks.

``ingest_stream`` is the loop every importer shares: it reads candidates lazily, so a file of
millions of events needs the memory of one chunk, and each chunk is committed before the next is
read (an interrupted import keeps what it committed; re-running it stores nothing twice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from json import JSONDecodeError
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from service.events import service
from service.events.schemas import LENIENT_EVENT, EventCandidate, InvalidEvent
from service.exact_json import loads_exact

CHUNK_ROWS = 5_000
REASONS_KEPT = 10
T = TypeVar("T")


@dataclass
class ImportSummary:
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of the first rejected rows."""


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def ingest_stream(
    candidates: Iterable[tuple[int, EventCandidate]],
    session_factory: sessionmaker[Session],
    rules: service.IngestRules,
    *,
    chunk_rows: int = CHUNK_ROWS,
    on_chunk: Callable[[ImportSummary], None] | None = None,
) -> ImportSummary:
    """Ingest (line number, candidate) pairs chunk by chunk, committing each chunk."""
    summary = ImportSummary()
    for chunk in chunked(candidates, chunk_rows):
        lines = [line for line, _ in chunk]
        events = [candidate for _, candidate in chunk]
        with session_factory() as session, session.begin():
            result = service.ingest(session, events, rules, max_events=len(events))
        summary.rows += len(chunk)
        summary.imported += result.accepted
        summary.duplicates += result.duplicates
        summary.rejected += result.rejected
        for rejection in result.rejections[: REASONS_KEPT - len(summary.rejections)]:
            summary.rejections.append((lines[rejection.index], rejection.reason))
        if on_chunk:
            on_chunk(summary)
    return summary


def jsonl_candidates(lines: Iterable[str]) -> Iterator[tuple[int, EventCandidate]]:
    """One event object a line (blank lines skipped), as the events API takes them."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = loads_exact(line)
        except JSONDecodeError as error:
            yield number, InvalidEvent(None, f"not JSON: {error.msg}")
            continue
        yield number, LENIENT_EVENT.validate_python(raw)

"""Loading a shop folder (``events.jsonl``, ``profiles.jsonl``, ``catalogue.csv``, as written by
``clv simulate``) into the database, or into a running service over HTTP.

Every part is streamed in chunks and is idempotent: events by their ids, profiles and catalogue
rows by replacing what the same source said before.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from service.customers import service as customers
from service.customers.schemas import CustomerAttributesUpdate
from service.events.imports import ImportSummary, chunked, ingest_stream, jsonl_candidates
from service.events.service import IngestRules
from service.portrait import service as portrait
from service.remote import RemoteService

Progress = Callable[[str, int], None]  # (part, items just done)


@dataclass(frozen=True)
class ShopFiles:
    """What to load: a shop folder's three files, or a single events file."""

    events: Path
    profiles: Path | None = None
    catalogue: Path | None = None

    @classmethod
    def at(cls, path: Path) -> ShopFiles:
        if not path.is_dir():
            return cls(path)
        profiles, catalogue = path / "profiles.jsonl", path / "catalogue.csv"
        return cls(
            path / "events.jsonl",
            profiles if profiles.exists() else None,
            catalogue if catalogue.exists() else None,
        )


@dataclass
class FolderSummary:
    events: ImportSummary = field(default_factory=ImportSummary)
    profiles: int = 0
    profiles_rejected: list[tuple[int, str]] = field(default_factory=list)
    catalogue: int = 0


def _profile_updates(
    lines: Iterable[str],
) -> Iterable[tuple[int, str, CustomerAttributesUpdate | str]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            update = CustomerAttributesUpdate(source=row["source"], attributes=row["attributes"])
            yield number, str(row["customer_id"]), update
        except (ValueError, KeyError, TypeError, ValidationError) as error:
            yield number, "", f"not a profile line: {error}"


def _catalogue_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        return [
            {key: row.get(key) or None for key in ("sku", "name", "category", "description")}
            for row in csv.DictReader(handle)
            if row.get("sku")
        ]


def load_folder(
    files: ShopFiles,
    session_factory: sessionmaker[Session],
    rules: IngestRules,
    policy: customers.ProfilePolicy,
    progress: Progress | None = None,
) -> FolderSummary:
    """Catalogue, then profiles, then events."""
    summary = FolderSummary()
    if files.catalogue is not None:
        rows = _catalogue_rows(files.catalogue)
        with session_factory() as session, session.begin():
            portrait.import_catalogue(session, rows)
        summary.catalogue = len(rows)
    if files.profiles is not None:
        with files.profiles.open() as lines:
            for chunk in chunked(_profile_updates(lines), 5_000):
                good = [
                    (customer, update)
                    for _, customer, update in chunk
                    if isinstance(update, CustomerAttributesUpdate)
                ]
                summary.profiles_rejected += [
                    (number, update) for number, _, update in chunk if isinstance(update, str)
                ][: 10 - len(summary.profiles_rejected)]
                with session_factory() as session, session.begin():
                    customers.replace_many(session, good, policy)
                summary.profiles += len(good)
                if progress:
                    progress("profiles", len(chunk))
    done = 0

    def on_chunk(events: ImportSummary) -> None:
        nonlocal done
        if progress:
            progress("events", events.rows - done)
        done = events.rows

    with files.events.open() as lines:
        summary.events = ingest_stream(
            jsonl_candidates(lines), session_factory, rules, on_chunk=on_chunk
        )
    return summary


def send_folder(
    files: ShopFiles, remote: RemoteService, progress: Progress | None = None
) -> FolderSummary:
    """The same through the HTTP API (the catalogue has no API and is not sent)."""
    summary = FolderSummary()
    if files.profiles is not None:
        with files.profiles.open() as lines:
            for number, customer, update in _profile_updates(lines):
                if isinstance(update, str):
                    summary.profiles_rejected.append((number, update))
                    continue
                remote.put_attributes(customer, update.source, update.attributes)
                summary.profiles += 1
                if progress:
                    progress("profiles", 1)
    with files.events.open() as lines:
        numbered = ((n, line) for n, line in enumerate(lines, start=1) if line.strip())
        for chunk in chunked(numbered, 5_000):
            result = remote.post_events([json.loads(line) for _, line in chunk])
            events = summary.events
            events.rows += len(chunk)
            events.imported += result["accepted"]
            events.duplicates += result["duplicates"]
            events.rejected += result["rejected"]
            for rejection in result["rejections"][: 10 - len(events.rejections)]:
                events.rejections.append((chunk[rejection["index"]][0], rejection["reason"]))
            if progress:
                progress("events", len(chunk))
    return summary

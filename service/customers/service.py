"""Customer profiles: per-source attributes, the merged profile, activity, erasure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from sqlalchemy import Row
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.customers import repository
from service.customers.schemas import (
    CustomerActivityRead,
    CustomerAttributesUpdate,
    CustomerRead,
    ProfileAttributeRead,
    SourceAttributesRead,
)
from service.db.queries import Shard
from service.db.types import MONEY_SCALE, canonical_decimal
from service.errors import NotFoundError
from service.events.types import EventType
from service.portrait import repository as portrait_repository
from service.portrait import service as portrait_service
from service.portrait.schemas import PortraitRead
from service.privacy import PiiHasher
from service.risk import service as risk
from service.risk.flags import RiskRules
from service.scoring import repository as scores
from service.scoring.schemas import ScoreHistoryEntry
from service.scoring.value import ValueTerms, history_entry


class SourceAttributes(Protocol):
    """What one source said about a customer: a model instance or a plain row."""

    @property
    def source(self) -> str: ...
    @property
    def attributes(self) -> dict[str, Any]: ...
    @property
    def updated_at(self) -> datetime: ...


Source = TypeVar("Source", bound=SourceAttributes)
MERGE_BATCH = 10_000
"""Customers merged per transaction when a worker catches the merged profiles up."""


@dataclass(frozen=True)
class ProfilePolicy:
    """How sources are merged, what is personal data, and which recent behaviour is flagged as
    a risk; built once from the settings."""

    source_precedence: Sequence[str]
    pii: PiiHasher
    currency: str
    risk: RiskRules = field(default_factory=RiskRules)
    terms: ValueTerms = field(default_factory=ValueTerms)  # what a served score means

    @classmethod
    def from_settings(cls, settings: Settings, pii: PiiHasher) -> ProfilePolicy:
        return cls(
            settings.source_precedence,
            pii,
            settings.currency,
            RiskRules.from_settings(settings),
            ValueTerms.of(settings),
        )

    def order(self, rows: Sequence[Source]) -> list[Source]:
        """Most trusted first: sources in CLV_SOURCE_PRECEDENCE order, then any other source,
        the most recently updated first."""
        rank = {source: position for position, source in enumerate(self.source_precedence)}
        unranked = len(rank)
        by_recency = sorted(rows, key=lambda row: row.updated_at, reverse=True)
        return sorted(by_recency, key=lambda row: rank.get(row.source, unranked))


def update_attributes(
    session: Session,
    customer_id: str,
    update: CustomerAttributesUpdate,
    policy: ProfilePolicy,
    *,
    replace: bool,
    now: datetime | None = None,
) -> CustomerRead:
    """PUT (``replace``) swaps the source's attributes; PATCH merges (RFC 7396: null deletes).
    Returns the customer as read afterwards (the merged profile the answer shows)."""
    now = now or datetime.now(UTC)
    repository.lock_profiles(session, [customer_id])
    row = repository.attributes_for_update(session, customer_id, update.source, now)
    values = policy.pii.scrub(update.attributes)
    base = {} if replace else row.attributes
    row.attributes = _present({**base, **values})  # a null value deletes the attribute
    row.updated_at = now
    session.flush()
    merge_profiles(session, [customer_id], policy)
    scores.mark_stale(session, [customer_id], "attributes")
    return get_customer(session, customer_id, policy)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def replace_many(
    session: Session,
    updates: Sequence[tuple[str, CustomerAttributesUpdate]],
    policy: ProfilePolicy,
    now: datetime | None = None,
) -> None:
    """PUT for many (customer_id, update) pairs at once, for bulk imports."""
    now = now or datetime.now(UTC)
    rows = {
        (customer_id, update.source): {
            "customer_id": customer_id,
            "source": update.source,
            "attributes": _present(policy.pii.scrub(update.attributes)),
            "updated_at": now,
        }
        for customer_id, update in updates
    }
    customer_ids = [customer_id for customer_id, _ in updates]
    repository.lock_profiles(session, customer_ids)
    repository.replace_attributes(session, list(rows.values()))
    merge_profiles(session, customer_ids, policy)
    scores.mark_stale(session, customer_ids, "attributes")


def merge_profiles(session: Session, customer_ids: Sequence[str], policy: ProfilePolicy) -> None:
    """Write the listed customers' merged profiles (``customer_profiles``) from their sources'
    rows as they are now; a customer without any (erased meanwhile) keeps no merged row."""
    precedence = ",".join(policy.source_precedence)
    listed = sorted(set(customer_ids))
    merged = _merged(repository.all_attributes(session, listed), policy)
    rows = [
        {"customer_id": customer, "attributes": values, "precedence": precedence}
        for customer, values in merged.items()
    ]
    repository.write_profiles(session, rows)
    repository.delete_profiles(session, [customer for customer in listed if customer not in merged])


def merge_unmerged(session_factory: sessionmaker[Session], policy: ProfilePolicy) -> int:
    """Merge the profiles missing or merged under another CLV_SOURCE_PRECEDENCE (after the
    migration that added the table, or a change of the setting), in batches; returns how many.
    A worker runs this as it starts."""
    precedence = ",".join(policy.source_precedence)
    with session_factory() as session:
        stale = repository.unmerged_customers(session, precedence)
    for start in range(0, len(stale), MERGE_BATCH):
        with session_factory() as session, session.begin():
            batch = stale[start : start + MERGE_BATCH]
            repository.lock_profiles(session, batch)
            merge_profiles(session, batch, policy)
    return len(stale)


def get_customer(
    session: Session, customer_id: str, policy: ProfilePolicy, now: datetime | None = None
) -> CustomerRead:
    if not repository.exists_customer(session, customer_id):
        raise NotFoundError(f"no customer {customer_id!r}")
    sources = policy.order(repository.attributes(session, customer_id))
    now = now or datetime.now(UTC)
    stored = portrait_repository.load_activity(session, [customer_id])  # portrait and flags
    try:
        portrait: PortraitRead | None = portrait_service.current(session, customer_id, now, stored)
    except NotFoundError:  # known from attributes only, or events not applied yet
        portrait = None
    activity = _activity(session, customer_id, policy.currency, portrait)
    return CustomerRead(
        customer_id=customer_id,
        profile=_merge(sources),
        sources=[
            SourceAttributesRead(
                source=row.source, attributes=row.attributes, updated_at=row.updated_at
            )
            for row in sources
        ],
        activity=activity,
        segment=_segment(portrait, activity),
        features=portrait.features if portrait else {},
        latest_score=_latest_score(session, customer_id, policy.terms),
        risk_flags=risk.current_flags(stored.days, customer_id, policy.risk, now),
    )


def _latest_score(
    session: Session, customer_id: str, terms: ValueTerms
) -> ScoreHistoryEntry | None:
    stored = scores.current(session, customer_id)
    return history_entry(stored, terms) if stored else None


def _segment(portrait: PortraitRead | None, activity: CustomerActivityRead) -> str | None:
    """The portrait's segment; a customer without any event is a prospect; one whose events
    the worker has not applied yet has none for that moment."""
    if portrait is not None:
        return portrait.segment
    return "prospect" if activity.events == 0 else None


def _winners(sources: Sequence[Source]) -> dict[str, Source]:
    """For each attribute, the row (source) whose value the profile takes: the first in
    precedence order that has a value for it."""
    winners: dict[str, Source] = {}
    for row in sources:
        for name, value in row.attributes.items():
            if name not in winners and value is not None:
                winners[name] = row
    return winners


def _merge(sources: Sequence[SourceAttributes]) -> dict[str, ProfileAttributeRead]:
    return {
        name: ProfileAttributeRead(
            value=row.attributes[name], source=row.source, updated_at=row.updated_at
        )
        for name, row in _winners(sources).items()
    }


def all_profiles(
    session: Session,
    policy: ProfilePolicy,
    customer_ids: Sequence[str] | None = None,
    shard: Shard | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
    """Every customer's (or the listed customers', or a shard's) merged attribute values and the
    set of sources they have, for training and scoring."""
    rows = repository.all_attributes(session, customer_ids, shard)
    sources: dict[str, set[str]] = {}
    for row in rows:
        sources.setdefault(row.customer_id, set()).add(row.source)
    return _merged(rows, policy), sources


def _merged(rows: Sequence[Row[Any]], policy: ProfilePolicy) -> dict[str, dict[str, Any]]:
    """Each customer's merged attribute values, from their sources' rows."""
    by_customer: dict[str, list[Row[Any]]] = {}
    for row in rows:
        by_customer.setdefault(row.customer_id, []).append(row)
    return {
        customer: {name: row.attributes[name] for name, row in _winners(policy.order(rows)).items()}
        for customer, rows in by_customer.items()
    }


def _activity(
    session: Session, customer_id: str, currency: str, portrait: PortraitRead | None
) -> CustomerActivityRead:
    """Counts and sums from the event store; the BTYD quantities from the portrait."""
    stats = {row.type: row for row in repository.event_stats(session, customer_id)}
    orders = stats.get(EventType.purchase.value)
    refunds = stats.get(EventType.refund.value)
    revenue = (orders.total if orders else None) or Decimal(0)
    refunded = (refunds.total if refunds else None) or Decimal(0)
    features = portrait.features if portrait else {}
    return CustomerActivityRead(
        events=sum(row.number for row in stats.values()),
        first_event_at=min((row.first_at for row in stats.values()), default=None),
        last_event_at=max((row.last_at for row in stats.values()), default=None),
        orders=orders.number if orders else 0,
        first_order_at=orders.first_at if orders else None,
        last_order_at=orders.last_at if orders else None,
        revenue=revenue,
        refunds=refunds.number if refunds else 0,
        refunded_amount=refunded,
        net_revenue=revenue - refunded,
        currency=currency,
        frequency=int(features.get("frequency", 0)),
        recency_days=int(features.get("recency_days", 0)),
        age_days=int(features.get("age_days", 0)),
        monetary_value=_money(features.get("monetary_value", 0.0)),
    )


def _money(value: float) -> Decimal:
    return canonical_decimal(Decimal(value).quantize(Decimal(1).scaleb(-MONEY_SCALE)))


def erase_customer(session: Session, customer_id: str) -> None:
    if repository.erase(session, customer_id) == 0:
        raise NotFoundError(f"no customer {customer_id!r}")

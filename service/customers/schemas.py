"""Public schemas of customer profiles."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from service.risk.schemas import RiskFlagRead
from service.schemas import ScalarMap, ScalarValue
from service.scoring.schemas import ScoreHistoryEntry

SourceName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
MAX_ATTRIBUTES = 100


class CustomerAttributesUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "crm",
                    "attributes": {"age_band": "25-34", "region": "north", "email": "a@b.com"},
                }
            ]
        },
    )

    source: SourceName = Field(
        description="Where the attributes come from, e.g. platform, crm, social, third_party. "
        "Each source is stored apart; the profile merges them by CLV_SOURCE_PRECEDENCE."
    )
    attributes: ScalarMap = Field(
        max_length=MAX_ATTRIBUTES,
        description="Scalar attributes. PATCH merges them into the source's attributes (null "
        "removes one); PUT replaces the source's attributes. email and phone are stored only as "
        "keyed hashes.",
    )


class SourceAttributesRead(BaseModel):
    source: str = Field(description="The attribute source.")
    attributes: dict[str, ScalarValue] = Field(description="The source's attributes as stored.")
    updated_at: datetime = Field(description="When this source last changed.")


class ProfileAttributeRead(BaseModel):
    value: ScalarValue = Field(description="The merged value.")
    source: str = Field(description="The source the value was taken from.")
    updated_at: datetime = Field(description="When that source last changed.")


class CustomerActivityRead(BaseModel):
    events: int = Field(description="Events stored for the customer.")
    first_event_at: datetime | None = Field(description="Earliest event.")
    last_event_at: datetime | None = Field(description="Latest event.")
    orders: int = Field(description="Purchase events.")
    first_order_at: datetime | None = Field(description="Earliest purchase.")
    last_order_at: datetime | None = Field(description="Latest purchase.")
    revenue: Decimal = Field(description="Sum of purchase amounts (shop currency).")
    refunds: int = Field(description="Refund events.")
    refunded_amount: Decimal = Field(description="Sum of refund amounts (shop currency).")
    net_revenue: Decimal = Field(description="revenue minus refunded_amount.")
    currency: str = Field(description="The shop currency of the amounts.")
    frequency: int = Field(
        description="BTYD frequency: purchase days after the first purchase day (repeat purchases)."
    )
    recency_days: int = Field(description="BTYD recency: days from first to last purchase day.")
    age_days: int = Field(description="BTYD T: days from the first purchase day to today (UTC).")
    monetary_value: Decimal = Field(
        description="BTYD monetary value: mean spend per repeat purchase day (0 without repeats)."
    )


class CustomerRead(BaseModel):
    customer_id: str = Field(description="The customer's id.")
    profile: dict[str, ProfileAttributeRead] = Field(
        description="Attributes merged over the sources, each with the source it came from."
    )
    sources: list[SourceAttributesRead] = Field(
        description="Each source's attributes, in merge precedence order."
    )
    activity: CustomerActivityRead = Field(description="What the customer's events add up to.")
    segment: str | None = Field(
        description="RFM segment now (prospect, champions, new, loyal, potential, at_risk, "
        "hibernating, lost; the scheme is in GET /v1/features); null for the moment between "
        "storing a customer's first events and the worker applying them."
    )
    features: dict[str, float] = Field(
        description="The portrait as of now (GET /v1/customers/{customer_id}/features has the "
        "same, or at a past time); empty for a customer whose events are not applied yet."
    )
    latest_score: ScoreHistoryEntry | None = Field(
        default=None,
        description="The stored score (GET /v1/customers/{customer_id}/clv has it in full, with "
        "its tier and explanation); null before the first champion scored the customer.",
    )
    risk_flags: list[RiskFlagRead] = Field(
        default_factory=list,
        description="Anomalies in the customer's recent behaviour now (a spend or refund spike "
        "for them), each with its reason; empty when none, and for events not applied yet.",
    )

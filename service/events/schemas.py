"""Public schemas of event ingestion.

A batch is validated event by event: one malformed event must not cost the storefront the other
999, so an invalid event becomes an ``InvalidEvent`` with a reason instead of failing the request.
Only a body that is not a batch at all is answered 422. The schema checks shape and types, all in
pydantic-core; rules across fields or depending on settings and the clock live in
``service.events.service.IngestRules``, which runs once per event in one Python loop.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple, NotRequired, cast

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from typing_extensions import TypedDict  # pydantic refuses typing.TypedDict before Python 3.12

from service.events.types import EventType
from service.schemas import (
    NO_NUL,
    CustomerId,
    Identifier,
    MoneyAmount,
    ScalarMap,
    describe,
)

MAX_ITEMS = 1_000
"""Line items of one event: a wholesale invoice of Online Retail has up to 542 lines."""
MAX_PROPERTIES = 50


class ItemCreate(TypedDict):
    """A line item. A TypedDict, not a model: validating into plain dicts is twice as fast for
    a batch of orders, and the items are stored as JSON anyway."""

    sku: Annotated[Identifier, Field(description="Product id (SKU) in the shop's catalogue.")]
    category: NotRequired[
        Annotated[
            str | None,
            Field(max_length=128, pattern=NO_NUL, description="Category, e.g. 'shoes/running'."),
        ]
    ]
    name: NotRequired[
        Annotated[str | None, Field(max_length=256, pattern=NO_NUL, description="Product name.")]
    ]
    quantity: NotRequired[
        Annotated[int, Field(ge=1, le=100_000, description="Units of the product; 1 if absent.")]
    ]
    price: NotRequired[
        Annotated[
            MoneyAmount | None,
            Field(description="Unit price in the shop currency (exact decimal)."),
        ]
    ]


ITEMS_AS_JSON = TypeAdapter(list[ItemCreate])
"""Turns validated items into JSON-ready values (prices as exact decimal strings)."""


class EventCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "order-10001",
                    "customer_id": "c-42",
                    "type": "purchase",
                    "occurred_at": "2026-11-27T14:03:00Z",
                    "amount": "59.90",
                    "currency": "USD",
                    "items": [
                        {"sku": "TSHIRT-01", "category": "apparel", "quantity": 2, "price": "29.95"}
                    ],
                    "source": "web",
                }
            ]
        },
    )

    event_id: Identifier = Field(
        description="Client-chosen unique id; resending an event with a stored id is a no-op."
    )
    customer_id: CustomerId = Field(description="The customer the event belongs to.")
    type: EventType = Field(description="What happened.")
    occurred_at: AwareDatetime = Field(
        description="When it happened, with a time zone (ISO 8601, e.g. 2026-11-27T14:03:00Z). "
        "Late and out-of-order events are fine; at most 5 minutes in the future."
    )
    amount: MoneyAmount | None = Field(
        default=None,
        description="Money that changed hands, >= 0, exact (up to 4 decimal places). Required "
        "for purchase (order total) and refund (amount refunded).",
    )
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code; must equal the shop currency (no conversion). Defaults to it.",
    )
    items: list[ItemCreate] | None = Field(
        default=None, max_length=MAX_ITEMS, description="Line items of the order or cart action."
    )
    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=NO_NUL,
        description="Channel, e.g. web, app, pos.",
    )
    properties: ScalarMap | None = Field(
        default=None,
        max_length=MAX_PROPERTIES,
        description="Other scalar facts about the event (email and phone values are hashed).",
    )


class InvalidEvent(NamedTuple):
    """An event of a batch that failed validation, kept so the response can say why."""

    event_id: str | None
    reason: str


def _quotable_id(value: Any) -> str | None:
    """The id of an invalid event, to quote in the answer when it is text UTF-8 can carry: JSON's
    ``"\\ud800"`` (a lone surrogate) parses to a str that cannot be encoded back."""
    raw_id = value.get("event_id") if isinstance(value, dict) else None
    if not isinstance(raw_id, str):
        return None
    try:
        raw_id.encode()
    except UnicodeEncodeError:
        return None
    return raw_id


def _keep_invalid(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError as error:
        return InvalidEvent(_quotable_id(value), describe(error))


EventCandidate = EventCreate | InvalidEvent
LenientEvent = Annotated[EventCreate, WrapValidator(_keep_invalid)]
"""Validates to an ``EventCreate``, or to an ``InvalidEvent`` saying why not."""
LENIENT_EVENT: TypeAdapter[EventCandidate] = TypeAdapter(LenientEvent)


class EventBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[LenientEvent] = Field(
        min_length=1,
        description="The events; at most 10,000 (CLV_MAX_BATCH_EVENTS) or 10 MiB a request.",
    )

    def candidates(self) -> list[EventCandidate]:
        """The events as validated: an item is an ``InvalidEvent`` where validation failed.

        The field is annotated ``EventCreate`` so that the OpenAPI schema documents what to send;
        ``_keep_invalid`` is what puts ``InvalidEvent`` values into it.
        """
        return cast(list[EventCandidate], self.events)


class RejectedEvent(BaseModel):
    index: int = Field(description="Position of the event in the submitted batch (from 0).")
    event_id: str | None = Field(description="The event's id, when it had a readable one.")
    reason: str = Field(description="What is wrong, field by field.")


class EventBatchResult(BaseModel):
    accepted: int = Field(description="Events stored by this request.")
    duplicates: int = Field(
        description="Valid events whose event_id was already stored (or repeated in the batch)."
    )
    rejected: int = Field(description="Events refused; see rejections.")
    rejections: list[RejectedEvent] = Field(description="Each refused event and why.")

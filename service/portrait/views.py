"""``/v1/customers/{customer_id}/features`` and ``/v1/features``."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import Query

from service.api.deps import ReadKey, ScorerDep, SessionDep
from service.api.params import CustomerIdPath
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.errors import refuse_future
from service.portrait import service
from service.portrait.schemas import FeatureCatalogueRead, PortraitRead
from service.schemas import UtcDatetime

router = domain_router(prefix="/v1", tags=["features"])


@router.get(
    "/customers/{customer_id}/features",
    operation_id="get_customer_features",
    summary="A customer's features, now or at a past time",
    responses=error_responses(401, 403, 404, 422),
)
def get_customer_features(
    customer_id: CustomerIdPath,
    session: SessionDep,
    _key: ReadKey,
    as_of: Annotated[
        UtcDatetime | None,
        Query(description="A past time (ISO 8601 with a time zone); default: now."),
    ] = None,
) -> PortraitRead:
    """Features as of now (from the stored aggregates, current after every batch), or as of
    `as_of` from the events at or before it: events that arrive later never change the past."""
    now = datetime.now(UTC)
    if as_of is None:
        return service.current(session, customer_id, now)
    refuse_future(as_of)
    return service.as_of(session, customer_id, as_of)


@router.get(
    "/features",
    operation_id="list_features",
    summary="What each feature means",
    responses=error_responses(401, 403),
)
def list_features(session: SessionDep, scorer: ScorerDep, _key: ReadKey) -> FeatureCatalogueRead:
    """Name, description, unit and group of every behavioural feature; category-mix features are
    `bought_share__<category>`, `viewed_share__<category>`, `categories_bought` and
    `category_entropy`. The serving model's product topics (`topic_<i>`: a customer's share of
    each in what they bought and viewed) are listed with their top words."""
    return service.catalogue(partial(scorer.answering, session))

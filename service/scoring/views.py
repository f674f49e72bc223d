"""``/v1/customers/{customer_id}/clv``, its history, ``/v1/clv/batch`` and the global feature
importance report."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from service.api.deps import ReadKey, ScorerDep, SessionDep
from service.api.params import CustomerIdPath
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.schemas import UtcDatetime
from service.scoring import charts, service
from service.scoring.schemas import (
    BatchScoreRead,
    BatchScoreRequest,
    ClvScoreRead,
    ExplainParam,
    FeatureImportanceRead,
    ScoreHistoryRead,
    ServingRead,
)

router = domain_router(prefix="/v1", tags=["scores"])

Sample = Annotated[int, Query(ge=10, le=20_000, description="Customers to average over.")]


@router.get(
    "/customers/{customer_id}/clv",
    operation_id="get_customer_clv",
    summary="A customer's lifetime value, with why",
    responses=error_responses(401, 403, 404, 422),
)
def get_clv(
    customer_id: CustomerIdPath,
    session: SessionDep,
    scorer: ScorerDep,
    _key: ReadKey,
    horizon_days: Annotated[
        int | None,
        Query(ge=1, le=3650, description="Days to predict over; default: the champion's."),
    ] = None,
    as_of: Annotated[
        UtcDatetime | None,
        Query(description="Score as of this moment (events up to it); default: now."),
    ] = None,
    explain: Annotated[
        ExplainParam,
        Query(
            description="true or shap: include SHAP attributions (true as before, when this "
            "was a bool; 1, yes and on too); lime: LIME's, computed on request; false: none."
        ),
    ] = "false",
) -> ClvScoreRead:
    """Expected spend in the horizon with its interval, purchase and churn probabilities,
    expected orders and next order date, value tier and model version. Without `as_of` and at
    the champion's horizon, the stored score (kept fresh as events arrive) answers; otherwise
    it is computed. A customer without an order gets a cold-start score (`cold_start: true`);
    an unknown one 404; a horizon or `as_of` the champion cannot serve 422, with what it can."""
    return service.get_score(
        session, scorer, customer_id, horizon_days=horizon_days, as_of=as_of, explain=explain
    )


@router.get(
    "/customers/{customer_id}/clv/history",
    operation_id="get_customer_clv_history",
    summary="How a customer's score moved",
    responses=error_responses(401, 403, 404, 422),
)
def get_clv_history(
    customer_id: CustomerIdPath,
    session: SessionDep,
    scorer: ScorerDep,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=1000, description="Entries per page.")] = 100,
    before: Annotated[
        UtcDatetime | None, Query(description="Only entries computed before this (paging).")
    ] = None,
) -> ScoreHistoryRead:
    """Every stored score of the customer, newest first, with the model version and what
    triggered it: new events, an attribute change, or a new champion."""
    return service.history(session, customer_id, limit, before, scorer.terms)


@router.post(
    "/clv/batch",
    operation_id="score_batch",
    summary="Scores of many customers",
    responses=error_responses(401, 403, 404, 413, 422),
)
def score_batch(
    request: BatchScoreRequest, session: SessionDep, scorer: ScorerDep, _key: ReadKey
) -> BatchScoreRead:
    """Up to 10,000 customers at once, answered as the single-customer endpoint would; ids
    that are unknown are listed in `not_found`; 404 while no model is champion."""
    return service.batch(session, scorer, request)


@router.get(
    "/reports/feature-importance",
    operation_id="get_feature_importance",
    summary="What drives the scores, over all customers",
    responses=error_responses(401, 403, 404, 422),
)
def feature_importance(
    session: SessionDep, scorer: ScorerDep, _key: ReadKey, sample: Sample = 2000
) -> FeatureImportanceRead:
    """Mean |SHAP value| per feature and per group over the stored attributions of a random
    sample of customers scored by the champion."""
    return service.importance(session, scorer, sample)


@router.get(
    "/reports/feature-importance.png",
    operation_id="get_feature_importance_chart",
    summary="What drives the scores, as a chart",
    responses={
        **error_responses(401, 403, 404, 422),
        200: {"content": {"image/png": {}}, "description": "A bar chart."},
    },
    response_class=Response,
)
def feature_importance_chart(
    session: SessionDep,
    scorer: ScorerDep,
    _key: ReadKey,
    sample: Sample = 2000,
    top: Annotated[int, Query(ge=1, le=100, description="Features shown.")] = 20,
) -> Response:
    """The top features of `GET /v1/reports/feature-importance` as a PNG bar chart."""
    chart = charts.importance_png(service.importance(session, scorer, sample), top)
    return Response(chart, media_type="image/png")


@router.get(
    "/serving",
    operation_id="get_serving",
    summary="The model this process serves",
    responses=error_responses(401, 403),
)
def get_serving(session: SessionDep, scorer: ScorerDep, _key: ReadKey) -> ServingRead:
    """The champion's version in the registry, the version this process has loaded and answers
    with, and any version it refused to load (corrupt, truncated, another schema) with the
    reason. After a refused promotion or a damaged artifact the earlier model keeps serving and
    this says so."""
    return service.serving(session, scorer)

"""``/v1/reports/fairness``: queue a fairness audit, read the latest one and its chart."""

from __future__ import annotations

from fastapi import Response, status

from service.api.deps import AdminKey, ReadKey, SessionDep, SettingsDep
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.fairness import service
from service.fairness.schemas import FairnessReportRead, FairnessRequest
from service.jobs.schemas import JobRead

router = domain_router(prefix="/v1", tags=["reports"])


@router.post(
    "/reports/fairness",
    operation_id="create_fairness_report",
    summary="Audit the model's fairness (as a job)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 409, 422),
)
def create_fairness_report(
    request: FairnessRequest, session: SessionDep, settings: SettingsDep, key: AdminKey
) -> JobRead:
    """Queue a backtest at `as_of` that trains a model with every profile attribute and one
    without the protected ones (CLV_FAIRNESS_ATTRIBUTES) and audits both per group. Follow it
    at `GET /v1/jobs/{id}`; the result is served by `GET /v1/reports/fairness`. 422 when the
    horizon after `as_of` runs past the events; 409 (`holdout_too_thin`) when fewer than
    `CLV_HOLDOUT_MIN_BUYERS` of the customers known at `as_of` buy in it (or fewer than
    `CLV_HOLDOUT_MIN_CUSTOMERS` are known): the message says from when a fair one is possible."""
    return service.submit(session, settings, request, key.name)


@router.get(
    "/reports/fairness",
    operation_id="get_fairness_report",
    summary="The latest fairness audit",
    responses=error_responses(401, 403, 404),
)
def get_fairness_report(session: SessionDep, _key: ReadKey) -> FairnessReportRead:
    """Per protected attribute and group: count, mean predicted and actual spend, MAE,
    calibration ratio and share in the top value decile, the disparities between groups with
    bootstrap intervals, and overall accuracy, with and without the protected attributes.
    404 until one has been computed."""
    return service.latest(session)


@router.get(
    "/reports/fairness.png",
    operation_id="get_fairness_chart",
    summary="The latest fairness audit, as a chart",
    responses={
        **error_responses(401, 403, 404),
        200: {"content": {"image/png": {}}, "description": "Mean spend per group."},
    },
    response_class=Response,
)
def get_fairness_chart(session: SessionDep, _key: ReadKey) -> Response:
    """Per attribute, each group's mean actual spend beside the mean predicted with and
    without the protected attributes."""
    return Response(service.latest_chart(session), media_type="image/png")

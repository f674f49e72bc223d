"""``/v1/reports/btyd``: queue the BTYD diagnostics, read the latest and draw its charts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response, status

from service.api.deps import AdminKey, ReadKey, SessionDep, SettingsDep
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.diagnostics import service
from service.diagnostics.schemas import BtydReportRead, BtydReportRequest, Chart
from service.jobs.schemas import JobRead

router = domain_router(prefix="/v1", tags=["reports"])


@router.post(
    "/reports/btyd",
    operation_id="create_btyd_report",
    summary="Fit the BTYD diagnostics (as a job)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 409, 422),
)
def create_btyd_report(
    request: BtydReportRequest, session: SessionDep, settings: SettingsDep, key: AdminKey
) -> JobRead:
    """Queue a fit of the purchase-count model up to `as_of - holdout_days`, judged on the
    holdout's purchases, and one up to `as_of` for the matrices. Follow it at
    `GET /v1/jobs/{id}`; the result is served by `GET /v1/reports/btyd`. 422 for an `as_of` in
    the future or a shop without events; the job fails, saying so, when fewer than 20
    customers bought before the calibration cut-off."""
    return service.submit(session, settings, request, key.name)


@router.get(
    "/reports/btyd",
    operation_id="get_btyd_report",
    summary="The latest BTYD diagnostics",
    responses=error_responses(401, 403, 404),
)
def get_btyd_report(session: SessionDep, _key: ReadKey) -> BtydReportRead:
    """Calibration against the holdout by frequency, and the frequency-recency and
    probability-alive matrices. 404 until one has been computed."""
    return service.latest(session)


@router.get(
    "/reports/btyd.png",
    operation_id="get_btyd_chart",
    summary="A BTYD diagnostic chart",
    responses={
        **error_responses(401, 403, 404, 422),
        200: {"content": {"image/png": {}}, "description": "The chart."},
    },
    response_class=Response,
)
def get_btyd_chart(
    session: SessionDep,
    _key: ReadKey,
    chart: Annotated[
        Chart,
        Query(
            description="frequency_recency (expected purchases by frequency and recency), "
            "probability_alive (on the same grid) or calibration (holdout purchases, predicted "
            "and actual, by calibration frequency)."
        ),
    ] = "frequency_recency",
) -> Response:
    """One chart of the latest report, drawn from its numbers."""
    return Response(service.chart(session, chart), media_type="image/png")

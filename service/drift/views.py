"""``/v1/monitoring/drift``: queue a drift check, read the latest one."""

from __future__ import annotations

from fastapi import status

from service.api.deps import AdminKey, ReadKey, SessionDep
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.drift import service
from service.drift.schemas import DriftCheckRequest, DriftReportRead
from service.jobs.schemas import JobRead

router = domain_router(prefix="/v1", tags=["monitoring"])


@router.post(
    "/monitoring/drift",
    operation_id="check_drift",
    summary="Check drift (as a job)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422),
)
def check_drift(request: DriftCheckRequest, session: SessionDep, key: AdminKey) -> JobRead:
    """Queue a comparison of the customers active in the `CLV_DRIFT_WINDOW_DAYS` before the
    champion's training data end with those active in the days before `as_of` (default now):
    each feature, the predicted spend, the purchase rate of the shop and of each profile
    segment. A check already queued or running is returned instead of a new one. Follow it at
    `GET /v1/jobs/{id}`; the report is served by `GET /v1/monitoring/drift`. 404 without a
    champion."""
    return service.submit(session, request, key.name)


@router.get(
    "/monitoring/drift",
    operation_id="get_drift",
    summary="The latest drift check",
    responses=error_responses(401, 403, 404),
)
def get_drift(session: SessionDep, _key: ReadKey) -> DriftReportRead:
    """Whether anything drifted and why; the populations compared; the purchase rate of the
    shop and of each profile segment; the predicted spend's and every feature's PSI and KS
    statistic (largest PSI first). 404 until a check has run (the scheduler runs one every
    `CLV_MONITOR_INTERVAL_MINUTES` while there is a champion)."""
    return service.latest(session)

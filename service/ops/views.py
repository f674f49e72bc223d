"""Probes and metrics: outside ``/v1`` and without authentication (for the cluster network)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from service.drift.service import latest_report as latest_drift
from service.errors import DatabaseUnavailableError, error_body
from service.jobs import repository as jobs
from service.ops import metrics
from service.scoring import repository as scores

router = APIRouter(tags=["operations"])


class HealthRead(BaseModel):
    status: str = Field(description="ok when the check passed.")


@router.get("/healthz", operation_id="healthz", summary="Liveness")
async def healthz() -> HealthRead:
    """The process is up and answering. Never touches the database."""
    return HealthRead(status="ok")


class ReadyRead(HealthRead):
    pending_events: int = Field(description="Stored events waiting for the worker.")
    stale_scores: int = Field(description="Customers waiting for a fresh score.")
    unexplained_scores: int = Field(
        description="Stored scores waiting for their attributions (computed after the scores)."
    )
    dead_letters: int = Field(
        description="Events set aside because applying them failed (clv events dead-letters)."
    )


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness",
    response_model=ReadyRead,
    responses={503: {"description": "Not ready: the database is unreachable."}},
)
def readyz(request: Request) -> Response:
    """Ready to serve: the database answers. One that hangs rather than refuses is reported
    within 5 s, with the Retry-After of the API's own 503s. The body gives the queues' depths
    and the dead letters: readiness does not depend on them, an operator's attention might."""
    try:
        with request.app.state.session_factory() as session:
            ready = ReadyRead(
                status="ok",
                pending_events=jobs.pending_count(session),
                stale_scores=scores.queued(session),
                unexplained_scores=scores.unexplained(session),
                dead_letters=jobs.dead_letter_count(session),
            )
    except Exception as error:  # any failure means "not ready"; the reason goes in the body
        message = f"database unreachable: {error.__class__.__name__}"
        request_id = getattr(request.state, "request_id", None)
        body = error_body("not_ready", message, request_id)
        return JSONResponse(body, status_code=503, headers=DatabaseUnavailableError().headers)
    return JSONResponse(ready.model_dump())


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {}},
            "description": "The Prometheus text exposition format.",
        }
    },
)
def prometheus_metrics(request: Request) -> Response:
    """Metrics in the Prometheus text format: requests, ingestion, scoring and explanation
    latency, the model loaded per process, and, read from the database, job states, the
    queues' depths and the latest drift check's figures (``clv_database_up 0`` when it is
    unreachable: the rest still answers)."""
    try:
        with request.app.state.session_factory() as session:
            database = metrics.database_gauges(
                jobs.job_counts(session),
                jobs.pending_count(session),
                scores.queued(session),
                _seconds_since(scores.oldest_queued(session)),
                jobs.dead_letter_count(session),
                scores.unexplained(session),
            )
            drift = latest_drift(session)
            if drift is not None:
                database += metrics.drift_gauges(drift.body, drift.created_at)
    except (OperationalError, InterfaceError, PoolTimeoutError):  # bounded: service.db.timeouts
        database = None
    return Response(metrics.exposition(database), media_type=CONTENT_TYPE_LATEST)


def _seconds_since(moment: datetime | None) -> float:
    return 0.0 if moment is None else max(0.0, (datetime.now(UTC) - moment).total_seconds())

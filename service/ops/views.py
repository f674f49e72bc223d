"""Probes and metrics: outside ``/v1`` and without authentication (for the cluster network)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from service.errors import DatabaseUnavailableError, error_body
from service.ops import metrics, service
from service.ops.schemas import HealthRead, ReadyRead

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="healthz", summary="Liveness")
async def healthz() -> HealthRead:
    """The process is up and answering. Never touches the database."""
    return HealthRead(status="ok")


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
        ready = service.readiness(request.app.state.session_factory)
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
    database = service.database_metrics(request.app.state.session_factory)
    return Response(metrics.exposition(database), media_type=CONTENT_TYPE_LATEST)

"""``/v1/jobs/{job_id}``: follow and cancel the jobs every other domain queues (training,
rescoring, learning runs, drift checks, fairness audits)."""

from __future__ import annotations

from service.api.deps import AdminKey, SessionDep
from service.api.params import JobPath
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.jobs import service
from service.jobs.schemas import JobRead

router = domain_router(prefix="/v1", tags=["models"])  # where Swagger UI has always shown them


@router.get(
    "/jobs/{job_id}",
    operation_id="get_job",
    summary="A job's status and progress",
    responses=error_responses(401, 403, 404, 422),
)
def get_job(job_id: JobPath, session: SessionDep, _key: AdminKey) -> JobRead:
    return service.get(session, job_id)


@router.post(
    "/jobs/{job_id}/cancel",
    operation_id="cancel_job",
    summary="Cancel a job",
    responses=error_responses(401, 403, 404, 409, 422),
)
def cancel_job(job_id: JobPath, session: SessionDep, _key: AdminKey) -> JobRead:
    """A queued job is cancelled at once; a running one after its current epoch."""
    return service.cancel(session, job_id)

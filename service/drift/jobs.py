"""The ``drift`` job's handler: a drift check, stored as a report."""

from __future__ import annotations

from typing import Any

from service.drift import service as drift
from service.drift.schemas import DriftCheckRequest
from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, job_handler


@job_handler(JobKind.drift, params=DriftCheckRequest)
def check(job: JobContext, params: DriftCheckRequest) -> dict[str, Any]:
    """Check, store; the result summarises the stored report."""
    report = drift.check_drift(
        job.session_factory,
        job.settings,
        as_of=params.as_of,
        actor=job.actor,
        progress=job.progress,
    )
    return {
        "report_id": report.id,
        "model_version": report.model_version,
        "drifted": report.drifted,
        "reasons": report.reasons,
        "learning_job_id": report.learning_job_id,
    }

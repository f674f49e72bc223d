"""The ``fairness`` job's handler: an audit with and without the protected attributes."""

from __future__ import annotations

from typing import Any

from service.fairness import service as fairness
from service.fairness.schemas import FairnessRequest
from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, job_handler


@job_handler(JobKind.fairness, params=FairnessRequest)
def audit(job: JobContext, params: FairnessRequest) -> dict[str, Any]:
    """Compute, store; the result names the stored report."""
    body, chart = fairness.compute(
        job.session_factory,
        job.settings,
        as_of=params.as_of,
        horizon_days=params.horizon_days,
        epochs=params.epochs,
        progress=job.progress,
        cancelled=job.cancelled,
    )
    report_id = fairness.store(job.session_factory, body, chart)
    return {"report_id": report_id, "as_of": body["as_of"], "customers": body["customers"]}

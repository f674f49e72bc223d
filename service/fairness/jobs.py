"""The ``fairness`` job's handler: an audit with and without the protected attributes."""

from __future__ import annotations

from typing import Any

from service.fairness import service as fairness
from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, handles


@handles(JobKind.fairness)
def audit(job: JobContext) -> dict[str, Any]:
    return fairness.run_job(
        job.session_factory, job.settings, job.params, job.progress, job.cancelled
    )

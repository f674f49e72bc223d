"""The ``btyd`` job's handler: the BTYD diagnostics report."""

from __future__ import annotations

from typing import Any

from service.diagnostics import service as diagnostics
from service.diagnostics.schemas import BtydReportRequest
from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, job_handler


@job_handler(JobKind.btyd, params=BtydReportRequest)
def btyd_report(job: JobContext, params: BtydReportRequest) -> dict[str, Any]:
    """Compute, store; the result names the stored report."""
    body = diagnostics.compute(job.session_factory, params, job.progress)
    return {"report_id": diagnostics.store(job.session_factory, body), "as_of": body["as_of"]}

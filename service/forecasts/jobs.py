"""The ``forecast`` job's handler: compute, store; the result names the stored forecast."""

from __future__ import annotations

from typing import Any

from service.forecasts import service as forecasts
from service.forecasts.schemas import ForecastRequest
from service.jobs.kinds import JobKind
from service.jobs.registry import JobContext, job_handler


@job_handler(JobKind.forecast, params=ForecastRequest)
def forecast(job: JobContext, params: ForecastRequest) -> dict[str, Any]:
    body, chart = forecasts.compute(job.session_factory, job.settings, params, job.progress)
    forecast_id = forecasts.store(job.session_factory, body, chart)
    return {
        "forecast_id": forecast_id,
        "first_day": body["first_day"],
        "last_day": body["last_day"],
        "revenue": body["total"]["revenue"],
    }

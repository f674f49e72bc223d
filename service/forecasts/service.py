"""Forecasts of the shop's revenue and orders: queued as a job, computed from the stored scores,
the stored day aggregates and the champion's BTYD curves (``service.forecasts.model``), stored
as a report (``reports``, kind ``forecast``: the body as JSON, the chart as PNG) and served by
its id, which the job's result names. A forecast is never recomputed on read: it is what the
shop looked like when it was asked for.

It starts on the day of the newest stored score (the scores are kept fresh as events arrive)
and its history ends on the day before. Computing it reads every score and every customer's
day aggregates (no event), so it runs as a job (``clv forecast`` runs it in the foreground).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import ConflictError, NotFoundError
from service.forecasts import repository
from service.forecasts.charts import forecast_png
from service.forecasts.history import ShopHistory
from service.forecasts.inputs import build_inputs
from service.forecasts.model import forecast
from service.forecasts.periods import Granularity, periods
from service.forecasts.repository import KIND
from service.forecasts.schemas import ForecastRead, ForecastRequest
from service.jobs import service as jobs
from service.jobs.kinds import JobKind
from service.jobs.schemas import JobRead
from service.ml.activity import day_number
from service.ml.artifacts import device_for
from service.ml.metrics import finite
from service.model_versions import repository as versions
from service.model_versions.store import load_version
from service.portrait import repository as portrait
from service.reports import repository as reports
from service.reports.models import Report

NO_CHAMPION = (
    "no champion: a forecast spreads the stored scores along the champion's purchase curves; "
    "train one (POST /v1/models)"
)
NO_SCORES = (
    "no stored scores yet: the champion's rescoring job stores them; forecast once it has run"
)
HISTORY_PERIODS = {"day": 56, "week": 52, "month": 24}
"""Periods of history kept beside the forecast, for the chart and for the reader's eye."""


def submit(session: Session, request: ForecastRequest, actor: str) -> JobRead:
    """Queue a forecast; 404 without a champion, 409 before any score is stored."""
    refuse_unforecastable(session)
    return jobs.submit(session, JobKind.forecast, request, actor, whole=True)


def refuse_unforecastable(session: Session) -> None:
    if "champion" not in versions.aliases(session):
        raise NotFoundError(NO_CHAMPION)
    if not repository.has_scores(session):
        raise ConflictError(NO_SCORES)


def get(session: Session, forecast_id: int) -> ForecastRead:
    return reports.read_as(_stored(session, forecast_id), ForecastRead)


def chart(session: Session, forecast_id: int) -> bytes:
    found = _stored(session, forecast_id).chart
    if found is None:
        raise NotFoundError(f"forecast {forecast_id} has no chart")
    return found


def _stored(session: Session, forecast_id: int) -> Report:
    report = repository.forecast(session, forecast_id)
    if report is None:
        raise NotFoundError(
            f"no forecast {forecast_id}: queue one with POST /v1/forecasts; its job's result "
            "names the forecast once it has run"
        )
    return report


def store(session_factory: sessionmaker[Session], body: dict[str, Any], chart: bytes) -> int:
    with session_factory() as session, session.begin():
        return reports.save(session, KIND, body, chart=chart).id


def compute(
    session_factory: sessionmaker[Session],
    settings: Settings,
    request: ForecastRequest,
    progress: Callable[[str, float], None] | None = None,
) -> tuple[dict[str, Any], bytes]:
    """(forecast body, PNG chart)."""
    started = time.monotonic()
    report = progress or (lambda stage, done: None)
    report("reading the scores and the day aggregates", 0.0)
    with session_factory() as session:
        refuse_unforecastable(session)
        version, model = load_version(
            session, settings.model_dir, "champion", device_for(settings.device)
        )
        scores = repository.stored_scores(session)
        activity = portrait.load_activity(session)
    newest = pd.Timestamp(scores["as_of"].max()).to_pydatetime()
    last_day = day_number(newest) - 1  # its history: the whole days before the newest score
    score_days = np.array([day_number(moment) for moment in scores["as_of"]])
    predictions = scores[["expected_orders", "expected_order_value", "horizon_days"]].assign(
        offset_days=last_day + 1 - score_days
    )
    report("forecasting", 0.4)
    inputs = build_inputs(activity, predictions, model, last_day)
    body = forecast(
        inputs,
        days=request.horizon_days,
        granularity=request.granularity,
        by_category=request.by == "category",
    )
    body.update(
        model_version=version,
        as_of=newest.isoformat(),
        champion_horizon_days=model.horizon_days,
        by=request.by,
        history=_history(inputs.history, request.granularity),
        seconds=round(time.monotonic() - started, 2),
    )
    report("drawing the chart", 0.95)
    body = finite(body)
    return body, forecast_png(body)


def _history(history: ShopHistory, granularity: Granularity) -> list[dict[str, Any]]:
    """The last ``HISTORY_PERIODS`` periods of revenue and orders before the forecast (the
    history's first period is left out: it is usually partial, begun by the first order)."""
    span = periods(history.first_day, len(history.revenue), granularity)
    revenue, orders = span.sum(history.revenue), span.sum(history.orders)
    kept = range(1, len(span))[-HISTORY_PERIODS[granularity] :]
    return [
        {
            "start": span.starts[i].isoformat(),
            "end": span.ends[i].isoformat(),
            "revenue": round(float(revenue[i]), 4),
            "orders": float(orders[i]),
        }
        for i in kept
    ]

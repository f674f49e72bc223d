"""The truth about models in production: each stored score whose horizon has passed, against
what the customer then spent.

Per model version, a customer's *first* stored score by it counts (as of when that version
started serving them: in practice the rescoring of everyone when it became champion), so each
version is judged on one prediction per customer, made before the outcome, like a backtest;
later rescorings of the same customer would add predictions made with part of the outcome
already known. Actual spend is what the backtest and training labels use: orders in
(as_of, as_of + horizon]. The figures are stored (reports of kind ``accuracy``, one per version)
by the ``accuracy`` job that workers run every ``CLV_MONITOR_INTERVAL_MINUTES``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.events import repository as events
from service.learning.schemas import AccuracyRead, VersionAccuracy
from service.ml.metrics import evaluate, finite
from service.model_versions import repository as model_versions
from service.reports import repository as reports
from service.scoring import repository as scored
from service.webhooks import service as webhooks

ACCURACY_REPORT = "accuracy"
MIN_MATURED = 20  # fewer customers make deciles and a Gini meaningless

_COLUMNS = (
    "customer_id",
    "model_version",
    "horizon_days",
    "as_of",
    "clv",
    "purchase_probability",
    "p10",
    "p90",
    "btyd_clv",
)


def first_matured_scores(session: Session, now: datetime) -> pd.DataFrame:
    """Each version's first stored score per customer (the lowest id: rows are appended), of
    those whose horizon ended by ``now``. The database picks the first rows, so the history of
    every rescoring never crosses the wire."""
    scores = pd.DataFrame(scored.first_scores(session, _COLUMNS, now), columns=list(_COLUMNS))
    scores["as_of"] = pd.to_datetime(scores["as_of"], utc=True)
    ends = scores["as_of"] + pd.to_timedelta(scores["horizon_days"], unit="D")
    return scores.loc[ends <= pd.Timestamp(now)].reset_index(drop=True)


def actual_spend(session: Session, scores: pd.DataFrame) -> np.ndarray:
    """Orders of each score's customer in (as_of, as_of + horizon], in the shop currency."""
    if scores.empty:
        return np.zeros(0)
    start = scores["as_of"].min().to_pydatetime()
    end = (scores["as_of"] + pd.to_timedelta(scores["horizon_days"], unit="D")).max()
    orders = pd.DataFrame(
        events.orders_in(session, start, end.to_pydatetime()),
        columns=["customer_id", "at", "amount"],
    )
    orders["at"] = pd.to_datetime(orders["at"], utc=True)
    orders["amount"] = orders["amount"].astype(float)
    windows = scores[["customer_id", "as_of", "horizon_days"]].reset_index()
    joined = windows.merge(orders, on="customer_id")
    inside = (joined["at"] > joined["as_of"]) & (
        joined["at"] <= joined["as_of"] + pd.to_timedelta(joined["horizon_days"], unit="D")
    )
    spent = joined.loc[inside].groupby("index")["amount"].sum()
    actual: np.ndarray = spent.reindex(range(len(scores)), fill_value=0.0).to_numpy(dtype=float)
    return actual


def version_accuracy(
    version: str, scores: pd.DataFrame, actual: np.ndarray, now: datetime
) -> VersionAccuracy:
    enough = len(scores) >= MIN_MATURED
    return VersionAccuracy(
        version=version,
        computed_at=now,
        matured=len(scores),
        horizon_days=sorted(int(h) for h in scores["horizon_days"].unique()),
        as_of_from=scores["as_of"].min().to_pydatetime() if len(scores) else None,
        as_of_to=scores["as_of"].max().to_pydatetime() if len(scores) else None,
        metrics=finite(
            evaluate(
                actual,
                scores["clv"].to_numpy(),
                purchase_probability=scores["purchase_probability"].to_numpy(),
                p10=scores["p10"].to_numpy(),
                p90=scores["p90"].to_numpy(),
            )
        )
        if enough
        else None,
        btyd=finite(evaluate(actual, scores["btyd_clv"].to_numpy())) if enough else None,
    )


def refresh_accuracy(
    session_factory: sessionmaker[Session], settings: Settings, now: datetime | None = None
) -> AccuracyRead:
    """Compute every version's matured accuracy and store it (one report per version); when
    the champion's has just dropped (``accuracy_dropped``), queue an ``accuracy.dropped``
    webhook with it."""
    now = now or datetime.now(UTC)
    with session_factory() as session:
        scores = first_matured_scores(session, now)
        actual = actual_spend(session, scores)
        versions = scored.scored_versions(session)
        before = monitored_figures(session)
    results = []
    for version in versions:
        mine = (scores["model_version"] == version).to_numpy()
        results.append(version_accuracy(version, scores.loc[mine], actual[mine], now))
    with session_factory() as session, session.begin():
        for result in results:
            body = result.model_dump(mode="json")
            reports.save(session, ACCURACY_REPORT, body, subject=result.version, now=now)
        champion = model_versions.aliases(session).get("champion")
        after = monitored_figures(session)  # with the reports just saved (flushed)
        if champion is not None and _dropped_now(before, after, champion):
            mine = {figure: by[champion] for figure, by in after.items() if champion in by}
            webhooks.notify(
                session, settings, "accuracy.dropped", {"model_version": champion, **mine}
            )
    return AccuracyRead(versions=sorted(results, key=lambda r: r.version, reverse=True))


def _dropped_now(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], version: str
) -> bool:
    """Dropped with these figures and not with the previous ones: notified once, not on every
    accuracy job while it lasts."""
    return accuracy_dropped(after, version) and not accuracy_dropped(before, version)


ACCURACY_DROP = 0.15
"""How far below its validation Gini a version's matured Gini may fall before it counts as a
drop (the ``ClvMaturedAccuracyBelowValidation`` alert uses the same margin): the two are measured
on different populations (the validation judged customers with an order; matured predictions
include everyone scored)."""


def accuracy_dropped(figures: dict[str, dict[str, float]], version: str) -> bool:
    """Whether ``version``'s matured Gini is more than ``ACCURACY_DROP`` below its validation
    figure, or below the BTYD baseline's on the same customers."""
    matured = figures.get("matured_gini", {}).get(version)
    if matured is None:
        return False
    validation = figures.get("validation_gini", {}).get(version)
    btyd = figures.get("matured_btyd_gini", {}).get(version)
    below_validation = validation is not None and matured < validation - ACCURACY_DROP
    return below_validation or (btyd is not None and matured < btyd)


def stored_accuracy(session: Session) -> AccuracyRead:
    """The latest stored figures of every version, newest version first."""
    stored = reports.latest_per_subject(session, ACCURACY_REPORT)
    versions = [VersionAccuracy.model_validate(report.body) for report in stored]
    return AccuracyRead(versions=sorted(versions, key=lambda r: r.version, reverse=True))


def monitored_figures(session: Session) -> dict[str, dict[str, float]]:
    """For ``/metrics`` (``service.ops.metrics.accuracy_gauges``), per version with enough
    matured predictions: their normalised Gini and decile MAPE, the BTYD baseline's Gini on the
    same customers, and the Gini and decile MAPE its served candidate had on the window it was
    chosen on. The alert rules compare them (``deploy/prometheus/alerts.yml``)."""
    figures: dict[str, dict[str, float]] = defaultdict(dict)

    def put(figure: str, version: str, value: object) -> None:
        if isinstance(value, int | float) and math.isfinite(value):
            figures[figure][version] = float(value)

    matured = [v for v in stored_accuracy(session).versions if v.metrics is not None]
    trained = model_versions.metrics_of(session, [v.version for v in matured])
    for accuracy in matured:
        version, found = accuracy.version, accuracy.metrics or {}
        put("matured_gini", version, found.get("normalized_gini"))
        put("matured_decile_mape", version, found.get("decile_mape"))
        put("matured_btyd_gini", version, (accuracy.btyd or {}).get("normalized_gini"))
        metrics = trained.get(version, {})
        chosen = metrics.get("candidates", {}).get(metrics.get("served")) or {}
        put("validation_gini", version, chosen.get("normalized_gini"))
        put("validation_decile_mape", version, chosen.get("decile_mape"))
    return figures

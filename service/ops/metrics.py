"""Prometheus metrics.

Defined once per process (the client library keeps a global registry). With several API worker
processes (``clv serve --workers N``) each process writes its samples to files under
``PROMETHEUS_MULTIPROC_DIR``, which ``clv serve`` points at a fresh directory before the workers
start, and a scrape of any process sums them: counters and histograms are totals over the
processes, and ``clv_model_loaded`` keeps one series per live process (``pid``), so a promotion
can be seen reaching each of them.

Queue depths, job states and the latest drift check's figures are not counted by any one process:
they are read from the database at scrape time, so every process reports the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""The environment variable the client library reads, at import, to switch to shared files."""

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_COMPUTE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "clv_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "clv_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
RATE_LIMIT_UNAVAILABLE = Counter(
    "clv_rate_limit_unavailable_total",
    "Requests let through without a rate limit because Redis (CLV_REDIS_URL) did not answer.",
)
EVENTS = Counter(
    "clv_events_total",
    "Events received through the API or CSV import, by outcome.",
    ["outcome"],
)
EVENTS_APPLIED = Counter(
    "clv_events_applied_total",
    "Stored events applied to the customer portrait by a worker in this process.",
)
DEAD_LETTERS = Counter(
    "clv_dead_letters_total",
    "Stored events a worker in this process could not apply and set aside as dead letters.",
)
SCORING = Histogram(
    "clv_scoring_duration_seconds",
    "Time to compute scores for one call of the scoring engine (events read, features, "
    "network, attributions when asked), by purpose: request (computed to answer a request) "
    "or refresh (stored scores kept fresh in the background).",
    ["purpose"],
    buckets=_COMPUTE_BUCKETS,
)
SCORED = Counter(
    "clv_customers_scored_total",
    "Customers scored by the scoring engine, by purpose.",
    ["purpose"],
)
EXPLANATION = Histogram(
    "clv_explanation_duration_seconds",
    "Time to compute SHAP attributions for one group of customers (those with events, or "
    "those scored from their profile alone) in a call of the scoring engine.",
    buckets=_COMPUTE_BUCKETS,
)
EXPLAINED = Counter("clv_customers_explained_total", "Customers given SHAP attributions.")
MODEL_LOADED = Gauge(
    "clv_model_loaded",
    "1 for the model version this process serves for an alias (champion).",
    ["alias", "version"],
    multiprocess_mode="liveall",
)
JOBS_FAILED = Counter(
    "clv_jobs_failed_total",
    "Jobs that ended failed in this process (an error, or stopped by a shutdown), or that its "
    "runner marked failed after their worker stopped beating, by kind.",
    ["kind"],
)
MODEL_REFUSED = Counter(
    "clv_model_refusals_total",
    "Model artifacts refused at load (corrupt, truncated or of another schema), by alias.",
    ["alias"],
)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


def record_ingestion(accepted: int, duplicates: int, rejected: int) -> None:
    EVENTS.labels("accepted").inc(accepted)
    EVENTS.labels("duplicate").inc(duplicates)
    EVENTS.labels("rejected").inc(rejected)


def model_loaded(alias: str, version: str, previous: str | None) -> None:
    if previous is not None:
        MODEL_LOADED.labels(alias, previous).set(0)
    MODEL_LOADED.labels(alias, version).set(1)


def process_exiting() -> None:
    """Drop this process's live gauges (its loaded model) from the shared files."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _process_registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


class _Snapshot:
    """A collector for values read once, at scrape time."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> list[Metric]:
        return self.metrics


def database_gauges(
    jobs: Mapping[tuple[str, str], int],
    pending_events: int,
    oldest_pending_seconds: float,
    stale_scores: int,
    oldest_stale_seconds: float,
    dead_letters: int,
    unexplained_scores: int,
) -> list[Metric]:
    by_state = GaugeMetricFamily(
        "clv_jobs", "Jobs in the database, by kind and status.", labels=["kind", "status"]
    )
    for (kind, status), count in sorted(jobs.items()):
        by_state.add_metric([kind, status], count)
    return [
        by_state,
        GaugeMetricFamily(
            "clv_pending_events",
            "Stored events not yet applied to the portrait (the worker's backlog).",
            value=pending_events,
        ),
        GaugeMetricFamily(
            "clv_pending_events_oldest_seconds",
            "How long the event queued longest has waited to be applied (0: none queued): the "
            "workers' lag, wherever they run.",
            value=oldest_pending_seconds,
        ),
        GaugeMetricFamily(
            "clv_dead_letters",
            "Stored events set aside because applying them failed (clv events dead-letters).",
            value=dead_letters,
        ),
        GaugeMetricFamily(
            "clv_stale_scores",
            "Customers queued for a fresh score (the rescoring backlog).",
            value=stale_scores,
        ),
        GaugeMetricFamily(
            "clv_stale_scores_oldest_seconds",
            "How long the customer queued longest for a fresh score has waited (0: none queued).",
            value=oldest_stale_seconds,
        ),
        GaugeMetricFamily(
            "clv_unexplained_scores",
            "Stored scores whose attributions are still to be computed (explained after every "
            "stale customer is rescored).",
            value=unexplained_scores,
        ),
    ]


ACCURACY_GAUGES = {
    "matured_gini": (
        "clv_matured_normalized_gini",
        "Normalised Gini of each model version's matured predictions: its first stored score "
        "per customer whose horizon has passed, against what they spent (GET "
        "/v1/monitoring/accuracy).",
    ),
    "matured_decile_mape": (
        "clv_matured_decile_mape",
        "Decile MAPE of each model version's matured predictions.",
    ),
    "matured_btyd_gini": (
        "clv_matured_btyd_normalized_gini",
        "Normalised Gini of the BTYD baseline's predictions for the same matured customers.",
    ),
    "validation_gini": (
        "clv_validation_normalized_gini",
        "Normalised Gini of each version's served candidate on the time-later window it was "
        "chosen on, when it was trained.",
    ),
    "validation_decile_mape": (
        "clv_validation_decile_mape",
        "Decile MAPE of each version's served candidate on the window it was chosen on.",
    ),
}
"""What ``accuracy_gauges`` exposes: (metric name, help) by figure."""


def accuracy_gauges(figures: Mapping[str, Mapping[str, float]]) -> list[Metric]:
    """One gauge per figure of ``ACCURACY_GAUGES``, labelled by version: {figure: {version:
    value}}, as ``service.learning.matured.monitored_figures`` reads them."""
    families: list[Metric] = []
    for figure, (name, documentation) in ACCURACY_GAUGES.items():
        family = GaugeMetricFamily(name, documentation, labels=["version"])
        for version, value in sorted(figures.get(figure, {}).items()):
            family.add_metric([version], value)
        families.append(family)
    return families


def drift_gauges(body: Mapping[str, Any], checked_at: datetime) -> list[Metric]:
    """The latest stored drift check's figures (``service.drift``)."""
    detected = GaugeMetricFamily(
        "clv_drift_detected",
        "1 when the latest drift check found drift (see GET /v1/monitoring/drift), else 0.",
        value=int(body["drifted"]),
    )
    checked = GaugeMetricFamily(
        "clv_drift_check_timestamp_seconds",
        "When the latest drift check ran (Unix time).",
        value=checked_at.timestamp(),
    )
    score = GaugeMetricFamily(
        "clv_score_drift_psi",
        "PSI of the champion's predicted spend, its training population against now.",
        value=body["score"]["psi"],
    )
    features = GaugeMetricFamily(
        "clv_feature_drift_psi",
        "PSI of each portrait feature, the champion's training population against now.",
        labels=["feature"],
    )
    for feature in body["features"]:
        features.add_metric([feature["feature"]], feature["psi"])
    segments = GaugeMetricFamily(
        "clv_segment_purchase_rate_change",
        "Each profile segment's purchase-rate change relative to its attribute's median segment.",
        labels=["attribute", "level"],
    )
    for segment in body["segments"]:
        segments.add_metric([segment["attribute"], segment["level"]], segment["excess_change"])
    found: list[Metric] = [detected, checked, score, features, segments]
    if body["purchase_rate"]["change"] is not None:
        found.append(
            GaugeMetricFamily(
                "clv_purchase_rate_change",
                "Relative change of orders per active customer, training window against now.",
                value=body["purchase_rate"]["change"],
            )
        )
    return found


def exposition(database: list[Metric] | None) -> bytes:
    """Every metric in the Prometheus text format: this process's (or all processes'),
    then the database's, or ``clv_database_up 0`` when it could not be read."""
    up = GaugeMetricFamily(
        "clv_database_up",
        "1 when the database answered this scrape.",
        value=int(database is not None),
    )
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(_Snapshot([up, *(database or [])]))
    return generate_latest(_process_registry()) + generate_latest(snapshot)

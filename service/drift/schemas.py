"""Public schemas of the drift check."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import UtcDatetime


class DriftCheckRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{}, {"as_of": "2026-11-01T00:00:00Z"}]}
    )

    as_of: UtcDatetime | None = Field(
        default=None,
        description="Check the customers active in the window before this time (default: now, "
        "when the job runs).",
    )


class PopulationRead(BaseModel):
    window_from: datetime = Field(description="The window's start (exclusive).")
    window_to: datetime = Field(
        description="The window's end: the moment the features and scores describe."
    )
    customers: int = Field(description="Customers with any event in the window.")
    orders: int = Field(description="Their orders in the window.")
    buyers: int = Field(description="Those of them who ordered in the window.")
    orders_per_customer_30d: float = Field(description="Orders per customer per 30 days.")
    share_buying: float = Field(description="buyers / customers.")


class ShiftRead(BaseModel):
    psi: float = Field(description="Population stability index on the reference's deciles.")
    ks: float = Field(description="Two-sample Kolmogorov-Smirnov statistic (0 to 1).")
    ks_pvalue: float = Field(
        description="Its p-value: with thousands of customers tiny for trivial differences, so "
        "reported, not thresholded."
    )
    reference_mean: float = Field(description="Mean in the reference population.")
    current_mean: float = Field(description="Mean in the current population.")
    drifted: bool = Field(description="PSI and KS both at or above their thresholds.")


class FeatureDriftRead(BaseModel):
    feature: str = Field(description="The portrait feature (see GET /v1/features).")
    group: str = Field(description="Its group: purchase history, browsing, profile, ...")
    psi: float = Field(description="Population stability index on the reference's deciles.")
    ks: float = Field(description="Two-sample Kolmogorov-Smirnov statistic (0 to 1).")
    ks_pvalue: float = Field(description="Its p-value (reported, not thresholded).")
    reference_mean: float = Field(description="Mean in the reference population.")
    current_mean: float = Field(description="Mean in the current population.")
    drifted: bool = Field(description="PSI and KS both at or above their thresholds.")


class PurchaseRateDriftRead(BaseModel):
    reference: float = Field(description="Orders per active customer per 30 days, reference.")
    current: float = Field(description="The same, now.")
    change: float | None = Field(
        description="current / reference - 1 (null when the reference had no order). Moves "
        "with the seasons too: compare windows of the same season before acting on it alone."
    )
    drifted: bool = Field(description="|change| at or above CLV_DRIFT_PURCHASE_RATE_THRESHOLD.")


class SegmentDriftRead(BaseModel):
    attribute: str = Field(description="A profile attribute the model encodes.")
    level: str = Field(description="Its value that defines the segment.")
    reference_customers: int = Field(description="Active customers of the segment, reference.")
    current_customers: int = Field(description="Active customers of the segment, now.")
    reference_rate: float = Field(description="Their orders per customer per 30 days, reference.")
    current_rate: float = Field(description="The same, now.")
    change: float = Field(description="The segment's own relative change.")
    excess_change: float = Field(
        description="Its change relative to the median segment of the attribute: "
        "(1 + change) / (1 + median change) - 1. Seasons move every segment alike and cancel."
    )
    z: float = Field(description="The excess change in Poisson standard errors of a rate ratio.")
    drifted: bool = Field(
        description="|excess_change| at or above the purchase-rate threshold and |z| >= 4."
    )


class ThresholdsRead(BaseModel):
    psi: float = Field(description="CLV_DRIFT_PSI_THRESHOLD.")
    ks: float = Field(description="CLV_DRIFT_KS_THRESHOLD.")
    purchase_rate: float = Field(description="CLV_DRIFT_PURCHASE_RATE_THRESHOLD.")
    min_segment_customers: int = Field(description="CLV_DRIFT_MIN_SEGMENT_CUSTOMERS.")
    min_segment_z: float = Field(description="The |z| a drifting segment must also reach.")


class DriftReportBody(BaseModel):
    """What is stored (``reports.body``, kind ``drift``, subject the model version)."""

    model_version: str = Field(
        description="The champion checked, whose training window is the reference."
    )
    as_of: datetime = Field(description="The check's moment.")
    window_days: int = Field(description="The length of both windows (CLV_DRIFT_WINDOW_DAYS).")
    drifted: bool = Field(description="Whether anything drifted (then reasons say what).")
    reasons: list[str] = Field(description="One line per drifted item, for people.")
    reference: PopulationRead = Field(
        description="Customers active in the window before the model's training data end."
    )
    current: PopulationRead = Field(description="Customers active in the window before as_of.")
    thresholds: ThresholdsRead = Field(description="The thresholds applied.")
    purchase_rate: PurchaseRateDriftRead = Field(description="The shop's purchase rate.")
    segments: list[SegmentDriftRead] = Field(
        description="Purchase rate per profile segment, largest |excess_change| first."
    )
    score: ShiftRead = Field(description="The champion's predicted spend (clv) distribution.")
    features: list[FeatureDriftRead] = Field(
        description="Every portrait feature the model uses but the calendar ones, largest PSI "
        "first."
    )
    excluded_features: list[str] = Field(
        description="Features not compared: the calendar group (the season of the cut-off and "
        "of the first visit) differs between any two moments by construction."
    )
    learning_job_id: int | None = Field(
        description="The learning job queued because of this check (CLV_LEARNING_ON_DRIFT)."
    )
    seconds: float = Field(description="How long the check took.")


class DriftReportRead(DriftReportBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "created_at": "2026-11-29T03:00:12Z",
                    "model_version": "clv-20260801-030000-123456",
                    "as_of": "2026-11-29T03:00:00Z",
                    "window_days": 90,
                    "drifted": True,
                    "reasons": [
                        "purchase rate of acquisition_channel=organic -48% against the median "
                        "acquisition_channel (own change -61%)"
                    ],
                    "reference": {
                        "window_from": "2026-05-03T00:00:00Z",
                        "window_to": "2026-08-01T00:00:00Z",
                        "customers": 1354,
                        "orders": 1270,
                        "buyers": 921,
                        "orders_per_customer_30d": 0.313,
                        "share_buying": 0.68,
                    },
                    "current": {
                        "window_from": "2026-08-31T03:00:00Z",
                        "window_to": "2026-11-29T03:00:00Z",
                        "customers": 2073,
                        "orders": 1471,
                        "buyers": 1213,
                        "orders_per_customer_30d": 0.237,
                        "share_buying": 0.585,
                    },
                    "thresholds": {
                        "psi": 0.2,
                        "ks": 0.1,
                        "purchase_rate": 0.3,
                        "min_segment_customers": 200,
                        "min_segment_z": 4.0,
                    },
                    "purchase_rate": {
                        "reference": 0.313,
                        "current": 0.237,
                        "change": -0.243,
                        "drifted": False,
                    },
                    "segments": [
                        {
                            "attribute": "acquisition_channel",
                            "level": "organic",
                            "reference_customers": 452,
                            "current_customers": 692,
                            "reference_rate": 0.331,
                            "current_rate": 0.13,
                            "change": -0.61,
                            "excess_change": -0.48,
                            "z": -9.3,
                            "drifted": True,
                        }
                    ],
                    "score": {
                        "psi": 0.071,
                        "ks": 0.082,
                        "ks_pvalue": 1.2e-7,
                        "reference_mean": 40.1,
                        "current_mean": 34.7,
                        "drifted": False,
                    },
                    "features": [
                        {
                            "feature": "days_since_last_order",
                            "group": "purchase history",
                            "psi": 0.113,
                            "ks": 0.129,
                            "ks_pvalue": 3.4e-13,
                            "reference_mean": 71.2,
                            "current_mean": 96.5,
                            "drifted": False,
                        }
                    ],
                    "excluded_features": [
                        "cutoff_season_sin",
                        "cutoff_season_cos",
                        "first_visit_season_sin",
                        "first_visit_season_cos",
                    ],
                    "learning_job_id": None,
                    "seconds": 4.2,
                }
            ]
        }
    )

    id: int = Field(description="The stored report's id.")
    created_at: datetime = Field(description="When it was stored.")

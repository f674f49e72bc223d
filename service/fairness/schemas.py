"""Public schemas of the fairness report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.fairness.defaults import DEFAULT_EPOCHS, DEFAULT_HORIZON_DAYS
from service.schemas import UtcDatetime


class FairnessRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"horizon_days": 180, "epochs": 10}]},
    )

    as_of: UtcDatetime | None = Field(
        default=None,
        description="The backtest's cut-off: both models train on the events up to it and are "
        "judged on the spend in the horizon after it (default: the latest cut-off whose whole "
        "horizon is in the data).",
    )
    horizon_days: int = Field(
        default=DEFAULT_HORIZON_DAYS, ge=28, le=1825, description="The horizon of spend judged."
    )
    epochs: int = Field(
        default=DEFAULT_EPOCHS, ge=1, le=200, description="Upper bound on each model's epochs."
    )


class GroupMetricsRead(BaseModel):
    group: str = Field(description="The attribute's value; unknown where it is missing.")
    count: int = Field(description="Customers in the group.")
    mean_predicted: float | None = Field(description="Mean predicted spend in the horizon.")
    mean_actual: float | None = Field(description="Mean actual spend in the horizon.")
    mae: float | None = Field(description="Mean absolute error of the predicted spend.")
    calibration_ratio: float | None = Field(
        description="Mean predicted / mean actual (1: calibrated); null when the group spent "
        "nothing."
    )
    top_decile_share: float | None = Field(
        description="Share of the group's customers in the top decile of predicted value (over "
        "all customers): what a top-10% campaign selects of it."
    )
    intervals: dict[str, list[float] | None] = Field(
        description="Per metric: bootstrap 2.5th and 97.5th percentiles of the group's value."
    )


class DisparityRead(BaseModel):
    difference: float | None = Field(description="Largest group value minus the smallest.")
    difference_interval: list[float] | None = Field(
        description="Bootstrap 2.5th and 97.5th percentiles of the difference."
    )
    ratio: float | None = Field(description="Smallest group value over the largest (1: parity).")
    ratio_interval: list[float] | None = Field(
        description="Bootstrap 2.5th and 97.5th percentiles of the ratio."
    )


class AttributeAuditRead(BaseModel):
    groups: list[GroupMetricsRead] = Field(description="The metrics of each group.")
    disparities: dict[str, DisparityRead] = Field(
        description="Per metric (mean_predicted, mean_actual, mae, calibration_ratio, "
        "top_decile_share): how far apart the groups are."
    )


class ModelAuditRead(BaseModel):
    excluded_attributes: list[str] = Field(description="Attributes the model never saw.")
    profile_features: list[str] = Field(description="The profile features the model used.")
    accuracy: dict[str, Any] = Field(
        description="Accuracy over all customers: normalised Gini, decile MAPE, MAE, aggregate "
        "revenue error, ..."
    )
    top_decile_threshold: float = Field(
        description="The predicted value at which the top decile starts."
    )
    attributes: dict[str, AttributeAuditRead] = Field(description="The audit of each attribute.")


class BootstrapRead(BaseModel):
    samples: int = Field(description="Resamples of the customers (CLV_FAIRNESS_BOOTSTRAP).")
    seed: int = Field(description="Seed of the resampling: the same report recomputes the same.")
    quantiles: list[float] = Field(description="The interval's quantiles.")


class FairnessReportRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "created_at": "2026-11-28T19:01:47Z",
                    "as_of": "2026-05-31T17:12:09+00:00",
                    "horizon_days": 180,
                    "epochs": 10,
                    "customers": 4812,
                    "attributes": ["gender", "age_band", "region"],
                    "absent_attributes": [],
                    "bootstrap": {"samples": 200, "seed": 0, "quantiles": [0.025, 0.975]},
                    "with_protected_attributes": {
                        "excluded_attributes": [],
                        "profile_features": ["gender=female", "gender=male", "..."],
                        "accuracy": {"normalized_gini": 0.61, "mae": 88.4},
                        "top_decile_threshold": 402.7,
                        "attributes": {
                            "gender": {
                                "groups": [
                                    {
                                        "group": "female",
                                        "count": 2406,
                                        "mean_predicted": 151.2,
                                        "mean_actual": 149.8,
                                        "mae": 88.1,
                                        "calibration_ratio": 1.009,
                                        "top_decile_share": 0.101,
                                        "intervals": {"mean_actual": [141.0, 159.2]},
                                    }
                                ],
                                "disparities": {
                                    "mean_actual": {
                                        "difference": 21.4,
                                        "difference_interval": [9.8, 61.0],
                                        "ratio": 0.87,
                                        "ratio_interval": [0.66, 0.94],
                                    }
                                },
                            }
                        },
                    },
                    "without_protected_attributes": {"...": "the same, for the model without"},
                    "seconds": 84.2,
                }
            ]
        }
    )

    id: int = Field(description="The stored report's id.")
    created_at: datetime = Field(description="When it was computed.")
    as_of: datetime = Field(description="The backtest's cut-off.")
    horizon_days: int = Field(description="The horizon of spend judged after it.")
    epochs: int = Field(description="Upper bound on each model's training epochs.")
    customers: int = Field(description="Customers audited: every one with an event by as_of.")
    attributes: list[str] = Field(description="The configured attributes audited.")
    absent_attributes: list[str] = Field(
        description="Configured attributes no audited customer has (not audited)."
    )
    bootstrap: BootstrapRead = Field(description="How the intervals were computed.")
    with_protected_attributes: ModelAuditRead = Field(
        description="The model trained with every profile attribute."
    )
    without_protected_attributes: ModelAuditRead = Field(
        description="The same training without the protected attributes (CLV_FAIRNESS_ATTRIBUTES)."
    )
    seconds: float = Field(description="How long computing the report took.")

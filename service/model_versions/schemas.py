"""Public schemas of the model registry and of training jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, StrictBool, model_validator

from service.schemas import UtcDatetime, VersionId
from service.training import protected

Alias = Literal["champion", "challenger"]


class ModelVersionRead(BaseModel):
    version: str = Field(description="The version's id.")
    architecture: str = Field(description="Network architecture, e.g. gru_ziln.")
    horizon_days: int = Field(description="The horizon the model predicts spend over.")
    trained_horizon_days: int = Field(
        description="The longest horizon its labels covered; shorter than horizon_days when the "
        "data were too short, the rest carried by the BTYD purchase curve."
    )
    data_from: datetime = Field(description="The first event the training data held.")
    data_to: datetime = Field(description="The as-of time of the training data (no later event).")
    aliases: list[str] = Field(description="Aliases pointing at this version.")
    metrics: dict[str, Any] = Field(
        description="How it was chosen: every candidate's metrics (bgnbd, paretonbd, deep, blend) "
        "on the time-later window before its data end (window, customers, candidates), the one "
        "that serves and why (served, rule, reasons), the interval's coverage there, in-sample "
        "since it is calibrated there (p10_p90_coverage), the feature groups the data could not "
        "fit (omitted_feature_groups), each BTYD candidate's yearly season where the data showed "
        "one (seasons, Pareto/NBD's only: peak day of the year, amplitude, likelihood-ratio "
        "statistic) and the "
        "network's metrics on the customers held out of its training (held_out)."
    )
    sha256: str = Field(description="Checksum of the artifact.")
    created_at: datetime = Field(description="When it was registered.")
    created_by: str = Field(description="Who trained it (API key name or cli).")


class PromotionRead(BaseModel):
    alias: str = Field(description="The alias changed.")
    version: str = Field(description="The version it points at now.")
    previous_version: str | None = Field(description="The version it pointed at before.")
    action: str = Field(description="register, promote or rollback.")
    actor: str = Field(description="Who changed it.")
    at: datetime = Field(description="When.")


class PromoteRequest(BaseModel):
    alias: Alias = Field(default="champion", description="The alias to point at the version.")


class RollbackRequest(BaseModel):
    alias: Alias = Field(default="champion", description="The alias to point back.")
    version: VersionId | None = Field(
        default=None,
        description="Any version the alias pointed at before (default: the one before the "
        "current one).",
    )


class TrainRequest(BaseModel):
    horizon_days: int = Field(ge=1, le=1825, description="The horizon to predict spend over.")
    as_of: UtcDatetime | None = Field(
        default=None, description="Train on events up to this time (default: now)."
    )
    architecture: str = Field(default="gru_ziln", description="A registered architecture.")
    epochs: int = Field(default=25, ge=1, le=200, description="Upper bound on training epochs.")
    without_protected_attributes: StrictBool = Field(
        default=False,
        description="true: train without the protected profile attributes "
        "(CLV_FAIRNESS_ATTRIBUTES), whatever CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES says: the model "
        "never sees them, neither in training nor when it scores. Leaving them out is the "
        "default already (unless CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES=true); false asks nothing.",
    )
    with_protected_attributes: StrictBool = Field(
        default=False,
        description="true: train on the protected profile attributes too (opt in), whatever "
        "CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES says; false asks nothing (the setting decides). "
        "Not together with without_protected_attributes.",
    )

    @model_validator(mode="after")
    def _one_choice(self) -> Self:
        if self.with_protected_attributes and self.without_protected_attributes:
            raise ValueError(protected.BOTH)
        return self


class TrainParams(TrainRequest):
    """The ``train`` job's parameters: the request, with the moment it trains up to fixed when
    it was queued (a job that waits trains on the same data as one that ran at once)."""

    as_of: UtcDatetime

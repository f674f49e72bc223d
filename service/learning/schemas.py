"""Public schemas of the learning loop and of the accuracy of matured predictions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import UtcDatetime, VersionId


class Trigger(StrEnum):
    """What started a learning run (``service.learning.triggers``)."""

    demand = "demand"
    events = "events"
    schedule = "schedule"
    drift = "drift"


class LearnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: UtcDatetime | None = Field(
        default=None,
        description="Learn from the events up to this time (default now): the challenger is "
        "trained up to as_of minus CLV_LEARNING_HOLDOUT_DAYS and judged on the days after.",
    )
    mode: Literal["warm", "retrain"] | None = Field(
        default=None,
        description="warm: fine-tune the champion; retrain: train from scratch (default: "
        "CLV_LEARNING_MODE).",
    )
    challenger: VersionId | None = Field(
        default=None,
        description="Judge this registered version instead of training one.",
    )


class LearnParams(LearnRequest):
    """The ``learn`` job's parameters: a request, and what started it."""

    trigger: Trigger = Trigger.demand


class LearningDecisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The decision's id.")
    decided_at: datetime = Field(description="When it was decided.")
    trigger: str = Field(description="What started the run: demand, events, schedule or drift.")
    mode: str = Field(description="warm (fine-tuned champion), retrain, or given (a version).")
    outcome: str = Field(
        description="promoted, kept (as challenger), skipped (with why) or failed (the error)."
    )
    promoted: bool = Field(description="Whether the challenger became the champion.")
    reasons: list[str] = Field(description="Each check with its numbers, or why it was skipped.")
    champion_version: str | None = Field(description="The champion it was judged against.")
    challenger_version: str | None = Field(description="The challenger judged.")
    holdout_from: datetime | None = Field(description="The holdout's start (exclusive).")
    holdout_to: datetime | None = Field(description="The holdout's end.")
    champion_metrics: dict[str, Any] | None = Field(description="The champion on the holdout.")
    challenger_metrics: dict[str, Any] | None = Field(description="The challenger on it.")
    baseline_metrics: dict[str, Any] | None = Field(
        description="The BTYD baseline on the same customers."
    )
    job_id: int | None = Field(description="The learning job that ran it.")
    actor: str = Field(description="Who asked (API key name, cli, or scheduler).")


DECISION_IN_BRIEF = {
    "id",
    "outcome",
    "promoted",
    "champion_version",
    "challenger_version",
    "reasons",
}
"""What a learning job's result and its ``learning.decision`` webhook say of the decision."""


class VersionAccuracy(BaseModel):
    version: str = Field(description="The model version.")
    computed_at: datetime = Field(description="When these figures were computed.")
    matured: int = Field(description="Customers whose first score by it has matured.")
    horizon_days: list[int] = Field(description="The horizons of those scores.")
    as_of_from: datetime | None = Field(description="The earliest matured score's as-of time.")
    as_of_to: datetime | None = Field(description="The latest matured score's as-of time.")
    metrics: dict[str, Any] | None = Field(
        description="Backtest metrics of the matured scores against actual spend (null when "
        "none has matured yet)."
    )
    btyd: dict[str, Any] | None = Field(description="The BTYD figures stored beside them.")


class AccuracyRead(BaseModel):
    versions: list[VersionAccuracy] = Field(description="Per model version, newest first.")

"""The public shapes of scores, their explanations, their history and batches."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StrictBool

from service.risk.schemas import RiskFlagRead
from service.schemas import CustomerId, UtcDatetime, VersionId

MAX_BATCH_CUSTOMERS = 10_000
MAX_EXPLAINED_BATCH = 1_000
"""Explanations cost about 10 ms of CPU a customer when computed: a batch asking for them is
capped lower, so one request cannot hold a core for minutes."""

MAX_LIME_BATCH = 20
"""LIME fits a surrogate per customer on 1,000 perturbed copies (about 6 times SHAP's cost per
customer, ``bench/lime.py``): a batch asking for it is capped lower still."""

ExplainMethod = Literal["shap", "lime"]
_BOOLEAN_WORDS = {  # what a bool query parameter accepted before explain=lime
    **dict.fromkeys(("true", "1", "yes", "y", "on", "t"), "true"),
    **dict.fromkeys(("false", "0", "no", "n", "off", "f"), "false"),
}
ExplainParam = Annotated[
    Literal["true", "false", "shap", "lime"],
    BeforeValidator(lambda value: _BOOLEAN_WORDS.get(str(value).lower(), value)),
]
"""The ``explain`` query parameter: true (= shap, as when it was a bool; 1, yes, on too),
false, shap or lime."""


def explain_method(explain: bool | str) -> ExplainMethod | None:
    """Which attributions ``explain`` asks for: true and shap are SHAP's, lime LIME's."""
    if explain is True or explain in ("true", "shap"):
        return "shap"
    return "lime" if explain == "lime" else None


Rounded = Annotated[float, AfterValidator(lambda value: round(value, 4))]
"""Stored as double precision; four decimals are what a score means."""


class FeatureContribution(BaseModel):
    name: str = Field(description="The feature (or event channel) the network read.")
    group: str = Field(
        description="Its group, e.g. 'purchase history', 'recent activity sequence'."
    )
    description: str = Field(description="What it measures.")
    unit: str = Field(description="Its unit.")
    value: float = Field(description="The customer's value of it.")
    contribution: float = Field(
        description="Its SHAP value (with explain=lime: its weight in LIME's local linear "
        "surrogate), in the shop currency."
    )


class GroupContribution(BaseModel):
    group: str = Field(description="A group of features.")
    contribution: float = Field(description="The sum of its features' contributions.")


class ExplanationRead(BaseModel):
    base_value: float = Field(
        description="The expected clv of the background customers (the training population, "
        "summarised) at this horizon: where the contributions start from. With LIME: the "
        "surrogate's intercept (every input at the background's values)."
    )
    tolerance: float = Field(
        description="Stated bound: |base_value + sum of contributions - clv| <= tolerance * "
        "max(clv, 1). With LIME no bound is stated (its weights are a local linear surrogate, "
        "which does not add up to the score exactly): the gap this explanation has."
    )
    method: ExplainMethod = Field(
        default="shap",
        description="shap: Shapley values (expected gradients over the background; exact for a "
        "BTYD model), adding up to clv within tolerance. lime: the weights of a linear model "
        "fitted to the score on 1,000 perturbed copies of the same inputs (each feature and "
        "event channel the customer's or the same background's), seeded by the customer's id "
        "so the answer is reproducible; computed on request, never stored.",
    )
    local_prediction: float | None = Field(
        default=None,
        description="LIME only: the surrogate's value at the customer (base_value + sum of "
        "contributions), which approximates clv.",
    )
    fit_r2: float | None = Field(
        default=None,
        description="LIME only: the surrogate's weighted R^2 on its perturbed copies (1: the "
        "score is linear in the inputs around the customer).",
    )
    groups: list[GroupContribution] = Field(description="Contributions by group, largest first.")
    features: list[FeatureContribution] = Field(
        description="One contribution per feature, largest magnitude first."
    )


ChurnRisk = Literal["low", "medium", "high"]


class ClvScoreRead(BaseModel):
    customer_id: str = Field(description="The customer's id.")
    as_of: datetime = Field(description="The moment the score describes (events up to it).")
    horizon_days: int = Field(description="Days after as_of the spend is predicted over.")
    currency: str = Field(
        description="The shop currency of the money values. Money values are revenue times "
        "CLV_MARGIN (1 unless set: then they are margin), and the predicted ones are discounted "
        "to as_of at CLV_ANNUAL_DISCOUNT_RATE (0 unless set), the spend taken as spread evenly "
        "over the horizon."
    )
    clv: float = Field(description="Expected spend in the horizon (the same as predicted_clv).")
    predicted_clv: float = Field(description="Expected spend in the horizon: clv, by its name.")
    historic_clv: float | None = Field(
        description="Spend so far: orders less refunds up to as_of, times the margin (not "
        "discounted). Null for a score stored before this field existed, until it is rescored."
    )
    total_clv: float | None = Field(
        description="historic_clv + predicted_clv: the customer's value over their life up to "
        "the end of the horizon. Null when historic_clv is."
    )
    average_days_between_orders: float | None = Field(
        description="Mean days between the customer's purchase days up to as_of (orders on the "
        "same day count once); null with fewer than two purchase days."
    )
    p10: float = Field(
        description="Lower end of the 80% interval of the spend in the horizon (its 10% "
        "quantile; 0 where the customer may well not order). The interval is calibrated on a "
        "time-later window to cover 80% of customers."
    )
    p50: float = Field(description="Median spend in the horizon.")
    p90: float = Field(
        description="Upper end of the 80% interval: the 90% quantile, or lower (down to the 80% "
        "quantile) where the lower end is 0 and so cannot miss."
    )
    purchase_probability: float = Field(description="Probability of any purchase in the horizon.")
    probability_alive: float = Field(
        description="Probability the customer is still active (Pareto/NBD: graded for "
        "one-order customers, 1 right after an order; for a customer without an order, the "
        "purchase probability)."
    )
    churn_probability: float = Field(
        description="Probability of no order within the horizon, from the served model "
        "(1 - purchase_probability)."
    )
    churn_risk: ChurnRisk = Field(
        description="churn_probability in thirds: low (< 1/3), medium (< 2/3) or high."
    )
    expected_orders: float = Field(description="Expected orders in the horizon.")
    expected_order_value: float = Field(
        description="Expected value of one order (times the margin, not discounted)."
    )
    expected_next_order_date: date | None = Field(
        description="The day by which an order becomes more likely than not; null when that is "
        "beyond the horizon."
    )
    value_tier: int | None = Field(
        description="Decile of clv among the shop's customers (10 = the most valuable tenth), "
        "from the latest scoring of everyone by this model at this horizon; null until one."
    )
    btyd_clv: float = Field(description="The BTYD baseline's expected spend, for comparison.")
    cold_start: bool = Field(
        description="True for a customer without an order by as_of: scored from the population, "
        "the profile and any browsing."
    )
    model_version: str = Field(description="The model version that computed it.")
    computed_at: datetime = Field(description="When it was computed.")
    source: Literal["stored", "computed"] = Field(
        description="stored: the customer's kept-fresh score; computed: for this request (an "
        "as_of, a horizon other than the model's, or no stored score yet)."
    )
    stale_since: datetime | None = Field(
        default=None,
        description="For a stored score the worker has not yet caught up with: when the "
        "customer's newer events or attributes (or a new champion, or the score's age) queued "
        "them for a fresh score; null when the score is current.",
    )
    explanation: ExplanationRead | None = Field(
        default=None,
        description="SHAP attributions with explain=true (or shap), LIME's with explain=lime.",
    )
    risk_flags: list[RiskFlagRead] = Field(
        default_factory=list,
        description="Anomalies in the customer's recent behaviour as of as_of (a spend or refund "
        "spike for them), each with its reason; empty when none.",
    )


class ScoreHistoryEntry(BaseModel):
    computed_at: datetime = Field(description="When the score was computed.")
    as_of: datetime = Field(description="The moment it describes.")
    trigger: str = Field(
        description="What caused it: events (new events), attributes (a profile change) or "
        "model (a new champion)."
    )
    model_version: str = Field(description="The model version.")
    horizon_days: int = Field(description="Its horizon.")
    clv: Rounded = Field(description="Expected spend in the horizon.")
    p10: Rounded = Field(description="10% quantile.")
    p50: Rounded = Field(description="Median.")
    p90: Rounded = Field(description="90% quantile.")
    purchase_probability: Rounded = Field(description="Probability of any purchase.")
    probability_alive: Rounded = Field(description="Probability the customer is active.")
    expected_orders: Rounded = Field(description="Expected orders.")
    cold_start: bool = Field(description="Scored without an order.")


class ScoreHistoryRead(BaseModel):
    customer_id: str = Field(description="The customer's id.")
    entries: list[ScoreHistoryEntry] = Field(description="Newest first.")
    next_before: datetime | None = Field(
        description="Pass as before= for the next (older) page; null on the last page."
    )


class BatchScoreRequest(BaseModel):
    customer_ids: list[CustomerId] = Field(
        min_length=1,
        description=f"Up to {MAX_BATCH_CUSTOMERS:,} customer ids ({MAX_EXPLAINED_BATCH:,} with "
        "explain; more is 413); repeats are answered once.",
    )
    horizon_days: int | None = Field(
        default=None, ge=1, le=3650, description="Default: the champion's horizon."
    )
    as_of: UtcDatetime | None = Field(default=None, description="Default: now (stored scores).")
    explain: StrictBool | ExplainMethod = Field(
        default=False,
        description="true or shap: include SHAP attributions; lime: LIME's (up to "
        f"{MAX_LIME_BATCH} customers); false: none.",
    )


class BatchScoreRead(BaseModel):
    model_version: str = Field(description="The model version that scored them.")
    scores: list[ClvScoreRead] = Field(description="One per known customer, in request order.")
    not_found: list[str] = Field(description="Ids with neither events nor attributes.")


class FeatureImportance(BaseModel):
    name: str = Field(description="The feature.")
    group: str = Field(description="Its group.")
    description: str = Field(description="What it measures.")
    mean_abs_contribution: float = Field(description="Mean |SHAP value| over the sample.")


class GroupImportance(BaseModel):
    group: str = Field(description="A group of features.")
    mean_abs_contribution: float = Field(description="Mean |sum of its SHAP values|.")


class FeatureImportanceRead(BaseModel):
    model_version: str = Field(description="The champion whose stored attributions were read.")
    customers: int = Field(description="Customers in the sample.")
    groups: list[GroupImportance] = Field(description="Largest first.")
    features: list[FeatureImportance] = Field(description="Largest first.")


class RefusedVersion(BaseModel):
    version: str = Field(description="A version the alias named whose artifact was refused.")
    reason: str = Field(description="Why: corrupt, truncated, missing or of another schema.")


class ServingRead(BaseModel):
    alias: str = Field(description="The alias scores come from (champion).")
    registered: str | None = Field(
        description="The version the alias names in the registry; null before the first model."
    )
    serving: str | None = Field(
        description="The version this process has loaded and answers with. It differs from "
        "registered when that version's artifact was refused: the earlier one keeps serving."
    )
    refused: list[RefusedVersion] = Field(
        description="Versions this process refused to load, with the reasons."
    )
    pid: int = Field(description="The answering process (one of several with --workers).")


class RescoreParams(BaseModel):
    """The ``rescore`` job's parameters: the champion every stored score is to be by."""

    version: VersionId

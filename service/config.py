"""Settings: one object, read from the environment (prefix ``CLV_``) and an optional ``.env``.

Outside development the settings refuse defaults that are unsafe in production (the development
secret used to hash personal data), so a forgotten variable fails at start-up, not silently later.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from croniter import croniter
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_PII_SECRET = "dev-only-pii-secret-change-me"


class Environment(StrEnum):
    development = "development"
    production = "production"


class WorkerMode(StrEnum):
    embedded = "embedded"
    off = "off"


class DevicePreference(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class LearningMode(StrEnum):
    warm = "warm"
    retrain = "retrain"


class Quantization(StrEnum):
    none = "none"
    int8 = "int8"


def _split_csv(value: object) -> object:
    """Lets list settings be written as ``a,b,c`` in an environment variable."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLV_", env_file=".env", extra="ignore")

    environment: Environment = Field(
        default=Environment.development,
        description="development allows insecure defaults; production refuses them.",
    )
    database_url: str = Field(
        default="sqlite:///./clv.db",
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db.",
    )
    currency: str = Field(
        default="USD",
        pattern=r"^[A-Z]{3}$",
        description="The shop currency (ISO 4217); events in any other currency are rejected.",
    )
    max_batch_events: int = Field(default=10_000, ge=1, description="Events per request.")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Body size limit.")
    max_future_skew_seconds: int = Field(
        default=300, ge=0, description="How far in the future occurred_at may lie (clock skew)."
    )
    device: DevicePreference = Field(
        default=DevicePreference.auto, description="Where models run: auto, cpu or cuda."
    )
    torch_threads: int = Field(
        default=1,
        ge=1,
        description="Threads each model operation may use in API and worker processes. They "
        "already score in parallel threads (requests, the worker, jobs), and with a process per "
        "core more threads per operation oversubscribe the cores.",
    )
    quantize: Quantization = Field(
        default=Quantization.none,
        description="int8: dynamically quantized network for scores without explanations (CPU).",
    )
    prune: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Share of each hidden layer's units removed from the network for scores "
        "without explanations (structured pruning, service.ml.pruning); 0 prunes nothing. "
        "Explained scores keep the whole network.",
    )
    margin: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Share of revenue kept as margin: served money values (clv, its interval, "
        "btyd_clv, historic and total clv) are revenue times this. 1 serves revenue.",
    )
    annual_discount_rate: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Yearly rate future values are discounted at (0.1 = 10% a year): served "
        "predicted values are today's worth of the spend expected over the horizon, taken as "
        "spread evenly over it. 0 serves undiscounted spend.",
    )
    worker_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a worker holds the customers it is rescoring or explaining: one "
        "that dies mid-turn leaves them to another worker after this. Longer than a turn takes "
        "(a second or two).",
    )
    score_max_age_hours: float = Field(
        default=24.0,
        gt=0,
        description="A stored score older than this is not served (computed instead) and a "
        "worker rescores it.",
    )
    model_dir: Path = Field(
        default=Path("./models"),
        description="This process's cache of trained model versions; the versions themselves "
        "are stored in the database, fetched here when first loaded.",
    )
    pii_secret: SecretStr = Field(
        default=SecretStr(DEV_PII_SECRET),
        description="Key for the HMAC that replaces email and phone values before storage.",
    )
    pii_attributes: Annotated[list[str], NoDecode] = Field(
        default=["email", "phone"],
        description="Attribute and property names whose values are stored only as keyed hashes.",
    )
    source_precedence: Annotated[list[str], NoDecode] = Field(
        default=["crm", "platform", "third_party", "social"],
        description="Attribute sources, most trusted first, for merging the customer profile.",
    )
    db_pool_size: int = Field(
        default=10,
        ge=1,
        description="PostgreSQL connections per process for requests, and as many overflow; the "
        "event worker and jobs hold up to 6 each besides (2 x this + 12 at most per process).",
    )
    # Time limits on PostgreSQL (service.db.timeouts): a hung database answers 503 in seconds.
    db_connect_timeout_seconds: int = Field(
        default=2,
        ge=2,
        le=60,
        description="How long opening a PostgreSQL connection may take (libpq's least is 2).",
    )
    db_pool_timeout_seconds: float = Field(
        default=1.5,
        gt=0,
        le=60,
        description="How long a request waits for a free pooled connection before its 503.",
    )
    db_api_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=3600,
        description="statement_timeout of the connections requests, /readyz and /metrics use; "
        "the process itself stops waiting for an answer 0.5 s later (a hung server).",
    )
    db_worker_timeout_seconds: float = Field(
        default=60.0,
        ge=0,
        description="statement_timeout of the event worker's connections (0: none).",
    )
    db_job_timeout_seconds: float = Field(
        default=0.0,
        ge=0,
        description="statement_timeout of jobs (training, reports, rescoring everyone) and of "
        "the command-line tools (0, the default: none, they may run long).",
    )
    db_lock_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="lock_timeout: how long a statement may wait for a lock another transaction "
        "holds (a request's at most its statement_timeout).",
    )
    worker: WorkerMode = Field(
        default=WorkerMode.embedded,
        description="embedded: each API process runs the worker in a thread; off: run clv worker.",
    )
    worker_poll_seconds: float = Field(
        default=0.2, gt=0, le=10, description="How often an idle worker looks for new events."
    )
    worker_batch: int = Field(
        default=20_000,
        ge=1,
        le=30_000,
        description="Events a worker applies at once (at most 30,000: SQLite's placeholders).",
    )
    event_retention_months: int | None = Field(
        default=None,
        ge=1,
        description="PostgreSQL: raw events older than this many whole months are dropped (a "
        "month's partition at a time) once applied; their aggregates stay in the portrait, and "
        "training and backtests then see only the months kept. Unset: keep everything.",
    )
    max_pending_events: int = Field(
        default=1_000_000,
        ge=0,
        description="Backpressure: past this many stored events waiting for the worker, "
        "POST /v1/events answers 503 + Retry-After (0: no limit).",
    )
    max_stale_scores: int = Field(
        default=0,
        ge=0,
        description="Backpressure: past this many customers waiting for a fresh score, "
        "POST /v1/events answers 503 + Retry-After (0: no limit, the default: a new champion "
        "queues every customer).",
    )
    backpressure_retry_after_seconds: int = Field(
        default=5, ge=1, le=3600, description="The Retry-After of a refusal for backpressure."
    )
    job_heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a running job's worker stamps it as alive."
    )
    job_abandoned_after_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A running job with no heartbeat for this long is marked failed (its worker "
        "died); keep it several heartbeats long.",
    )
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long each API process trusts a key it has checked without reading it "
        "again: a revoked key is refused within this time; 0 reads the key on every request.",
    )
    champion_check_seconds: float = Field(
        default=1.0,
        ge=0,
        description="How long an API process answers reads with the champion it has without "
        "reading the alias again: a promotion or rollback reaches reads within this time; "
        "stored scores are always computed by the current champion; 0 reads it on every request.",
    )
    rate_limit_per_minute: int = Field(
        default=0,
        ge=0,
        description="Requests a minute each API key may send (429 with Retry-After beyond it): "
        "to each API process, or to all of them with CLV_REDIS_URL; 0 turns the limit off.",
    )
    rate_limit_burst: int = Field(
        default=20, ge=1, description="Requests a key may send at once before the rate applies."
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis (redis://host:6379/0) that API processes share rate limits through, "
        "so CLV_RATE_LIMIT_PER_MINUTE holds across processes and replicas; unset, each process "
        "limits the requests it receives. A request is let through when Redis does not answer.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Browser origins allowed to call the API (CORS), comma-separated, e.g. "
        "https://admin.example.com; empty (the default) allows none.",
    )
    fairness_attributes: Annotated[list[str], NoDecode] = Field(
        default=["gender", "age_band", "region"],
        description="Protected profile attributes, comma-separated: the fairness report audits "
        "the model per group of each, and training leaves them out of the model's inputs "
        "(unless CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES or a request asks for them).",
    )
    train_with_protected_attributes: bool = Field(
        default=False,
        description="Opt in: train on the protected attributes (CLV_FAIRNESS_ATTRIBUTES) too. "
        "Off, every training (API, clv train, the learning loop) leaves them out; an explicit "
        "with_protected_attributes or without_protected_attributes on a request wins over this.",
    )
    fairness_bootstrap: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Bootstrap resamples behind the fairness report's disparity intervals.",
    )
    risk_window_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Risk flags compare a customer's last this-many days with their own earlier "
        "history.",
    )
    risk_history_days: int = Field(
        default=365,
        ge=30,
        le=3650,
        description="How far back before the recent window a customer's usual behaviour is read.",
    )
    risk_min_history_days: int = Field(
        default=90,
        ge=0,
        description="spend_spike needs the customer's first order at least this many days before "
        "the recent window: a new customer's first baskets are not anomalous for them.",
    )
    risk_spend_spike_ratio: float = Field(
        default=5.0,
        gt=1,
        description="spend_spike when the recent window's spend is at least this many times the "
        "customer's usual spend per window length.",
    )
    risk_min_spend: float = Field(
        default=500.0,
        gt=0,
        description="spend_spike needs at least this much spend in the recent window (shop "
        "currency), so small amounts are never flagged.",
    )
    risk_min_refunds: int = Field(
        default=2, ge=1, description="refund_spike needs at least this many refunds in the window."
    )
    risk_refund_rate_gap: float = Field(
        default=0.5,
        gt=0,
        description="refund_spike when the window's refunds per order exceed the customer's "
        "earlier refunds per order by at least this much.",
    )
    drift_window_days: int = Field(
        default=90,
        ge=7,
        le=365,
        description="A drift check compares the customers active in this many days before the "
        "champion's training data end with those active in this many days before the check.",
    )
    drift_psi_threshold: float = Field(
        default=0.2,
        gt=0,
        description="A feature (or the predicted spend) drifts when its population stability "
        "index reaches this and its KS statistic reaches CLV_DRIFT_KS_THRESHOLD.",
    )
    drift_ks_threshold: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="The two-sample Kolmogorov-Smirnov statistic (largest gap between the two "
        "CDFs) a drifting feature must also reach.",
    )
    drift_purchase_rate_threshold: float = Field(
        default=0.3,
        gt=0,
        description="The purchase rate (orders per active customer) drifts when it changes by "
        "this fraction either way; a profile segment's when its change relative to the median "
        "segment of its attribute does.",
    )
    drift_min_segment_customers: int = Field(
        default=200,
        ge=1,
        description="A profile segment's purchase rate is checked when it has this many active "
        "customers in both windows.",
    )
    learning_mode: LearningMode = Field(
        default=LearningMode.warm,
        description="How the learning job makes a challenger: warm (fine-tune the champion on the "
        "newest data, starting from its weights) or retrain (train a new model from scratch).",
    )
    learning_every_events: int = Field(
        default=0,
        ge=0,
        description="Queue a learning job after this many new events since the last one; 0: off.",
    )
    learning_schedule: str = Field(
        default="",
        description="Queue a learning job on this cron schedule (UTC), e.g. '0 3 * * 0' for "
        "Sundays at 03:00; empty: off.",
    )
    learning_on_drift: bool = Field(
        default=False, description="Queue a learning job when a drift check finds drift."
    )
    learning_holdout_days: int = Field(
        default=60,
        ge=28,
        le=365,
        description="The time-later holdout: the challenger is trained on the events up to this "
        "many days ago and both models are judged on what customers spent since.",
    )
    learning_min_gini_gain: float = Field(
        default=0.005,
        ge=0,
        description="How much higher the challenger's normalised Gini on the holdout must be for "
        "an automatic promotion.",
    )
    learning_calibration_tolerance: float = Field(
        default=0.0,
        ge=0,
        description="How much worse the challenger's decile MAPE and absolute aggregate revenue "
        "error may be than the champion's and still be promoted (0: not worse at all).",
    )
    holdout_min_customers: int = Field(
        default=100,
        ge=1,
        description="A learning run or backtest judges models on the customers known at its "
        "holdout's start; it is refused when fewer are known.",
    )
    holdout_min_buyers: int = Field(
        default=20,
        ge=1,
        description="A learning run or backtest is refused when fewer of the customers known at "
        "its holdout's start buy inside the holdout: with no spend to compare with, its metrics "
        "are undefined (Gini 0, aggregate error divided by nothing).",
    )
    learning_epochs: int = Field(
        default=10, ge=1, description="Upper bound on the epochs of a learning job's training."
    )
    monitor_interval_minutes: float = Field(
        default=60.0,
        ge=0,
        description="How often a worker checks drift and the accuracy of matured predictions; "
        "0: never on its own (on demand only).",
    )
    webhook_url: str | None = Field(
        default=None,
        description="Where the service POSTs its notifications (drift found, the champion's "
        "matured accuracy dropping, learning decisions, failed jobs), signed with "
        "CLV_WEBHOOK_SECRET; unset: none are sent.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="The HMAC-SHA256 key of the webhooks' X-CLV-Signature header; required "
        "with CLV_WEBHOOK_URL.",
    )
    webhook_max_attempts: int = Field(
        default=8,
        ge=1,
        description="Attempts at delivering a notification before it is marked failed.",
    )
    webhook_retry_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Wait before the first retry of a delivery; it doubles with each attempt, "
        "up to an hour.",
    )
    audience_check_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often the workers count the audiences that have a notify_above or "
        "notify_below threshold, to send audience.count_crossed (with CLV_WEBHOOK_URL only).",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in (
                "pii_attributes",
                "source_precedence",
                "cors_origins",
                "fairness_attributes",
            ):
                if key in data:
                    data[key] = _split_csv(data[key])
        return data

    @field_validator("learning_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value.strip() and not croniter.is_valid(value.strip()):
            raise ValueError(f"{value!r} is not a cron expression (minute hour day month weekday)")
        return value.strip()

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> Self:
        if self.webhook_url is None:
            return self
        if not self.webhook_url.startswith(("http://", "https://")):
            raise ValueError(f"CLV_WEBHOOK_URL {self.webhook_url!r} is not an http(s) URL")
        if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
            raise ValueError(
                "CLV_WEBHOOK_URL needs CLV_WEBHOOK_SECRET: receivers check each notification's "
                "X-CLV-Signature with it"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        if self.environment is Environment.production:
            if self.pii_secret.get_secret_value() == DEV_PII_SECRET:
                raise ValueError("CLV_PII_SECRET must be set to a private value in production")
            if len(self.pii_secret.get_secret_value()) < 16:
                raise ValueError("CLV_PII_SECRET must be at least 16 characters in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

"""Scoring: serve a customer's score (stored when fresh, computed otherwise), keep stored scores
fresh as events, attributes and champions change, and report global feature importance.

A stored score is the customer's latest at the champion's horizon, as of when it was computed,
with its attributions. It is rewritten whenever something it depends on changes:
- events: the worker that applies a batch to the portrait marks those customers stale in the
  same transaction, then rescores stale customers (``refresh_stale``) on its next turn;
- attributes: a PATCH/PUT marks the customer stale;
- a new champion: a ``rescore`` job rescores everyone in chunks and then fixes the value-tier
  deciles; reads keep answering meanwhile (computed on the fly while a customer's stored score
  is from the previous champion).
Scores are stored first and explained right after: a worker turn commits its customers' scores,
then computes their attributions from the same examples (``refresh_stale``); a new champion's
rescoring stores scores only and workers explain them a bounded batch a turn
(``explain_pending``). The explanation is most of a rescoring's cost, and a stale score must not
be served longer because of it. An explained read of a stored score whose
attributions are not stored yet computes them for that score, as of its moment, rather than
serve older ones.
Every stored score is also appended to the history, with its trigger.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.customers import repository as customers
from service.errors import ConflictError, InvalidRequestError, NotFoundError, PayloadTooLargeError
from service.events import repository as events
from service.jobs.registry import JobCancelledError
from service.ml.artifacts import device_for
from service.ml.clv_model import ClvModel
from service.model_versions import repository as model_repository
from service.model_versions.service import ArtifactRefusedError
from service.model_versions.store import AliasFollower
from service.risk.schemas import RiskFlagRead
from service.scoring import engine, explanations, repository
from service.scoring.models import ScoreDeciles
from service.scoring.schemas import (
    MAX_BATCH_CUSTOMERS,
    MAX_EXPLAINED_BATCH,
    MAX_LIME_BATCH,
    BatchScoreRead,
    BatchScoreRequest,
    ChurnRisk,
    ClvScoreRead,
    ExplanationRead,
    FeatureImportance,
    FeatureImportanceRead,
    GroupImportance,
    RefusedVersion,
    ScoreHistoryRead,
    ServingRead,
    explain_method,
)
from service.scoring.value import ValueTerms, history_entry, served_numbers

logger = logging.getLogger(__name__)

STALE_BATCH = 100
"""Customers rescored per worker turn: their scores are stored first, then their attributions
(bench/score.py on a 12,000-customer shop: scores at about 2,800 a second, attributions at
about 900), so the first customers queued wait little."""
EXPLAIN_BATCH = 100
"""Scores explained per worker turn, after its rescoring (about 1,000 a second in batches this
size: 1,081 on a 12,000-customer shop, bench/score.py), before the next turn applies events and
rescores again. Larger batches explain a little faster, since each computation has a fixed cost
(the reads, the network's step loop over short chunks), but an event arriving meanwhile waits
for the whole batch (with 1,000 a turn in an earlier version, an order took 1.3-1.5 s to reach
its score in the demo against 0.2-0.4 s with 100): a stale score must not be served longer
because attributions are being computed."""
RESCORE_CHUNK = 2_000
DECILES_SECONDS = 60.0
"""How long a process keeps a version's value-tier boundaries once stored: they change only when
a rescoring of everyone ends (the first, or again after a rollback), and a tier read against
boundaries a minute old is still the tier the customer's score had a minute ago. Saves a read
of the deciles row per request."""


Deciles = tuple[float, ...] | None
"""Nine value-tier boundaries (the scores' deciles), or None while they are not known yet."""


class Scorer:
    """What a process scores with: the champion, followed across promotions, and the settings.

    With ``CLV_QUANTIZE=int8`` on the CPU, scores asked without explanations are computed by the
    int8 network (quantized once per version); explained ones, and every stored score, by the
    float network the attributions are computed on, so they add up to the score they explain.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.terms = ValueTerms.of(settings)
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        self.follower = AliasFollower(settings.model_dir, device_for(settings.device))
        self._quantized: tuple[str, ClvModel] | None = None
        self._deciles: dict[tuple[str, int], tuple[float, tuple[float, ...]]] = {}

    def champion(self, session: Session) -> tuple[str, ClvModel]:
        """The current champion: what scores are stored with (the alias read every time)."""
        return self.follower.current(session)

    def answering(self, session: Session) -> tuple[str, ClvModel]:
        """The champion for answering a read: as of at most ``CLV_CHAMPION_CHECK_SECONDS`` ago
        (the answer names its version)."""
        return self.follower.current(session, self.settings.champion_check_seconds)

    def for_scores_only(self, version: str, model: ClvModel) -> ClvModel:
        """The model for scores without explanations, quantized once per version."""
        if self._quantized is None or self._quantized[0] != version:
            self._quantized = (version, engine.unexplained_model(model, self.settings))
        return self._quantized[1]

    def deciles(self, session: Session, version: str, horizon_days: int) -> Deciles:
        """The value-tier boundaries of the version's scores at the horizon, or None before its
        rescoring of everyone has fixed them; read again after ``DECILES_SECONDS`` (None is
        not kept: the boundaries appear as soon as the rescoring stores them)."""
        key, now = (version, horizon_days), time.monotonic()
        kept = self._deciles.get(key)
        if kept is not None and now < kept[0]:
            return kept[1]
        stored = repository.deciles(session, version, horizon_days)
        if stored is None:
            return None
        boundaries = tuple(stored.boundaries)
        self._deciles[key] = (now + DECILES_SECONDS, boundaries)
        return boundaries


def _servable(model: ClvModel, version: str, horizon_days: int, as_of: datetime | None) -> None:
    """422 for what the champion cannot answer, saying what it can."""
    if horizon_days > model.horizon_days:
        raise InvalidRequestError(
            f"horizon_days={horizon_days} is beyond what champion {version} serves: "
            f"1 to {model.horizon_days} days",
            details={"horizon_days": {"min": 1, "max": model.horizon_days}},
        )
    if as_of is None:
        return
    trained_to = model.report.as_of
    now = datetime.now(UTC)
    if not trained_to <= as_of <= now:
        raise InvalidRequestError(
            f"as_of {as_of.isoformat()} is outside what champion {version} serves: from the end "
            f"of its training data ({trained_to.isoformat()}; earlier, it would have seen the "
            "outcome) to now",
            details={"as_of": {"min": trained_to.isoformat(), "max": now.isoformat()}},
        )


def next_order_date(as_of: datetime, horizon_days: int, purchase_probability: float) -> date | None:
    """The day by which an order is more likely than not, with the purchase probability spread
    over the horizon as ``predict`` does (P(t) = 1 - (1 - p)^(t / H)); None beyond the horizon."""
    if purchase_probability < 0.5:
        return None
    if purchase_probability >= 1.0:
        return as_of.date()
    days = horizon_days * math.log(0.5) / math.log(1.0 - purchase_probability)
    return (as_of + timedelta(days=days)).date()


CHURN_RISK_BANDS: tuple[tuple[float, ChurnRisk], ...] = (
    (1 / 3, "low"),
    (2 / 3, "medium"),
    (math.inf, "high"),
)
"""Upper bounds of churn_probability for each band, in thirds: low when an order in the horizon
is likely (over 2/3), high when it is unlikely (under 1/3), medium between."""


def churn_risk(probability: float) -> ChurnRisk:
    return next((band for bound, band in CHURN_RISK_BANDS if probability < bound), "high")


def _tier(deciles: Deciles, clv: float) -> int | None:
    return None if deciles is None else 1 + bisect_right(deciles, clv)


def _read(
    customer_id: str,
    values: Mapping[str, Any],
    *,
    currency: str,
    deciles: Deciles,
    source: str,
    explanation: bytes | None,
    model: ClvModel,
    terms: ValueTerms,
) -> ClvScoreRead:
    as_of, horizon = values["as_of"], int(values["horizon_days"])
    number = served_numbers(values, terms)
    probability = float(values["purchase_probability"])
    return ClvScoreRead(
        customer_id=customer_id,
        as_of=as_of,
        horizon_days=horizon,
        currency=currency,
        **number,
        predicted_clv=number["clv"],
        churn_probability=round(1.0 - probability, 4),
        churn_risk=churn_risk(1.0 - probability),
        expected_next_order_date=next_order_date(as_of, horizon, probability),
        value_tier=_tier(deciles, float(values["clv"])),  # deciles of stored values
        cold_start=bool(values["cold_start"]),
        model_version=values["model_version"],
        computed_at=values["computed_at"],
        source=source,
        stale_since=values.get("stale_since"),
        explanation=(
            explanations.unpack(explanation, model, terms.predicted(horizon))
            if explanation
            else None
        ),
        # null: stored before flags existed. Read as none rather than computed on this fast
        # path: a stored score is served only while younger than CLV_SCORE_MAX_AGE_HOURS, and
        # its rescoring writes the flags, so this lasts at most that long after the upgrade
        risk_flags=[RiskFlagRead.model_validate(flag) for flag in values["risk_flags"] or ()],
    )


def _computed_rows(
    computed: engine.Computed,
    version: str,
    horizon_days: int,
    as_of: datetime,
    triggers: Mapping[str, str] | str,
) -> list[dict[str, Any]]:
    """One row per customer for ``save_scores``, built column-wise (``iterrows`` built a Series
    per customer: 0.38 ms of the 0.91 ms a stored score cost besides its explanation)."""
    now = datetime.now(UTC)
    scores = computed.scores
    customers = [str(customer) for customer in scores.index]
    numbers = {
        name: [None if math.isnan(v) else v for v in scores[name].astype(float).tolist()]
        for name in repository.NUMBERS
    }
    cold = scores["cold_start"].astype(bool).tolist()
    segments = scores["segment"].tolist()
    return [
        {
            "customer_id": customer,
            "model_version": version,
            "horizon_days": horizon_days,
            "as_of": as_of,
            "computed_at": now,
            "trigger": triggers if isinstance(triggers, str) else triggers[customer],
            **{name: values[i] for name, values in numbers.items()},
            "cold_start": cold[i],
            "segment": segments[i],
            "explanation": computed.explanations.get(customer),
            "risk_flags": computed.risk_flags.get(customer, []),
        }
        for i, customer in enumerate(customers)
    ]


def _score_many(
    session: Session,
    scorer: Scorer,
    customer_ids: Sequence[str],
    *,
    horizon_days: int | None,
    as_of: datetime | None,
    explain: bool,
) -> tuple[str, dict[str, ClvScoreRead]]:
    """Stored scores where they answer the question (no as_of, the champion's horizon, by the
    champion), computed ones for the rest. A stored score asked with attributions not stored
    yet is explained here, as of its own moment: the attributions of the score served."""
    version, model = scorer.answering(session)
    horizon = horizon_days or model.horizon_days
    _servable(model, version, horizon, as_of)
    deciles = scorer.deciles(session, version, horizon)
    currency = scorer.settings.currency
    answers: dict[str, ClvScoreRead] = {}
    if as_of is None and horizon == model.horizon_days:
        stored_scores = repository.current_many(session, customer_ids, explanations=explain)
        oldest = datetime.now(UTC) - timedelta(hours=scorer.settings.score_max_age_hours)
        fresh = {
            customer: stored
            for customer, stored in stored_scores.items()
            if stored["model_version"] == version and stored["as_of"] >= oldest
        }
        blobs = _explain_stored(session, scorer, model, fresh) if explain else {}
        for customer, stored in fresh.items():
            answers[customer] = _read(
                customer,
                stored,
                currency=currency,
                deciles=deciles,
                source="stored",
                explanation=blobs.get(customer),
                model=model,
                terms=scorer.terms,
            )
    missing = [c for c in customer_ids if c not in answers]
    if missing:
        moment = as_of or datetime.now(UTC)
        computed = engine.compute(
            session,
            scorer.settings,
            model if explain else scorer.for_scores_only(version, model),
            missing,
            as_of=moment,
            horizon_days=horizon,
            explain=explain,
            purpose="request",
        )
        for row in _computed_rows(computed, version, horizon, moment, "request"):
            customer = row["customer_id"]
            answers[customer] = _read(
                customer,
                row,
                currency=currency,
                deciles=deciles,
                source="computed",
                explanation=row["explanation"],
                model=model,
                terms=scorer.terms,
            )
    return version, answers


def _explain_stored(
    session: Session, scorer: Scorer, model: ClvModel, stored: Mapping[str, Mapping[str, Any]]
) -> dict[str, bytes]:
    """Each stored score's attributions: stored ones where the worker has explained it already,
    computed as of the score's own moment where not."""
    blobs = {c: row["explanation"] for c, row in stored.items() if row["explanation"]}
    waiting = {c: row["as_of"] for c, row in stored.items() if c not in blobs}
    for moment, ids in _by_moment(waiting).items():
        blobs |= engine.compute(
            session,
            scorer.settings,
            model,
            ids,
            as_of=moment,
            horizon_days=model.horizon_days,
            explain=True,
            purpose="request",
        ).explanations
    return blobs


def _by_moment(as_of: Mapping[str, datetime]) -> dict[datetime, list[str]]:
    """Customers grouped by the moment their score describes: one computation per moment (a
    worker turn's customers share one)."""
    groups: dict[datetime, list[str]] = {}
    for customer, moment in as_of.items():
        groups.setdefault(moment, []).append(customer)
    return groups


def get_score(
    session: Session,
    scorer: Scorer,
    customer_id: str,
    *,
    horizon_days: int | None = None,
    as_of: datetime | None = None,
    explain: bool | str = False,
) -> ClvScoreRead:
    """``explain``: true or shap (SHAP attributions), lime (LIME's, computed on request),
    false (none)."""
    method = explain_method(explain)
    version, answers = _score_many(
        session,
        scorer,
        [customer_id],
        horizon_days=horizon_days,
        as_of=as_of,
        explain=method == "shap",
    )
    if method == "lime":
        answers = _with_lime(session, scorer, version, answers)
    if customer_id in answers:
        return answers[customer_id]
    if customers.exists_customer(session, customer_id):
        moment = as_of.isoformat() if as_of else "now"
        raise NotFoundError(f"customer {customer_id!r} has no events or attributes by {moment}")
    raise NotFoundError(f"no customer {customer_id!r}")


def batch(session: Session, scorer: Scorer, request: BatchScoreRequest) -> BatchScoreRead:
    ids = list(dict.fromkeys(request.customer_ids))
    method = explain_method(request.explain)
    limit = {"shap": MAX_EXPLAINED_BATCH, "lime": MAX_LIME_BATCH, None: MAX_BATCH_CUSTOMERS}[method]
    if len(ids) > limit:
        explained = {"shap": " with explain=true", "lime": " with explain=lime", None: ""}[method]
        raise PayloadTooLargeError(f"{len(ids):,} customer ids; a batch{explained} takes {limit:,}")
    version, answers = _score_many(
        session,
        scorer,
        ids,
        horizon_days=request.horizon_days,
        as_of=request.as_of,
        explain=method == "shap",
    )
    if method == "lime":
        answers = _with_lime(session, scorer, version, answers)
    return BatchScoreRead(
        model_version=version,
        scores=[answers[c] for c in ids if c in answers],
        not_found=[c for c in ids if c not in answers],
    )


def _with_lime(
    session: Session, scorer: Scorer, version: str, answers: Mapping[str, ClvScoreRead]
) -> dict[str, ClvScoreRead]:
    """The answers with LIME's attributions (``service.ml.lime_explain``), computed on request
    and never stored: from the examples each score is computed from, as of its own moment and
    at its horizon, on the float network (as SHAP's)."""
    answering, model = scorer.answering(session)
    if answering != version:
        raise ConflictError(f"the champion changed from {version} to {answering}; ask again")
    moments: dict[tuple[datetime, int], list[str]] = {}
    for customer, answer in answers.items():
        moments.setdefault((answer.as_of, answer.horizon_days), []).append(customer)
    explained: dict[str, ExplanationRead] = {}
    for (moment, horizon), ids in moments.items():
        at_horizon = replace(model, horizon_days=horizon)
        computed = engine.compute(
            session,
            scorer.settings,
            model,
            ids,
            as_of=moment,
            horizon_days=horizon,
            explain=False,
            purpose="request",
        )
        scale = scorer.terms.predicted(horizon)
        for examples in computed.examples:
            explained |= explanations.lime_all(at_horizon, examples, scale)
    return {
        customer: answer.model_copy(update={"explanation": explained.get(customer)})
        for customer, answer in answers.items()
    }


def serving(session: Session, scorer: Scorer) -> ServingRead:
    """What this process serves: the champion is loaded (or refused) now if it was not yet,
    so a refusal shows here with its reason, not only in the logs."""
    registered = model_repository.aliases(session).get(scorer.follower.alias)
    if registered is not None:
        with contextlib.suppress(ArtifactRefusedError):  # the refusal is in the state below
            scorer.champion(session)
    loaded, refused = scorer.follower.state()
    return ServingRead(
        alias=scorer.follower.alias,
        registered=registered,
        serving=loaded,
        refused=[RefusedVersion(version=v, reason=r) for v, r in refused.items()],
        pid=os.getpid(),
    )


def history(
    session: Session,
    customer_id: str,
    limit: int,
    before: datetime | None,
    terms: ValueTerms,
) -> ScoreHistoryRead:
    rows = repository.history(session, customer_id, limit + 1, before)
    if not rows and before is None and not customers.exists_customer(session, customer_id):
        raise NotFoundError(f"no customer {customer_id!r}")
    page = rows[:limit]
    return ScoreHistoryRead(
        customer_id=customer_id,
        entries=[history_entry(row, terms) for row in page],
        next_before=page[-1].computed_at if len(rows) > limit else None,
    )


def refresh_stale(
    session_factory: sessionmaker[Session],
    scorer: Scorer,
    limit: int = STALE_BATCH,
    *,
    explain: bool = True,
) -> int:
    """One worker turn: lease up to ``limit`` queued customers and rescore them (no lock held
    meanwhile: on SQLite ingestion goes on); in one short transaction take them off the queue
    and store their scores, so reads get them at once; then, with ``explain``, compute their
    attributions from the same examples and store them on those scores. A customer queued
    again meanwhile stays queued. A customer whose score cannot be computed is logged and
    dropped from the queue (their next event queues them again) rather than blocking everyone
    behind. Without ``explain`` (a new champion's rescoring of everyone), the attributions are
    left to ``explain_pending``. Returns how many customers were leased."""
    now = datetime.now(UTC)
    with session_factory() as session, session.begin():
        leased = repository.lease_stale(session, limit, now, scorer.lease)
    if not leased:
        return 0
    with session_factory() as session:
        version, model = scorer.champion(session)
        # Up to the latest stored event: one stamped a little ahead (clock skew, accepted by
        # ingestion) must be in the score its arrival triggered. The float network, not the
        # int8 one: the attributions must add up to this score.
        as_of = repository.latest_event_after(session, list(leased), now) or now
        computed = _compute_each(session, scorer, model, list(leased), as_of, explain=False)
    triggers = {customer: trigger for customer, (_, trigger) in leased.items()}
    rows = _computed_rows(computed, version, model.horizon_days, as_of, triggers)
    with session_factory() as session, session.begin():
        taken = repository.take_stale(session, list(leased), now + scorer.lease)
        stored = repository.save_scores(session, [r for r in rows if r["customer_id"] in taken])
    if explain and stored:
        _explain_stored_rows(
            session_factory,
            model,
            computed,
            {r["customer_id"]: r["computed_at"] for r in rows if r["customer_id"] in stored},
        )
    return len(leased)


def _explain_stored_rows(
    session_factory: sessionmaker[Session],
    model: ClvModel,
    computed: engine.Computed,
    stored: Mapping[str, datetime],
) -> None:
    """The attributions of the scores just stored; on a failure they stay queued for
    ``explain_pending``, which isolates the customer that fails."""
    try:
        blobs = engine.explained(model, computed)
    except Exception:
        logger.exception("explaining %d rescored customers failed; left queued", len(stored))
        return
    with session_factory() as session, session.begin():
        repository.save_explanations(session, stored, {c: blobs[c] for c in stored if c in blobs})


def explain_pending(
    session_factory: sessionmaker[Session], scorer: Scorer, limit: int = EXPLAIN_BATCH
) -> int:
    """The second half of a worker turn: lease up to ``limit`` stored scores waiting for their
    attributions (oldest first), compute them as of each score's own moment and store them on
    the scores that are still current. Returns how many were leased."""
    now = datetime.now(UTC)
    with session_factory() as session, session.begin():
        leased = repository.lease_unexplained(session, limit, now, scorer.lease)
    if not leased:
        return 0
    blobs: dict[str, bytes] = {}
    with session_factory() as session:
        version, model = scorer.champion(session)
        moments = repository.moments(session, list(leased))
        current = {
            customer: as_of
            for customer, (scored_by, as_of, computed_at) in moments.items()
            if scored_by == version and computed_at == leased[customer]
        }
        for as_of, ids in _by_moment(current).items():
            blobs |= _compute_each(session, scorer, model, ids, as_of, explain=True).explanations
    with session_factory() as session, session.begin():
        repository.save_explanations(session, leased, blobs)
    return len(leased)


def _compute_each(
    session: Session,
    scorer: Scorer,
    model: ClvModel,
    customer_ids: list[str],
    as_of: datetime,
    *,
    explain: bool,
) -> engine.Computed:
    """All at once; if that fails, one by one, so one customer's failure is only theirs."""

    def one_call(ids: list[str]) -> engine.Computed:
        return engine.compute(
            session,
            scorer.settings,
            model,
            ids,
            as_of=as_of,
            horizon_days=model.horizon_days,
            explain=explain,
            purpose="refresh",
        )

    try:
        return one_call(customer_ids)
    except Exception:
        logger.exception("scoring %d customers failed; retrying one by one", len(customer_ids))
    parts = []
    for customer in customer_ids:
        try:
            parts.append(one_call([customer]))
        except Exception:
            logger.exception("scoring customer %r failed; dropped from the queue", customer)
    return engine.Computed.combine(parts)


def upkeep(session_factory: sessionmaker[Session], scorer: Scorer) -> int:
    """What an idle worker does: queue stored scores older than ``CLV_SCORE_MAX_AGE_HOURS``
    (a customer who stopped buying must not keep the score of their last order), and fix the
    champion's value-tier deciles once its rescoring of everyone is done, if the rescoring job
    did not (it stopped). Returns how many customers it queued."""
    now = datetime.now(UTC)
    with session_factory() as session, session.begin():
        if not repository.has_champion(session):
            return 0
        version, model = scorer.champion(session)
        before = now - timedelta(hours=scorer.settings.score_max_age_hours)
        aged = repository.mark_aged(session, before, STALE_BATCH, now)
        if (
            not aged
            and repository.deciles(session, version, model.horizon_days) is None
            and repository.queued(session) == 0
        ):
            _save_deciles(session, version, model.horizon_days)
    return aged


def rescore_all(
    session_factory: sessionmaker[Session],
    scorer: Scorer,
    version: str,
    progress: Callable[[str, float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """The ``rescore`` job of a new champion: queue every customer (trigger ``model``), help
    the workers drain the queue, then fix the value-tier deciles. Reads go on meanwhile (a
    score by the previous champion is computed afresh). Stopped or cancelled, the queue stays
    and the workers finish it; they fix the deciles too (``upkeep``). The scores' attributions
    follow from the workers (``explain_pending``), after the job."""
    report = progress or (lambda stage, done: None)
    with session_factory() as session, session.begin():
        champion, model = scorer.champion(session)
        if champion != version:
            return {"version": version, "superseded_by": champion}
        everyone = sorted(
            set(events.customers_until(session, datetime.now(UTC)))
            | set(customers.customers_with_attributes(session))
        )
        repository.mark_stale(session, everyone, "model")
    while True:
        done = refresh_stale(session_factory, scorer, RESCORE_CHUNK, explain=False)
        with session_factory() as session:
            left = repository.queued(session)
        report(f"scoring customers with {version}", 1 - left / max(len(everyone), 1))
        if left == 0:
            break
        if cancelled is not None and cancelled():
            raise JobCancelledError(f"rescoring with {version} cancelled; workers finish it")
        if not done:
            time.sleep(1.0)  # what is left is leased by other workers
    with session_factory() as session, session.begin():
        _save_deciles(session, version, model.horizon_days)
    report("done", 1.0)
    return {"version": version, "customers": len(everyone)}


def _save_deciles(session: Session, version: str, horizon_days: int) -> None:
    values = np.asarray(repository.clv_values(session, version, horizon_days))
    boundaries = np.quantile(values, np.arange(1, 10) / 10).tolist() if len(values) else []
    repository.save_deciles(
        session,
        ScoreDeciles(
            model_version=version,
            horizon_days=horizon_days,
            boundaries=[round(b, 6) for b in boundaries],
            customers=len(values),
            computed_at=datetime.now(UTC),
        ),
    )


def importance(session: Session, scorer: Scorer, sample: int) -> FeatureImportanceRead:
    """Mean |SHAP value| per feature over the stored attributions of a random sample of the
    customers the champion scored."""
    version, model = scorer.champion(session)
    blobs = repository.explanations(session, version, sample)
    if not blobs:
        raise NotFoundError(f"no stored attributions by {version} yet; its rescoring is running")
    scale = scorer.terms.predicted(model.horizon_days)
    used, means, groups = explanations.mean_absolute(blobs, model, scale)
    tabular, channels = model.definitions
    features = [
        FeatureImportance(
            name=d.name,
            group=d.group,
            description=d.description,
            mean_abs_contribution=round(float(m), 6),
        )
        for d, m in zip([*tabular, *channels], means, strict=True)
    ]
    features.sort(key=lambda f: -f.mean_abs_contribution)
    return FeatureImportanceRead(
        model_version=version,
        customers=used,
        groups=[
            GroupImportance(group=g, mean_abs_contribution=round(v, 6))
            for g, v in sorted(groups.items(), key=lambda item: -item[1])
        ],
        features=features,
    )

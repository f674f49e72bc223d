"""Backtest (``clv evaluate``): train on the events up to T, score every customer at T, and
compare with what they spent in (T, T+H]: the served model (whichever candidate the selection
picked) beside every candidate (the network, the blend, each BTYD model) on the same customers,
and, for a simulated shop, the oracle (expected spend from the true latent parameters).

A backtest whose horizon holds too few buyers among the customers known at T is refused
(``service.training.holdout``): its metrics would be undefined.

Two populations are reported: customers with an order by T (the BTYD models' domain, the fair
comparison) and every customer with an event by T. ``served_int8`` is the served model with its
network int8-quantized (``CLV_QUANTIZE=int8``), to show what that changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import InvalidRequestError
from service.ml.artifacts import device_for
from service.ml.clv_model import ClvModel
from service.ml.examples import EventLog, Examples, Profiles, Sources
from service.ml.metrics import evaluate, finite
from service.ml.training import Progress, TrainConfig
from service.simulator.config import Shift, ShopConfig
from service.simulator.oracle import expected_spend
from service.training import charts, data
from service.training import holdout as holdouts
from service.training.runner import train_or_refuse


def _shop_oracle(shop: Path, customers: pd.Index, as_of: datetime, horizon_days: int) -> np.ndarray:
    summary = json.loads((shop / "shop.json").read_text())["config"]
    shift = summary.pop("shift")
    config = ShopConfig(
        **{**summary, "start": date.fromisoformat(summary["start"])},
        shift=Shift(**shift) if shift else None,
    )
    truth = pd.read_csv(shop / "truth.csv")
    oracle: np.ndarray = (
        expected_spend(truth, config, as_of, horizon_days).reindex(customers).fillna(0.0).to_numpy()
    )
    return oracle


def refuse_unjudgeable(
    session: Session,
    settings: Settings,
    as_of: datetime,
    horizon_days: int,
    last: datetime,
    *,
    run: str = "backtest",
) -> None:
    """Refuse a backtest whose horizon runs past the events (422; two days of slack: a last
    quiet day or two is no missing outcome) or holds too few buyers to judge on (409, see
    ``service.training.holdout``), naming the latest cut-off the data allow."""
    end = as_of + timedelta(days=horizon_days)
    horizon = timedelta(days=horizon_days)
    named = f"{horizon_days}-day {run}"
    if last < end - timedelta(days=2):
        raise InvalidRequestError(
            f"the events end at {last.date()}: a {named} at {as_of.date()} needs them up to "
            f"{end.date()}; the latest cut-off they allow is {(last - horizon).date()}"
        )
    holdouts.refuse_thin(
        session, settings, as_of, end, run=named, as_of_for=lambda until: until - horizon
    )


def trained_at(
    log: EventLog,
    profiles: Profiles,
    sources: Sources,
    as_of: datetime,
    config: TrainConfig,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[ClvModel, Examples]:
    """What a backtest (and the fairness audit) judges: a model trained on the events up to
    ``as_of`` (the log may run past it; training cuts there) and every customer's examples at
    ``as_of`` with their spend over the horizon after it. Data that cannot train: 422."""
    model = train_or_refuse(
        log,
        profiles,
        sources,
        as_of,
        config,
        refusal=f"cannot backtest at {as_of.date()}",
        progress=progress,
        cancelled=cancelled,
    )
    return model, model.examples(log, profiles, sources, as_of, label_days=config.horizon_days)


def backtest(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    as_of: datetime,
    horizon_days: int,
    out: Path,
    shop: Path | None = None,
    architecture: str = "gru_ziln",
    epochs: int = 25,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    end = as_of + timedelta(days=horizon_days)
    with session_factory() as session:
        log = data.event_log(session, end)
        last = datetime.fromtimestamp(int(log.events["seconds"].max()), as_of.tzinfo)
        refuse_unjudgeable(session, settings, as_of, horizon_days, last)
        profiles, sources = data.profiles(session, settings)
    config = TrainConfig(
        horizon_days, architecture=architecture, epochs=epochs, device=device_for(settings.device)
    )
    model, examples = trained_at(log, profiles, sources, as_of, config, progress, cancelled)
    scores = model.predict(examples)
    actual = np.asarray(examples.labels, dtype=float)
    candidates = model.candidates(examples)
    predictions = {
        "served": scores["clv"].to_numpy(),
        "served_int8": model.quantized().predict(examples)["clv"].to_numpy(),  # CLV_QUANTIZE=int8
        **{name: candidates[name].to_numpy() for name in candidates.columns},
        "btyd": scores["btyd_clv"].to_numpy(),
    }
    if shop is not None:
        predictions["oracle"] = _shop_oracle(shop, examples.customers, as_of, horizon_days)
    buyers = examples.portrait["has_purchased"].to_numpy() > 0
    report: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "horizon_days": horizon_days,
        "trained_horizon_days": model.trained_horizon_days,
        "training": model.report.training_json(),
        "populations": {},
    }
    for population, mask in (
        ("customers_with_an_order", buyers),
        ("all_customers", np.ones_like(buyers)),
    ):
        report["populations"][population] = {
            name: evaluate(
                actual[mask],
                predicted[mask],
                **(
                    {
                        "purchase_probability": scores["purchase_probability"].to_numpy()[mask],
                        "p10": scores["p10"].to_numpy()[mask],
                        "p90": scores["p90"].to_numpy()[mask],
                    }
                    if name == "served"
                    else {}
                ),
            )
            for name, predicted in predictions.items()
        }
    out.mkdir(parents=True, exist_ok=True)
    charts.gain_chart(
        actual[buyers],
        {k: v[buyers] for k, v in predictions.items() if k in ("served", "deep", "btyd", "oracle")},
        out / "gain.png",
    )
    charts.decile_chart(
        actual[buyers],
        {k: v[buyers] for k, v in predictions.items() if k in ("served", "btyd")},
        out / "deciles.png",
    )
    charts.calibration_chart(
        actual, scores["purchase_probability"].to_numpy(), out / "calibration.png"
    )
    report = finite(report)  # an undefined metric is null, never NaN
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report

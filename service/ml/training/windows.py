"""The label windows training learns from, and the customers held out of every one of them."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from service.ml import collective
from service.ml.examples import Examples
from service.ml.training.config import (
    MIN_HORIZON_DAYS,
    MIN_VALIDATION_BUYERS,
    DataTooShortError,
    TrainConfig,
)


@dataclass(frozen=True)
class Window:
    """Training examples at ``cutoff`` labelled with the spend in the ``days`` after it."""

    cutoff: datetime
    days: int


def plan_windows(first: datetime, as_of: datetime, config: TrainConfig) -> tuple[int, list[Window]]:
    """(longest horizon the labels allow, windows). First the full-horizon windows, from the
    latest (cut-off T - horizon: the validation window) back one ``cutoff_step_days`` at a time;
    then the fresher partial windows (c, T] after it, ``partial_step_days`` apart, each at least
    ``MIN_HORIZON_DAYS`` long. Without the partial windows nothing would show the network the
    oldest and longest-idle customers of T (at T - horizon the shop was younger), and it would
    extrapolate for them."""
    horizon = _longest_horizon(first, as_of, config)
    latest = as_of - timedelta(days=horizon)
    earliest = first + timedelta(days=config.min_history_days)
    full = [
        Window(latest - timedelta(days=k * config.cutoff_step_days), horizon)
        for k in range(config.cutoffs + 1)
    ]
    return horizon, [w for w in full if w.cutoff >= earliest] + _partial(as_of, horizon, config)


def _longest_horizon(first: datetime, as_of: datetime, config: TrainConfig) -> int:
    """The asked horizon, or the longest the data leave room for after ``min_history_days``;
    refused when that is under ``MIN_HORIZON_DAYS``, saying how long a span is needed."""
    available = (as_of - first).days - config.min_history_days
    horizon = min(config.horizon_days, available)
    if horizon < MIN_HORIZON_DAYS:
        needed = config.min_history_days + MIN_HORIZON_DAYS
        raise DataTooShortError(
            f"the data span {(as_of - first).days} days up to {as_of.date()}; training needs at "
            f"least {needed} ({config.min_history_days} of history and {MIN_HORIZON_DAYS} of "
            "outcomes)"
        )
    return horizon


def _partial(as_of: datetime, horizon: int, config: TrainConfig) -> list[Window]:
    """The windows (c, T] shorter than ``horizon``, ``partial_step_days`` apart (none at 0)."""
    if not config.partial_step_days:
        return []
    step = config.partial_step_days
    lengths = range(horizon - step, MIN_HORIZON_DAYS - 1, -step)
    return [Window(as_of - timedelta(days=days), days) for days in lengths]


def newest_windows(windows: list[Window], horizon: int, seen_until: datetime) -> list[Window]:
    """What a warm start learns from: the latest full-horizon window and the fresher partial
    ones after it, the newest behaviour only (older windows would pull the level back to what
    the model already knew; after a shift in behaviour that is exactly what must change).
    Refused when they hold nothing after ``seen_until``, the end of the starting model's data."""
    newest = [w for w in windows if w is windows[0] or w.days < horizon]
    if newest[0].cutoff + timedelta(days=newest[0].days) <= seen_until:
        raise DataTooShortError(f"there are no events after {seen_until.date()}, its training data")
    return newest


def split(sets: list[Examples], config: TrainConfig) -> tuple[list[Examples], list[Examples]]:
    """(validation, training) per window: a share of the customers is held out of every window.
    Holding out customers, not only time, keeps the partial windows (which overlap the latest
    full window's months) from leaking into its validation."""
    held = [held_out(examples.customers, config) for examples in sets]
    validation = [e.subset(h) for e, h in zip(sets, held, strict=True)]
    return validation, [e.subset(~h) for e, h in zip(sets, held, strict=True)]


def held_out(customers: pd.Index, config: TrainConfig) -> np.ndarray:
    """A stable pseudo-random share of customers: the same customer is held out at every
    cut-off, whatever else the data hold."""
    buckets = np.array([zlib.crc32(f"{config.seed}:{c}".encode()) % 1000 for c in customers])
    held: np.ndarray = buckets < config.validation_share * 1000
    return held


def check_enough_customers(
    validation: Examples, training: list[Examples], cutoff: datetime
) -> None:
    """Refuse a shop too small to validate on: the metrics and early stopping need buyers among
    the held-out customers, and training needs someone left."""
    buyers, trained = collective.total(
        [
            (validation.portrait["has_purchased"].to_numpy() > 0).sum(),
            sum(len(t.customers) for t in training),
        ]
    ).astype(int)  # every rank's
    if buyers < MIN_VALIDATION_BUYERS or not trained:
        raise DataTooShortError(
            f"{buyers} of the customers held out for validation have an order by "
            f"{cutoff.date()}; training needs at least {MIN_VALIDATION_BUYERS} "
            f"(about {MIN_VALIDATION_BUYERS * 5} customers with an order in all)"
        )

"""The BTYD diagnostics analysts know from lifetimes: the frequency-recency matrix (expected
purchases in the next period of a customer with each frequency and recency), the probability
alive matrix, and calibration against a holdout (mean purchases predicted and made in the
holdout, by the frequency in the calibration period).

Pure functions of fitted models and BTYD summaries (``frequency``, ``recency_days``,
``age_days``, ``has_purchased`` columns of the behaviour features); ``service.diagnostics``
reads the data, fits and stores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from service.ml.btyd.base import PurchaseCountFitter

MAX_FREQUENCY = 30
"""The matrices stop here: above it, customers are few and the colours unreadable."""
GRID = 30
"""Recency steps in the matrices, from 0 to the oldest customer's age."""
CALIBRATION_BINS = 8
"""Calibration frequencies 0 to 6, then 7 and more together."""


@dataclass(frozen=True)
class Matrices:
    frequencies: list[int]  # rows
    recencies: list[float]  # columns, in days
    age_days: float  # the customer age every cell is computed at
    expected_purchases: list[list[float | None]]  # None: recency > 0 with frequency 0
    probability_alive: list[list[float | None]]


def matrices(counts: PurchaseCountFitter, summary: pd.DataFrame, period_days: float) -> Matrices:
    """Both matrices over frequency 0..min(max seen, ``MAX_FREQUENCY``) and recency 0..T, for a
    customer of age T = the oldest buyer's (as lifetimes draws them): what the fitted model
    expects of a customer with each history. A cell with frequency 0 and recency above 0 cannot
    occur (one purchase day: recency 0) and is left empty."""
    buyers = summary[summary["has_purchased"] > 0]
    age = float(max(buyers["age_days"].max(), 1.0))
    top = int(min(buyers["frequency"].max(), MAX_FREQUENCY))
    frequencies = np.arange(top + 1, dtype=np.float64)
    recencies = np.linspace(0.0, age, GRID + 1)
    grid_x, grid_t_x = np.meshgrid(frequencies, recencies, indexing="ij")
    x, t_x = grid_x.ravel(), grid_t_x.ravel()
    T = np.full_like(x, age)
    expected = counts.conditional_expected_number_of_purchases_up_to_time(period_days, x, t_x, T)
    alive = counts.conditional_probability_alive(x, t_x, T)
    impossible = (x == 0) & (t_x > 0)
    shape = (len(frequencies), len(recencies))
    return Matrices(
        frequencies=[int(f) for f in frequencies],
        recencies=[round(float(r), 2) for r in recencies],
        age_days=age,
        expected_purchases=_cells(expected, impossible, shape),
        probability_alive=_cells(alive, impossible, shape),
    )


def _cells(
    values: np.ndarray, empty: np.ndarray, shape: tuple[int, int]
) -> list[list[float | None]]:
    rounded = np.round(np.nan_to_num(values.astype(np.float64)), 4)
    return [
        [None if gone else float(value) for value, gone in zip(row, gone_row, strict=True)]
        for row, gone_row in zip(rounded.reshape(shape), empty.reshape(shape), strict=True)
    ]


@dataclass(frozen=True)
class CalibrationRow:
    frequency: str  # "0" .. "6", "7+"
    customers: int
    predicted: float  # mean purchase days predicted in the holdout
    actual: float  # mean purchase days made in it


def calibration(
    counts: PurchaseCountFitter,
    calibration_summary: pd.DataFrame,
    full_summary: pd.DataFrame,
    holdout_days: float,
) -> list[CalibrationRow]:
    """For the customers with a purchase by the calibration cut-off: the holdout's purchase
    days (repeat purchase days at the end less those at the cut-off: BTYD counts days, not
    orders) beside the model's expectation, averaged by calibration frequency."""
    buyers = calibration_summary[calibration_summary["has_purchased"] > 0]
    later = full_summary["frequency"].reindex(buyers.index).to_numpy()
    actual = later - buyers["frequency"].to_numpy()
    x, t_x = buyers["frequency"].to_numpy(), buyers["recency_days"].to_numpy()
    T = np.maximum(buyers["age_days"].to_numpy(), t_x)
    predicted = np.nan_to_num(
        counts.conditional_expected_number_of_purchases_up_to_time(holdout_days, x, t_x, T)
    )
    bins = np.minimum(buyers["frequency"].to_numpy().astype(int), CALIBRATION_BINS - 1)
    rows = []
    for number in range(CALIBRATION_BINS):
        members = bins == number
        if not members.any():
            continue
        label = f"{number}+" if number == CALIBRATION_BINS - 1 else str(number)
        rows.append(
            CalibrationRow(
                frequency=label,
                customers=int(members.sum()),
                predicted=round(float(predicted[members].mean()), 4),
                actual=round(float(actual[members].mean()), 4),
            )
        )
    return rows

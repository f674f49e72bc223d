"""Every kind of job, spelt once: the ``jobs.kind`` column holds these values."""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    train = "train"  # a new model version (training.jobs)
    rescore = "rescore"  # every customer's score by a new champion (scoring.jobs)
    learn = "learn"  # one run of the learning loop (learning.jobs)
    accuracy = "accuracy"  # matured accuracy per model version (learning.jobs)
    drift = "drift"  # a drift check against the champion's training data (drift.jobs)
    fairness = "fairness"  # a fairness audit with and without the protected attributes
    forecast = "forecast"  # the shop's revenue and orders over time (forecasts.jobs)
    btyd = "btyd"  # the BTYD diagnostics report (diagnostics.jobs)

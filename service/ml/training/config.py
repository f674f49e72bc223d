"""What training is told: the configuration with every tuning constant, the progress callback,
and the errors it refuses or stops with."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import dataclass

from service.ml.insufficient import InsufficientDataError

MIN_HORIZON_DAYS = 28
"""The shortest label window: fewer days of outcomes say too little about spend to learn from."""
MIN_VALIDATION_BUYERS = 10
"""Customers with an order below which held-out metrics and early stopping mean nothing."""

Progress = Callable[[str, float], None]  # (stage, fraction done)


class DataTooShortError(InsufficientDataError):
    """The data span too little time (or hold too few customers) for the windows training
    needs; the message says how much is needed."""


class TrainingCancelledError(CancelledError):
    """The caller's ``cancelled`` said stop: raised between epochs, nothing is returned. A
    ``concurrent.futures.CancelledError``, the standard library's "cancelled" that a job runner
    catches, so a cancelled training ends its job as cancelled without ml knowing of jobs."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that tunes a training run, so a stored model records all of it (its report's
    ``config``) and the learning loop can train a challenger exactly as its champion was."""

    horizon_days: int
    architecture: str = "gru_ziln"
    hidden: int = 32
    dropout: float = 0.1
    sequence_length: int = 32
    cutoffs: int = 4  # full-horizon cut-offs before the latest one
    cutoff_step_days: int = 45
    partial_step_days: int = 90  # 0: no partial windows after the latest full one
    validation_share: float = 0.2  # customers held out of training, validated at the latest cut-off
    min_history_days: int = 60
    epochs: int = 25
    patience: int = 3
    batch_size: int = 512
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    count_model: str = "bgnbd"
    text_components: int = 8
    seed: int = 0
    device: str = "cpu"
    excluded_attributes: tuple[str, ...] = ()  # profile attributes the model never sees
    gradient_clip_norm: float = 5.0  # the ZILN loss has steep corners: one batch must not jump
    min_improvement: float = 1e-4  # held-out loss gain below which an epoch counts as no better
    evaluation_batch_size: int = 8192  # rows per forward pass when only the loss is wanted
    max_log_calibration: float = 1.0  # the largest shift of mu calibration may make (e^1 = 2.7x)

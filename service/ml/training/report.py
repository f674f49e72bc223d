"""What training records about a model (``ClvModel.report``): its data, windows, epochs and
calibration, how the served candidate was chosen, and the configuration that produced it.

Saved artifacts and the registry keep it as JSON (``to_json``; an artifact's ``info``, a model
version's ``metrics`` is ``validation``), with the keys training has always written, so the API
and the models already on disk read the same; ``from_json`` reads it back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from service.ml.training.config import TrainConfig

Metrics = dict[str, Any]
"""One candidate's figures, as ``service.ml.metrics.evaluate`` gives them."""


@dataclass(frozen=True)
class SelectionWindow:
    """The time-later window (start, end] the candidates were judged on."""

    start: datetime
    end: datetime
    days: int

    def to_json(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "days": self.days}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> SelectionWindow:
        return cls(
            datetime.fromisoformat(stored["from"]),
            datetime.fromisoformat(stored["to"]),
            stored["days"],
        )


@dataclass(frozen=True, kw_only=True)
class Selection:
    """What the time-later window decided (``service.ml.selection``) and the figures it decided
    on. ``fallback``: why another BTYD model serves than the one chosen (it did not converge at
    the training time); ``inherited``: a warm start's, taken over from the model it started
    from, not judged again; ``seasons``: each BTYD candidate's yearly season at the training
    time (``Season.summary``), None where the data showed none."""

    served: str
    rule: str
    window: SelectionWindow
    customers: int
    candidates: dict[str, Metrics]
    reasons: dict[str, str]
    p10_p90_coverage: float
    fallback: str | None = None
    inherited: bool = False
    seasons: dict[str, dict[str, float] | None] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Validation(Selection):
    """The selection, with what only the final model knows: the network's metrics against the
    BTYD baseline on the customers held out of its training (``held_out``: ``deep``, ``btyd``)
    and the feature groups the data could not fit."""

    held_out: dict[str, Metrics]
    omitted_feature_groups: dict[str, str]

    @classmethod
    def of(
        cls, selection: Selection, *, held_out: dict[str, Metrics], omitted: dict[str, str]
    ) -> Validation:
        """``selection``'s own fields (a warm start passes the old ``Validation``: its
        held-out figures are not the new network's) with the final model's."""
        chosen = {f.name: getattr(selection, f.name) for f in fields(Selection)}
        return cls(**chosen, held_out=held_out, omitted_feature_groups=omitted)

    def to_json(self) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "served": self.served,
            "rule": self.rule,
            "window": self.window.to_json(),
            "customers": self.customers,
            "candidates": self.candidates,
            "reasons": self.reasons,
            "p10_p90_coverage": self.p10_p90_coverage,
        }
        if self.fallback is not None:
            stored["fallback"] = self.fallback
        stored["seasons"] = self.seasons
        stored["held_out"] = self.held_out
        stored["omitted_feature_groups"] = self.omitted_feature_groups
        if self.inherited:
            stored["inherited"] = True
        return stored

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Validation:
        return cls(
            served=stored["served"],
            rule=stored["rule"],
            window=SelectionWindow.from_json(stored["window"]),
            customers=stored["customers"],
            candidates=stored["candidates"],
            reasons=stored["reasons"],
            p10_p90_coverage=stored["p10_p90_coverage"],
            fallback=stored.get("fallback"),
            inherited=stored.get("inherited", False),
            seasons=stored.get("seasons", {}),  # absent from models trained before seasons
            held_out=stored["held_out"],
            omitted_feature_groups=stored["omitted_feature_groups"],
        )


@dataclass(frozen=True)
class WindowLevel:
    """A training window and the spend of its held-out customers, predicted (before
    calibration) and actual: how far the network's level was off, window by window."""

    cutoff: datetime
    days: int
    held_out_predicted: float
    held_out_actual: float

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "cutoff": self.cutoff.isoformat()}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> WindowLevel:
        return cls(**{**stored, "cutoff": datetime.fromisoformat(stored["cutoff"])})


@dataclass(frozen=True)
class Epoch:
    """One pass over the training examples: its mean loss, and the held-out customers'."""

    epoch: int
    train_loss: float
    validation_loss: float


@dataclass(frozen=True)
class TrainingReport:
    """How a model was trained: on the events from ``data_from`` up to ``as_of``, over
    ``windows`` (the first is the validation window), for ``history``'s epochs, its level
    multiplied by ``calibration_factor``, with ``config``; what serves and why
    (``validation``); ``warm_start``: fine-tuned from an earlier model."""

    as_of: datetime
    data_from: datetime
    windows: tuple[WindowLevel, ...]
    training_examples: int
    validation_examples: int
    history: tuple[Epoch, ...]
    calibration_factor: float
    config: TrainConfig
    validation: Validation
    warm_start: bool

    @property
    def validation_cutoff(self) -> datetime:
        """The latest full-horizon window's cut-off, where the held-out metrics are taken."""
        return self.windows[0].cutoff

    @property
    def excluded_attributes(self) -> tuple[str, ...]:
        """The profile attributes the model never saw, sorted."""
        return tuple(sorted(self.config.excluded_attributes))

    def to_json(self) -> dict[str, Any]:
        """The report as an artifact stores it (its ``info``)."""
        return self._json(with_validation=True)

    def training_json(self) -> dict[str, Any]:
        """Everything but ``validation``: how training went (a backtest's ``training``)."""
        return self._json(with_validation=False)

    def _json(self, *, with_validation: bool) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "as_of": self.as_of.isoformat(),
            "data_from": self.data_from.isoformat(),
            "windows": [window.to_json() for window in self.windows],
            "validation_cutoff": self.validation_cutoff.isoformat(),
            "training_examples": self.training_examples,
            "validation_examples": self.validation_examples,
            "history": [asdict(epoch) for epoch in self.history],
            "calibration_factor": self.calibration_factor,
            "config": asdict(self.config),
            "excluded_attributes": list(self.excluded_attributes),
        }
        if with_validation:
            stored["validation"] = self.validation.to_json()
        stored["warm_start"] = self.warm_start
        return stored

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> TrainingReport:
        return cls(
            as_of=datetime.fromisoformat(stored["as_of"]),
            data_from=datetime.fromisoformat(stored["data_from"]),
            windows=tuple(WindowLevel.from_json(window) for window in stored["windows"]),
            training_examples=stored["training_examples"],
            validation_examples=stored["validation_examples"],
            history=tuple(Epoch(**epoch) for epoch in stored["history"]),
            calibration_factor=stored["calibration_factor"],
            config=_config(stored["config"]),
            validation=Validation.from_json(stored["validation"]),
            warm_start=stored["warm_start"],
        )


def _config(stored: dict[str, Any]) -> TrainConfig:
    """The stored configuration; a setting this version no longer has is dropped, one it added
    since takes its default (what that model was, in effect, trained with)."""
    known = {f.name for f in fields(TrainConfig)}
    kept = {name: value for name, value in stored.items() if name in known}
    excluded = tuple(kept.pop("excluded_attributes", ()))  # a list in JSON
    return TrainConfig(**kept, excluded_attributes=excluded)

"""A trained CLV model: feature pipeline, BTYD baseline, scaler and ZILN network together.

``predict`` turns examples (``service.ml.examples``) into scores: expected spend in the horizon
(``clv``), its 10/50/90% quantiles and the probability of any purchase from the network; the
probability of being alive and the expected order value from the BTYD models; expected orders
as clv over that order value. Within the span of label windows it was trained on, the horizon is
the network's own input; outside it (data too short for labels at the asked horizon, or a horizon
shorter than any window) its outputs at the nearest end of the span are carried to the asked
horizon by the ratio of the BTYD expected purchases at both.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.ao.quantization import quantize_dynamic

from service.ml.activity import Activity
from service.ml.btyd.baseline import BtydBaseline
from service.ml.examples import (
    EXTRA_DEFINITIONS,
    HORIZON_FEATURE,
    EventLog,
    Examples,
    Profiles,
    Sources,
    build,
    build_without_events,
)
from service.ml.explain import Attributions, Background, expected_gradients
from service.ml.features import FeatureDef
from service.ml.losses import ziln_mean, ziln_parameters, ziln_quantile
from service.ml.portrait import FeaturePipeline
from service.ml.sequences import channel_definitions

SCORE_COLUMNS = (
    "clv",
    "p10",
    "p50",
    "p90",
    "purchase_probability",
    "expected_orders",
    "probability_alive",
    "expected_order_value",
    "btyd_clv",
)


def signed_log(values: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|): tames counts and money, which span orders of magnitude."""
    logged: np.ndarray = np.sign(values) * np.log1p(np.abs(values))
    return logged


@dataclass
class ClvModel:
    net: torch.nn.Module
    architecture: str
    net_config: dict[str, Any]
    pipeline: FeaturePipeline
    btyd: BtydBaseline
    feature_names: list[str]
    scaler_mean: np.ndarray
    scaler_std: np.ndarray
    sequence_length: int
    horizon_days: int
    trained_horizon_days: int
    shortest_horizon_days: int  # the shortest label window it was trained on
    log_calibration: float = 0.0  # added to mu
    device: str = "cpu"
    info: dict[str, Any] = field(default_factory=dict)
    background: Background | None = None  # for explanations: summarised training customers
    float_net: torch.nn.Module | None = None  # the float network behind a quantized ``net``

    def tabular_tensor(self, tabular: pd.DataFrame) -> torch.Tensor:
        ordered = (
            tabular if list(tabular.columns) == self.feature_names else tabular[self.feature_names]
        )
        values = signed_log(ordered.to_numpy(dtype=np.float64))
        scaled = (values - self.scaler_mean) / self.scaler_std
        return torch.as_tensor(scaled, dtype=torch.float32)

    @property
    def network_horizon_days(self) -> int:
        """The horizon the network predicts for: the asked one when its label windows spanned it
        (the horizon is an input), else the nearest end of that span; from there its outputs are
        carried to the asked horizon (``_carry``)."""
        return min(max(self.horizon_days, self.shortest_horizon_days), self.trained_horizon_days)

    def examples(
        self,
        log: EventLog,
        profiles: Profiles,
        sources: Sources,
        as_of: datetime,
        label_days: int | None = None,
        activity: Activity | None = None,
    ) -> Examples:
        """Every customer with an event by ``as_of``, ready for ``predict``: the features describe
        the asked horizon, or the trained one when it is shorter (``predict`` carries the rest).
        ``activity``: the log's aggregates up to ``as_of``, when the caller has them already."""
        return build(
            log,
            profiles,
            sources,
            self.pipeline,
            self.btyd,
            as_of,
            self.network_horizon_days,
            self.sequence_length,
            label_days,
            activity,
        )

    def examples_without_events(
        self, customers: pd.Index, profiles: Profiles, sources: Sources
    ) -> Examples:
        """Customers known only from their attributes (``build_without_events``)."""
        return build_without_events(
            customers,
            profiles,
            sources,
            self.pipeline,
            self.btyd,
            self.network_horizon_days,
            self.sequence_length,
        )

    @torch.no_grad()
    def logits(self, examples: Examples, batch_size: int = 4096) -> torch.Tensor:
        """(n, 3) ZILN logits for the network's horizon, calibrated (mu shifted)."""
        self.net.eval()
        tabular = self.tabular_tensor(examples.tabular)
        sequences = torch.as_tensor(examples.sequences)
        parts = []
        for start in range(0, len(tabular), batch_size):
            part = self.net(
                sequences[start : start + batch_size].to(self.device),
                tabular[start : start + batch_size].to(self.device),
            )
            parts.append(part.float().cpu())
        logits = torch.cat(parts) if parts else torch.zeros((0, 3))
        logits[:, 1] += self.log_calibration
        return logits

    def predict(self, examples: Examples) -> pd.DataFrame:
        logits = self.logits(examples)
        p, _, _ = ziln_parameters(logits)
        carry = self._carry(examples.portrait)
        purchase = 1 - (1 - p.numpy()) ** (self.horizon_days / self.network_horizon_days)
        scores = pd.DataFrame(
            {
                "clv": ziln_mean(logits).numpy() * carry,
                "p10": ziln_quantile(logits, 0.1).numpy() * carry,
                "p50": ziln_quantile(logits, 0.5).numpy() * carry,
                "p90": ziln_quantile(logits, 0.9).numpy() * carry,
                "purchase_probability": purchase,
            },
            index=examples.customers,
        )
        btyd = examples.tabular[["btyd_probability_alive", "btyd_order_value", "btyd_clv"]]
        bought = examples.portrait["has_purchased"].to_numpy() > 0
        population_value = float(
            self.btyd.spend_.conditional_expected_average_profit(np.zeros(1), np.zeros(1))[0]
        )
        order_value = np.where(bought, btyd["btyd_order_value"], population_value)
        scores["expected_orders"] = scores["clv"] / np.maximum(order_value, 1e-9)
        alive = np.where(bought, btyd["btyd_probability_alive"], scores["purchase_probability"])
        scores["probability_alive"] = alive
        scores["expected_order_value"] = order_value
        scores["btyd_clv"] = (
            btyd["btyd_clv"].to_numpy()
            if self.network_horizon_days == self.horizon_days
            else self.btyd.predict(examples.portrait, self.horizon_days)["btyd_clv"].to_numpy()
        )
        return scores[list(SCORE_COLUMNS)].astype(float)

    def explain(self, examples: Examples) -> Attributions:
        """SHAP attributions of ``predict``'s ``clv`` (``service.ml.explain``): tabular features
        in ``feature_names`` order, then event channels as in ``definitions``."""
        if self.background is None:
            raise ValueError("this model was saved without an explanation background; retrain")
        return expected_gradients(
            self.float_net or self.net,
            torch.as_tensor(examples.sequences),
            self.tabular_tensor(examples.tabular),
            self.background,
            log_calibration=self.log_calibration,
            scale=self._carry(examples.portrait),
            fixed_column=self.feature_names.index(HORIZON_FEATURE),
            device=self.device,
        )

    def quantized(self) -> ClvModel:
        """The model with its linear and recurrent layers dynamically quantized to int8 (CPU
        only): faster scoring; explanations keep using the float network, which gradients need,
        and so do the scores they explain (``service.scoring``)."""
        net = quantize_dynamic(  # type: ignore[no-untyped-call]
            copy.deepcopy(self.float_net or self.net).cpu(),
            {torch.nn.Linear, torch.nn.GRU},
            dtype=torch.qint8,
        )
        return replace(self, net=net, float_net=self.float_net or self.net, device="cpu")

    @cached_property
    def definitions(self) -> tuple[list[FeatureDef], list[FeatureDef]]:
        """What each attribution is about: (tabular features, event channels)."""
        tabular = [*self.pipeline.definitions(), *EXTRA_DEFINITIONS]
        return tabular, channel_definitions(self.pipeline.categories_, self.sequence_length)

    def _carry(self, portrait: pd.DataFrame) -> np.ndarray:
        """Per-customer factor from the network's horizon to the asked one (1 when equal): the
        BTYD purchase curve's ratio for customers it covers, linear in time for the others."""
        if self.network_horizon_days == self.horizon_days:
            return np.ones(len(portrait))
        full = self.btyd.expected_orders(portrait, self.horizon_days)
        short = self.btyd.expected_orders(portrait, self.network_horizon_days)
        linear = self.horizon_days / self.network_horizon_days
        return np.where(short > 1e-12, full / np.maximum(short, 1e-12), linear)
